import test from "ava";
import fc from "fast-check";
import { z } from "zod";
import { LIMITS } from "@controlplane/config";
import { bodySchema, decodeBody, int32, int64, jsonObject, parseFirstValue, str, strArray, text } from "../src/wire/body.js";
import { HttpError } from "../src/wire/errors.js";
import { compactJson, compareGoKeys, goAny, goJson, goJsonWithRaw, goMap, goMarshal, RawJson, rfc3339 } from "../src/wire/go-json.js";

test("goJson escapes HTML characters like Go's encoder and ends with a newline", (t) => {
  t.is(goJson({ error: "a <b> & c\u2028" }), '{"error":"a \\u003cb\\u003e \\u0026 c\\u2028"}\n');
});

test("property: goJson output decodes back to the same value", (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      t.deepEqual(JSON.parse(goJson(value)), JSON.parse(JSON.stringify(value)));
    }),
  );
});

test("raw JSON is embedded compacted, key order untouched", (t) => {
  t.is(compactJson('{"b": 1, "2": [ 1, "a b" ], "s": "x\\" y"}'), '{"b":1,"2":[1,"a b"],"s":"x\\" y"}');
  t.is(goJsonWithRaw({ a: 1, settings: new RawJson('{"z": {"y": "<"}}') }), '{"a":1,"settings":{"z":{"y":"\\u003c"}}}\n');
});

test("timestamps are RFC 3339 to the second", (t) => {
  t.is(rfc3339(new Date("2026-06-17T03:33:09.987Z")), "2026-06-17T03:33:09Z");
});

const shape = bodySchema({ name: str(), count: int64(), args: strArray(3) });

function decodeStatus(raw: string): unknown {
  try {
    // Absent fields may be missing or undefined: compare as JSON would see them.
    return JSON.parse(JSON.stringify(decodeBody(raw, shape)));
  } catch (error) {
    return error instanceof HttpError ? `${error.statusCode} ${error.message}` : error;
  }
}

test("body decoding follows the original decoder", (t) => {
  t.deepEqual(decodeStatus('{"name":"x","extra":true}'), { name: "x", extra: true });
  t.deepEqual(decodeStatus("null"), {});
  t.deepEqual(decodeStatus('{"name":null,"args":["a",null]}'), { args: ["a", ""] });
  t.deepEqual(decodeStatus('{"name":"x"} trailing bytes are not read'), { name: "x" });
  for (const bad of ["", "  ", "{", "[1]", '"s"', '{"name":1}', '{"count":1.5}', '{"args":"a"}']) {
    t.is(decodeStatus(bad), "400 invalid request body", JSON.stringify(bad));
  }
});

test("property: parseFirstValue reads the first JSON value, whatever follows it", (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.string(), (value, tail) => {
      const text = JSON.stringify(value);
      t.deepEqual(parseFirstValue(`  ${text} ${tail}`), JSON.parse(text));
    }),
  );
  t.is(z.string().safeParse(parseFirstValue('"a\\"b" x')).data, 'a"b');
});

const bounded = bodySchema({ name: str(), step: int32(), tokens: int64(), output: text(10), input: jsonObject(40), args: strArray(2) });

function decodeBounded(raw: string): unknown {
  try {
    return JSON.parse(JSON.stringify(decodeBody(raw, bounded)));
  } catch (error) {
    return error instanceof HttpError ? `${error.statusCode} ${error.message}` : error;
  }
}

test("a value past its bound answers 400 naming the field and the bound", (t) => {
  t.is(decodeBounded(JSON.stringify({ name: "n".repeat(LIMITS.NAME_CHARS + 1) })), `400 name: too long (at most ${LIMITS.NAME_CHARS} characters)`);
  t.is(decodeBounded('{"output":"12345678901"}'), "400 output: too long (at most 10 characters)");
  t.is(decodeBounded('{"args":["a","b","c"]}'), "400 args: too many entries (at most 2)");
  t.is(decodeBounded(`{"input":{"k":"${"x".repeat(40)}"}}`), "400 input: too large (at most 40 characters as JSON)");
  for (const step of ["2147483648", "-2147483649", "1e308"]) t.is(decodeBounded(`{"step":${step}}`), "400 step: out of range", step);
  for (const tokens of ["9007199254740992", "1e308", "-1e308"]) t.is(decodeBounded(`{"tokens":${tokens}}`), "400 tokens: out of range", tokens);
  t.deepEqual(decodeBounded('{"step":2147483647,"tokens":9007199254740991}'), { step: 2147483647, tokens: 9007199254740991 });
});

test("NUL is removed from free text and data, refused in names", (t) => {
  t.deepEqual(decodeBounded('{"output":"a\\u0000b","input":{"k\\u0000":["x\\u0000y"]}}'), { output: "ab", input: { k: ["xy"] } });
  t.is(decodeBounded('{"name":"a\\u0000b"}'), "400 name: contains a NUL character");
});

test("lone surrogates become U+FFFD as Go's decoder makes them; pairs stay", (t) => {
  t.deepEqual(decodeBounded('{"output":"a\\ud800b","input":{"\\udfff":"\\ud83d\\ude00"}}'), { output: "a\ufffdb", input: { "\ufffd": "\u{1F600}" } });
});

test("JSON nested deeper than the bound is an invalid body, not a stack overflow", (t) => {
  const deep = (depth: number) => `{"input":${"[".repeat(depth)}${"]".repeat(depth)}}`;
  t.is(decodeBounded(deep(LIMITS.JSON_DEPTH)), "400 invalid request body");
  t.is(decodeBounded(deep(10_000)), "400 invalid request body");
  t.is(parseFirstValue("[".repeat(LIMITS.JSON_DEPTH) + "]".repeat(LIMITS.JSON_DEPTH))?.constructor, Array);
});

test("property: any decoded body holds only well-formed strings without NUL in free text", (t) => {
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), fc.string({ unit: "binary" }), (output, key) => {
      const decoded = decodeBody(JSON.stringify({ output: output.slice(0, 10), input: { [key.slice(0, 5)]: output.slice(0, 5) } }), bounded) as {
        output?: string;
        input?: Record<string, string>;
      };
      for (const value of [decoded.output ?? "", ...Object.keys(decoded.input ?? {}), ...Object.values(decoded.input ?? {})]) {
        t.true(value.isWellFormed() && !value.includes("\u0000"), JSON.stringify(value));
      }
    }),
  );
});

test("a Go map writes its keys in byte order, at its own level only; structs keep theirs", (t) => {
  // JavaScript would put "9" and "10" first, in numeric order: Go compares bytes.
  t.is(goJson(goMap({ b: 1, "10": 2, "9": 3, a: { z: 1, y: 2 } })), '{"10":2,"9":3,"a":{"z":1,"y":2},"b":1}\n');
  t.is(goJson({ z: goMap({ y: 1, x: 2 }), a: 0 }), '{"z":{"x":2,"y":1},"a":0}\n');
  // UTF-8 byte order is code point order: U+E000 sorts before U+1F600, unlike UTF-16 units.
  t.deepEqual(["\u{1F600}", "\uE000", "é", "Z", "a"].sort(compareGoKeys), ["Z", "a", "é", "\uE000", "\u{1F600}"]);
});

test("stored JSON decoded into any: maps at every depth, float64 numbers, -0 kept", (t) => {
  t.is(
    goMarshal(goAny('{"work_dir": "/w", "output": "<ok>", "session_id": "", "pr_url": "u"}')),
    '{"output":"\\u003cok\\u003e","pr_url":"u","session_id":"","work_dir":"/w"}',
  );
  t.is(goMarshal(goAny('[{"b": {"d": 1.0, "c": 1e3}, "a": -0}, null, 1e-7, 1e21]')), '[{"a":-0,"b":{"c":1000,"d":1}},null,1e-7,1e+21]');
  t.is(goMarshal(goAny('{"__proto__": 1}')), '{"__proto__":1}');
  t.throws(() => goAny("not json"));
});

test("property: goJson with Go maps decodes back to the same value", (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      t.deepEqual(JSON.parse(goJson(goAny(JSON.stringify(value)))), JSON.parse(JSON.stringify(value)));
    }),
  );
});

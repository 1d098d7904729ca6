import test from "ava";
import fc from "fast-check";
import { z } from "zod";
import { bodySchema, decodeBody, int, parseFirstValue, str, strArray } from "../src/wire/body.js";
import { HttpError } from "../src/wire/errors.js";
import { compactJson, goJson, goJsonWithRaw, RawJson, rfc3339 } from "../src/wire/go-json.js";

test("goJson escapes HTML characters like Go's encoder and ends with a newline", (t) => {
  t.is(goJson({ error: "a <b> & c\u2028" }), '{"error":"a \\u003cb\\u003e \\u0026 c\\u2028"}\n');
});

test("property: goJson output decodes back to the same value", (t) => {
  fc.assert(fc.property(fc.jsonValue(), (value) => {
    t.deepEqual(JSON.parse(goJson(value)), JSON.parse(JSON.stringify(value)));
  }));
});

test("raw JSON is embedded compacted, key order untouched", (t) => {
  t.is(compactJson('{"b": 1, "2": [ 1, "a b" ], "s": "x\\" y"}'), '{"b":1,"2":[1,"a b"],"s":"x\\" y"}');
  t.is(goJsonWithRaw({ a: 1, settings: new RawJson('{"z": {"y": "<"}}') }), '{"a":1,"settings":{"z":{"y":"\\u003c"}}}\n');
});

test("timestamps are RFC 3339 to the second", (t) => {
  t.is(rfc3339(new Date("2026-06-17T03:33:09.987Z")), "2026-06-17T03:33:09Z");
});

const shape = bodySchema({ name: str(), count: int(), args: strArray() });

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
  fc.assert(fc.property(fc.jsonValue(), fc.string(), (value, tail) => {
    const text = JSON.stringify(value);
    t.deepEqual(parseFirstValue(`  ${text} ${tail}`), JSON.parse(text));
  }));
  t.is(z.string().safeParse(parseFirstValue('"a\\"b" x')).data, 'a"b');
});

import test from "ava";
import fc from "fast-check";
import pg from "pg";
import { InvalidArgumentError } from "@controlplane/grpc";
import { createTestDatabase, type TestDatabase } from "@controlplane/testkit";
import { prefixUtf16, storableJson, storableText, type Json } from "../src/text.js";

/**
 * Any UTF-16 code unit, with NUL and lone surrogate halves made frequent:
 * fast-check's own string units never produce a lone surrogate.
 */
const codeUnit = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom("\u0000", "\uD800", "\uDBFF", "\uDC00", "\uDFFF") },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }) },
);
const anyString = fc.string({ unit: codeUnit, maxLength: 40 });
const anyJson: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    anyString,
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(anyString, tie("value"), { maxKeys: 4 }),
  ),
})).value;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

test("property: storable text has no NUL and no lone surrogate", (t) => {
  fc.assert(
    fc.property(anyString, (text) => {
      const out = storableText(text);
      return !out.includes("\u0000") && !LONE_SURROGATE.test(out);
    }),
  );
  t.pass();
});

test("property: text that is already storable comes back unchanged, and storing twice changes nothing more", (t) => {
  fc.assert(
    fc.property(anyString, (text) => {
      const once = storableText(text);
      return storableText(once) === once;
    }),
  );
  fc.assert(
    fc.property(
      fc.string({ unit: "grapheme" }).filter((s) => !s.includes("\u0000")),
      (text) => storableText(text) === text,
    ),
  );
  t.pass();
});

test("NUL is removed and lone surrogates become U+FFFD; pairs (even ones NUL kept apart) survive", (t) => {
  t.is(storableText("a\u0000b"), "ab");
  t.is(storableText("x\uD800y\uDC00z"), "x\uFFFDy\uFFFDz");
  t.is(storableText("\uD83D\uDE00"), "\uD83D\uDE00");
  t.is(storableText("\uD83D\u0000\uDE00"), "\uD83D\uDE00");
  t.is(storableText("\uDE00\uD83D"), "\uFFFD\uFFFD");
});

test("storable JSON repairs keys and strings at any depth and keeps everything else", (t) => {
  t.deepEqual(storableJson({ "k\u0000ey": ["a\u0000", { deep: "\uD800" }], n: 1.5, b: false, z: null }), {
    key: ["a", { deep: "\uFFFD" }],
    n: 1.5,
    b: false,
    z: null,
  });
});

test("storable JSON refuses nesting deeper than the bound (and does not overflow the stack)", (t) => {
  let deep: Json = "leaf";
  for (let i = 0; i < 100_000; i++) deep = [deep];
  const error = t.throws(() => storableJson(deep), { instanceOf: InvalidArgumentError });
  t.is(error?.message, "message input too deeply nested");
  let ok: Json = "leaf";
  for (let i = 0; i < 128; i++) ok = { k: ok };
  t.notThrows(() => storableJson(ok));
});

test("property: a prefix is at most the bound, a true prefix, and never ends inside a surrogate pair", (t) => {
  fc.assert(
    fc.property(anyString, fc.nat({ max: 50 }), (text, max) => {
      const prefix = prefixUtf16(text, max);
      const cutPair = prefix.length < text.length && /[\uD800-\uDBFF]$/.test(prefix) && /^[\uDC00-\uDFFF]/.test(text.slice(prefix.length));
      return prefix.length <= max && text.startsWith(prefix) && !cutPair && prefix.length >= Math.min(text.length, max) - 1;
    }),
  );
  t.is(prefixUtf16("ab\uD83D\uDE00", 3), "ab");
  t.is(prefixUtf16("ab\uD83D\uDE00", 4), "ab\uD83D\uDE00");
  t.pass();
});

let db: TestDatabase;
let client: pg.Client;
test.before(async () => {
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});
test.after.always(async () => {
  await client?.end();
  await db?.drop();
});

test("property: Postgres accepts any string once storable, as text and inside jsonb", async (t) => {
  // Sanity: the raw strings are what Postgres refuses.
  await t.throwsAsync(client.query("SELECT $1::text", ["a\u0000b"]));
  await t.throwsAsync(client.query("SELECT $1::jsonb", [JSON.stringify({ k: "\uD800" })]));
  await fc.assert(
    fc.asyncProperty(anyString, anyJson, async (text, json) => {
      const storable = storableText(text);
      const value = storableJson({ text, json });
      const { rows } = await client.query<{ t: string; j: unknown }>("SELECT $1::text AS t, $2::jsonb AS j", [storable, JSON.stringify(value)]);
      return rows[0]!.t === storable;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

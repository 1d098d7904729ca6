import test from "ava";
import { z } from "zod";
import { parseRow, safeParseRow } from "@controlplane/db";

// A schema of every kind of field the compiled check handles.
const plain = z.object({
  id: z.string(),
  note: z.string().nullable(),
  priority: z.number(),
  done: z.boolean(),
  status: z.enum(["queued", "running"]),
  context: z.record(z.unknown()).nullable(),
  ids: z.array(z.string()),
  at: z.date().nullable(),
  extra: z.unknown(),
});

const good = () => ({
  id: "a",
  note: null,
  priority: 3,
  done: false,
  status: "running",
  context: { k: [1] },
  ids: ["x"],
  at: new Date(0),
  extra: 1,
});

test("a plain row parses to what zod gives, unknown keys stripped, without zod's copies", (t) => {
  const row = { ...good(), result: "{}", claimed_id: "b" };
  const parsed = parseRow(plain, row);
  t.deepEqual(parsed, plain.parse(row));
  t.deepEqual(Object.keys(parsed), Object.keys(plain.shape), "the schema's keys, in its order");
  t.is(parsed.context, row.context, "the compiled check took the row's own record");
});

test("a key only an unknown field may lack stays absent, as with zod", (t) => {
  const { extra: _, ...row } = good();
  const parsed = parseRow(plain, row);
  t.false("extra" in parsed);
  t.deepEqual(parsed, plain.parse(row));
});

test("a row that breaks the schema fails with zod's own issues", (t) => {
  const bad = [
    { ...good(), priority: "3" },
    { ...good(), priority: Number.NaN },
    { ...good(), status: "gone" },
    { ...good(), id: null },
    { ...good(), ids: ["x", 1] },
    { ...good(), context: [] },
    { ...good(), at: new Date(Number.NaN) },
    { ...good(), done: undefined },
  ];
  for (const row of bad) {
    const ours = safeParseRow(plain, row);
    const zods = plain.safeParse(row);
    t.false(ours.success, JSON.stringify(row));
    t.deepEqual(ours.error?.issues, zods.error?.issues);
  }
  t.throws(() => parseRow(plain, null), { instanceOf: z.ZodError });
});

test("schemas with checks, defaults or transforms are zod's to parse", (t) => {
  const checked = z.object({ n: z.number().int(), s: z.string().default("d"), d: z.coerce.date() });
  t.throws(() => parseRow(checked, { n: 1.5, s: "x", d: "2020-01-01" }), { instanceOf: z.ZodError });
  t.deepEqual(parseRow(checked, { n: 1, d: "2020-01-01T00:00:00Z" }), { n: 1, s: "d", d: new Date("2020-01-01T00:00:00Z") });
});

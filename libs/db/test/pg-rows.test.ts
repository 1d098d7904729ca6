import test from "ava";
import pg from "pg";
import { installRowTemplateCache } from "@controlplane/db";
import { createTestDatabase, type TestDatabase } from "@controlplane/testkit";

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

test("the template cache installs on the pg in use", (t) => {
  t.true(installRowTemplateCache(), "pg's Result no longer works the way the cache relies on");
  t.true(installRowTemplateCache(), "a second install is a no-op that reports the first");
});

test("rows come out as pg makes them, the first time and from the cache", async (t) => {
  installRowTemplateCache();
  const text = `SELECT g AS id, 'n' || g AS name, NULL::text AS note, g % 2 = 0 AS even, '{"k":[1]}'::jsonb AS doc
                FROM generate_series(1, 3) g`;
  const first = await client.query(text);
  const second = await client.query(text);
  const expected = [1, 2, 3].map((g) => ({ id: g, name: `n${g}`, note: null, even: g % 2 === 0, doc: { k: [1] } }));
  for (const result of [first, second]) {
    t.deepEqual(result.rows, expected);
    t.deepEqual(Object.keys(result.rows[0] ?? {}), ["id", "name", "note", "even", "doc"]);
    t.deepEqual(
      result.fields.map((f) => f.name),
      ["id", "name", "note", "even", "doc"],
    );
  }
  t.not(first.rows[0], second.rows[0], "each row its own object");
  const [row] = second.rows;
  if (row) row.id = 99;
  t.is((await client.query(text)).rows[0]?.id, 1, "a row's writes do not reach the shared template");
});

test("a repeated column name and a column named __proto__ behave as in pg", async (t) => {
  installRowTemplateCache();
  for (let round = 0; round < 2; round++) {
    const duplicate = await client.query(`SELECT 1 AS a, 2 AS a, 3 AS b`);
    t.deepEqual(duplicate.rows, [{ a: 2, b: 3 }]);
    const proto = await client.query(`SELECT 1 AS "__proto__", 2 AS x`);
    const [row] = proto.rows;
    t.true(Object.hasOwn(row, "__proto__"));
    t.is(Object.getOwnPropertyDescriptor(row, "__proto__")?.value, 1);
    t.is(Object.getPrototypeOf(row), Object.prototype);
  }
});

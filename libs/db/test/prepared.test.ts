import test from "ava";
import { z } from "zod";
import { createDbPool, type DatabasePool, sql } from "@controlplane/db";
import { createTestDatabase, type TestDatabase } from "@controlplane/testkit";

// Real Postgres, one connection per pool, so what the statements leave in
// the backend (pg_prepared_statements) can be read on the same connection.
// Serial: whether pools name their statements is a setting of the process.
let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => {
  await db?.drop();
});

async function onePool(t: import("ava").ExecutionContext, preparedStatements = true): Promise<DatabasePool> {
  const pool = await createDbPool(db.url, { name: `prepared-${Math.random()}`, maxSize: 1, preparedStatements });
  t.teardown(() => pool.end());
  return pool;
}

const preparedTexts = (pool: DatabasePool) =>
  pool.anyFirst(sql.type(z.object({ statement: z.string() }))`SELECT statement FROM pg_prepared_statements WHERE NOT from_sql`);

test.serial("a statement run again and again is prepared once on the connection, and answers as before", async (t) => {
  const pool = await onePool(t);
  const answers: number[] = [];
  for (let i = 0; i < 6; i++) answers.push(await pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT ${i}::int + 1000 AS n`));
  t.deepEqual(answers, [1000, 1001, 1002, 1003, 1004, 1005]);
  const prepared = await preparedTexts(pool);
  t.is(prepared.filter((text) => text.includes("+ 1000 AS n")).length, 1, "one named statement for the six runs");
});

test.serial("a statement run once or twice stays unnamed", async (t) => {
  const pool = await onePool(t);
  await pool.query(sql.unsafe`SELECT 1 AS once_only`);
  await pool.query(sql.unsafe`SELECT 2 AS twice_only`);
  await pool.query(sql.unsafe`SELECT 2 AS twice_only`);
  const prepared = await preparedTexts(pool);
  t.false(prepared.some((text) => text.includes("once_only") || text.includes("twice_only")));
});

test.serial("after a migration changes its columns, a statement run on its own answers with the new columns", async (t) => {
  const pool = await onePool(t);
  await pool.query(sql.unsafe`CREATE TABLE changing_alone (a int)`);
  await pool.query(sql.unsafe`INSERT INTO changing_alone VALUES (1)`);
  const read = () => pool.one(sql.unsafe`SELECT * FROM changing_alone WHERE a = ${1}`);
  for (let i = 0; i < 4; i++) t.deepEqual(await read(), { a: 1 });
  await pool.query(sql.unsafe`ALTER TABLE changing_alone ADD COLUMN b int DEFAULT 7`);
  t.deepEqual(await read(), { a: 1, b: 7 }, "re-run unnamed, no error");
  t.deepEqual(await read(), { a: 1, b: 7 }, "and prepared again under a fresh name");
});

test.serial("inside a transaction the stale statement fails once, and the next transaction succeeds", async (t) => {
  const pool = await onePool(t);
  await pool.query(sql.unsafe`CREATE TABLE changing_in_tx (a int)`);
  await pool.query(sql.unsafe`INSERT INTO changing_in_tx VALUES (1)`);
  const read = () => pool.transaction((tx) => tx.one(sql.unsafe`SELECT * FROM changing_in_tx WHERE a = ${1}`));
  for (let i = 0; i < 4; i++) t.deepEqual(await read(), { a: 1 });
  await pool.query(sql.unsafe`ALTER TABLE changing_in_tx ADD COLUMN b int DEFAULT 7`);
  await t.throwsAsync(read(), { message: /cached plan must not change result type/ });
  t.deepEqual(await read(), { a: 1, b: 7 });
});

test.serial("with prepared statements off, nothing is named", async (t) => {
  const pool = await onePool(t, false);
  for (let i = 0; i < 6; i++) await pool.query(sql.unsafe`SELECT ${i}::int AS never_named`);
  t.false((await preparedTexts(pool)).some((text) => text.includes("never_named")));
});

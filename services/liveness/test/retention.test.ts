import { randomBytes, randomUUID } from "node:crypto";
import test from "ava";
import { createDbPool, migrate, type DatabasePool } from "@controlplane/db";
import { createLogger } from "@controlplane/log";
import { createTestDatabase, query, type TestDatabase } from "@controlplane/testkit";
import { loadLivenessConfig } from "../src/config.js";
import { purgeOnce } from "../src/retention.js";
import { MIGRATIONS_DIR, SCHEMA } from "../src/service.js";

// Liveness's retention against real Postgres: finished actions past
// ACTION_RETENTION_MS go, in batches; pending and running ones never do.

const log = createLogger("test", process.env.TEST_LOG_LEVEL ?? "silent");
let db: TestDatabase;
let pool: DatabasePool;

test.before(async () => {
  db = await createTestDatabase();
  await migrate({ databaseUrl: db.url, schema: SCHEMA, dir: MIGRATIONS_DIR, log });
  pool = await createDbPool(db.url, { name: "liveness-retention-test", maxSize: 2 });
});
test.after.always(async () => {
  await pool?.end();
  await db?.drop();
});

/** An action straight into the table, created `ageMs` ago. */
async function seedAction(status: string, ageMs: number): Promise<string> {
  const id = randomBytes(16).toString("hex");
  await query(
    db.url,
    "INSERT INTO liveness.pending_action (id, runtime_id, workspace_id, kind, status, created_at) VALUES ($1, $2, $3, 'model_list', $4, $5)",
    [id, randomUUID(), randomUUID(), status, new Date(Date.now() - ageMs)],
  );
  return id;
}

test("finished actions past the retention go in batches; pending, running and recent ones stay", async (t) => {
  const config = loadLivenessConfig({ DATABASE_URL: db.url, ACTION_RETENTION_MS: "600000", RETENTION_BATCH_SIZE: "2" });
  const old = config.ACTION_RETENTION_MS + 60_000;
  const gone = [
    await seedAction("completed", old),
    await seedAction("failed", old),
    await seedAction("timeout", old),
    await seedAction("conflict", old),
    await seedAction("completed", 10 * old),
  ];
  const kept = [
    await seedAction("pending", 10 * old),
    await seedAction("running", 10 * old),
    await seedAction("completed", config.ACTION_RETENTION_MS - 60_000),
  ];
  const { actions } = await purgeOnce({ pool, config });
  t.deepEqual(actions, { deleted: gone.length, batches: 3, done: true }, "five rows, two a statement");
  const left = (await query<{ id: string }>(db.url, "SELECT id FROM liveness.pending_action")).map((r) => r.id);
  t.deepEqual(left.sort(), [...kept].sort());
});

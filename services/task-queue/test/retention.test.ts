import { randomUUID } from "node:crypto";
import test from "ava";
import pg from "pg";
import { ADVISORY_LOCKS, createDbPool, migrate, type DatabasePool } from "@controlplane/db";
import { createLogger } from "@controlplane/log";
import { createTestDatabase, query, type TestDatabase } from "@controlplane/testkit";
import { loadTaskQueueConfig, type TaskQueueConfig } from "../src/config.js";
import { purgeOnce, retentionJob } from "../src/retention.js";
import { MIGRATIONS_DIR, SCHEMA } from "../src/service.js";

// The task queue's retention against real Postgres: exactly the old finished
// tasks (with their messages and usage) and long-expired tokens go, in
// batches, and nothing unfinished or unrelayed ever does.

const log = createLogger("test", process.env.TEST_LOG_LEVEL ?? "silent");
let db: TestDatabase;
let pool: DatabasePool;

test.before(async () => {
  db = await createTestDatabase();
  await migrate({ databaseUrl: db.url, schema: SCHEMA, dir: MIGRATIONS_DIR, log });
  pool = await createDbPool(db.url, { name: "retention-test", maxSize: 4 });
});
test.after.always(async () => {
  await pool?.end();
  await db?.drop();
});
// Each test starts from empty tables: they share the database and run one at a time.
test.beforeEach(async () => {
  await query(db.url, "TRUNCATE taskqueue.task, taskqueue.task_message, taskqueue.task_usage, taskqueue.task_token, taskqueue.outbox");
});

const DAY_MS = 24 * 3600_000;

function config(extra: Record<string, string> = {}): TaskQueueConfig {
  return loadTaskQueueConfig({ DATABASE_URL: db.url, RETENTION_BATCH_SIZE: "2", RETENTION_MAX_BATCHES: "100", ...extra });
}

interface Seed {
  status: "queued" | "dispatched" | "running" | "waiting_local_directory" | "completed" | "failed" | "cancelled";
  /** How long ago it was created (and started, once past queued). */
  ageMs: number;
  /** How long ago it finished (null: completed_at unset). */
  finishedAgoMs: number | null;
  messages?: number;
  usage?: number;
}

/** A task straight into the table, with `messages` messages and `usage` usage rows. */
async function seedTask(seed: Seed): Promise<string> {
  const id = randomUUID();
  const ago = (ms: number | null) => (ms === null ? null : new Date(Date.now() - ms));
  await query(
    db.url,
    `INSERT INTO taskqueue.task (id, workspace_id, agent_id, runtime_id, status, created_at, dispatched_at, started_at, completed_at)
     VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $5 <> 'queued' THEN $6::timestamptz END, CASE WHEN $5 NOT IN ('queued', 'dispatched') THEN $6::timestamptz END, $7)`,
    [id, randomUUID(), randomUUID(), randomUUID(), seed.status, ago(seed.ageMs), ago(seed.finishedAgoMs)],
  );
  for (let seq = 1; seq <= (seed.messages ?? 0); seq++) {
    await query(db.url, "INSERT INTO taskqueue.task_message (task_id, seq, type, content) VALUES ($1, $2, 'text', 'hello')", [id, seq]);
  }
  for (let i = 0; i < (seed.usage ?? 0); i++) {
    await query(db.url, "INSERT INTO taskqueue.task_usage (task_id, provider, model, input_tokens) VALUES ($1, 'anthropic', $2, 10)", [id, `model-${i}`]);
  }
  return id;
}

/** A token of `taskId` that expires (or expired) `expiresInMs` from now. */
async function seedToken(taskId: string, expiresInMs: number): Promise<string> {
  const id = randomUUID();
  await query(
    db.url,
    "INSERT INTO taskqueue.task_token (id, token_hash, task_id, agent_id, workspace_id, user_id, expires_at) VALUES ($1, $2, $3, $4, $4, $4, $5)",
    [id, randomUUID().replaceAll("-", ""), taskId, randomUUID(), new Date(Date.now() + expiresInMs)],
  );
  return id;
}

const ids = async (table: string, column = "id") =>
  new Set((await query<{ id: string }>(db.url, `SELECT ${column}::text AS id FROM taskqueue.${table}`)).map((r) => r.id));
const messagesOf = async (taskId: string) =>
  Number((await query<{ n: string }>(db.url, "SELECT count(*) AS n FROM taskqueue.task_message WHERE task_id = $1", [taskId]))[0]!.n);
const usageOf = async (taskId: string) =>
  Number((await query<{ n: string }>(db.url, "SELECT count(*) AS n FROM taskqueue.task_usage WHERE task_id = $1", [taskId]))[0]!.n);

/** Old and new, finished and not: what a 30-day retention must and must not delete. */
async function seedMix() {
  const old = 31 * DAY_MS;
  const gone = [
    await seedTask({ status: "completed", ageMs: old + DAY_MS, finishedAgoMs: old, messages: 3, usage: 2 }),
    await seedTask({ status: "failed", ageMs: old + DAY_MS, finishedAgoMs: old, messages: 3, usage: 1 }),
    await seedTask({ status: "cancelled", ageMs: old + DAY_MS, finishedAgoMs: old, messages: 3 }),
  ];
  const kept = [
    // Finished, but within the retention.
    await seedTask({ status: "completed", ageMs: old, finishedAgoMs: 29 * DAY_MS, messages: 2, usage: 1 }),
    // Unfinished, however old.
    await seedTask({ status: "running", ageMs: 60 * DAY_MS, finishedAgoMs: null, messages: 2, usage: 1 }),
    await seedTask({ status: "queued", ageMs: 60 * DAY_MS, finishedAgoMs: null }),
    await seedTask({ status: "dispatched", ageMs: 60 * DAY_MS, finishedAgoMs: null }),
    await seedTask({ status: "waiting_local_directory", ageMs: 60 * DAY_MS, finishedAgoMs: null, messages: 1 }),
    // A completed_at on an unfinished row: the status decides, not the timestamp.
    await seedTask({ status: "running", ageMs: 60 * DAY_MS, finishedAgoMs: old, messages: 1, usage: 1 }),
  ];
  return { gone, kept };
}

test.serial("a pass deletes exactly the old finished tasks with their messages and usage, a statement per batch", async (t) => {
  const { gone, kept } = await seedMix();
  const messagesKept = await Promise.all(kept.map(messagesOf));
  const usageKept = await Promise.all(kept.map(usageOf));

  const result = await purgeOnce({ pool, config: config() });

  t.deepEqual(result.messages, { deleted: 9, batches: 5, done: true }, "9 messages, 2 a statement");
  t.deepEqual(result.usage, { deleted: 3, batches: 2, done: true });
  t.deepEqual(result.tasks, { deleted: 3, batches: 2, done: true });
  t.deepEqual([...(await ids("task"))].sort(), [...kept].sort(), "exactly the old finished tasks went");
  for (const id of gone) t.is((await messagesOf(id)) + (await usageOf(id)), 0);
  t.deepEqual(await Promise.all(kept.map(messagesOf)), messagesKept, "the others keep every message");
  t.deepEqual(await Promise.all(kept.map(usageOf)), usageKept, "and every usage row");

  const again = await purgeOnce({ pool, config: config() });
  t.is(again.messages.deleted + again.usage.deleted + again.tasks.deleted + again.tokens.deleted, 0, "a second pass finds nothing");
});

test.serial("a pass stops at its budget; the next passes finish, and a task goes only once its messages are gone", async (t) => {
  const { gone, kept } = await seedMix();
  const tight = config({ RETENTION_MAX_BATCHES: "2" });

  const first = await purgeOnce({ pool, config: tight });
  t.deepEqual(first.messages, { deleted: 4, batches: 2, done: false }, "two statements of two rows, then the budget is spent");
  const left = await ids("task");
  for (const id of gone.filter((id) => left.has(id))) {
    t.true((await messagesOf(id)) + (await usageOf(id)) > 0, "a deleted task had nothing left; a kept one still has rows");
  }
  t.true(
    gone.some((id) => left.has(id)),
    "some old task waits for the next pass",
  );

  for (let pass = 2; ; pass++) {
    const result = await purgeOnce({ pool, config: tight });
    if (Object.values(result).every((purged) => purged.done)) break;
    t.true(pass < 10, "the passes converge");
  }
  t.deepEqual([...(await ids("task"))].sort(), [...kept].sort());
});

test.serial("tokens go a retention past their expiry, whatever their task; live ones stay", async (t) => {
  const running = await seedTask({ status: "running", ageMs: DAY_MS, finishedAgoMs: null });
  const longExpired = await seedToken(running, -2 * DAY_MS);
  const justExpired = await seedToken(running, -3600_000);
  const live = await seedToken(running, DAY_MS);
  const result = await purgeOnce({ pool, config: config() });
  t.deepEqual(result.tokens, { deleted: 1, batches: 1, done: true });
  t.deepEqual([...(await ids("task_token"))].sort(), [justExpired, live].sort());
  t.false((await ids("task_token")).has(longExpired));
  t.true((await ids("task")).has(running), "the running task stays");
});

test.serial("unrelayed outbox rows are never deleted, however old", async (t) => {
  await query(db.url, "INSERT INTO taskqueue.outbox (id, event_type, payload, created_at) VALUES ($1, 'task.failed', '\\x00', now() - interval '60 days')", [
    randomUUID(),
  ]);
  await seedMix();
  await purgeOnce({ pool, config: config() });
  t.is((await ids("outbox")).size, 1);
});

test.serial("the retention job runs on one replica at a time: with its lock held elsewhere it deletes nothing", async (t) => {
  const { gone } = await seedMix();
  const job = retentionJob({ pool, config: config(), log });
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock($1, $2)", [ADVISORY_LOCKS.taskRetention.classId, ADVISORY_LOCKS.taskRetention.objId]);
    t.deepEqual(await job.runOnce(), { status: "lock_busy" });
    for (const id of gone) t.true((await ids("task")).has(id), "nothing deleted without the lock");
  } finally {
    await holder.end();
  }
  const outcome = await job.runOnce();
  t.is(outcome.status, "ran");
  t.is(outcome.status === "ran" ? outcome.result.tasks.deleted : -1, gone.length);
});

import { Writable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import test from "ava";
import pg from "pg";
import { createDbPool, sql, tryTransactionLock, type AdvisoryLock, type DatabasePool } from "@controlplane/db";
import { JobPassError, PeriodicJob, startPeriodicJob, type PeriodicJobOptions } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { registry } from "@controlplane/metrics";
import { createTestDatabase, query, waitFor, type TestDatabase } from "@controlplane/testkit";

const log = createLogger("test", "silent");
/** Keys of the tests' own (one per test: they run concurrently), clear of the real table. */
const SESSION_LOCK: AdvisoryLock = { name: "jobs test", classId: 0x7e57, objId: 1 };
const XACT_LOCK: AdvisoryLock = { name: "jobs test xact", classId: 0x7e57, objId: 2 };

let db: TestDatabase;
let pool: DatabasePool;
test.before(async () => {
  db = await createTestDatabase();
  pool = await createDbPool(db.url, { name: "jobs-test", maxSize: 4 });
});
test.after.always(async () => {
  await pool?.end();
  await db?.drop();
});

/** A promise the test resolves when it chooses. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** The value of a job metric for one job (0 when never set). */
async function metric(name: string, job: string): Promise<number> {
  const found = registry.getSingleMetric(name);
  if (!found) return 0;
  const { values } = await found.get();
  return values.find((v) => v.labels.job_name === job)?.value ?? 0;
}

/** A job with a 1-hour interval: passes only when the test calls runOnce. */
function manualJob<R>(name: string, run: PeriodicJobOptions<R>["run"], extra: Partial<PeriodicJobOptions<R>> = {}): PeriodicJob<R> {
  return new PeriodicJob({ name, intervalMs: 3_600_000, log, run, ...extra });
}

test("runOnce runs one pass, returns its result and records the run", async (t) => {
  const job = manualJob("t_run_once", async () => (await pool.oneFirst(sql.unsafe`SELECT 41 + 1 AS answer`)) as number);
  const before = Date.now() / 1000;
  t.deepEqual(await job.runOnce(), { status: "ran", result: 42 });
  t.deepEqual(await job.runOnce(), { status: "ran", result: 42 });
  t.is(await metric("background_job_runs_total", "t_run_once"), 2);
  t.is(await metric("background_job_failures_total", "t_run_once"), 0);
  t.true((await metric("background_job_last_success_timestamp_seconds", "t_run_once")) >= Math.floor(before));
  const histogram = (await registry.getSingleMetric("background_job_duration_seconds")!.get()).values as Array<{
    labels: { job_name?: string };
    value: number;
    metricName?: string;
  }>;
  t.is(histogram.find((v) => v.labels.job_name === "t_run_once" && v.metricName === "background_job_duration_seconds_count")?.value, 2);
});

test("stop waits for the running pass", async (t) => {
  const release = gate();
  const entered = gate();
  const order: string[] = [];
  const job = manualJob("t_stop_waits", async () => {
    entered.open();
    await release.promise;
    order.push("pass ended");
  }).start();
  const pass = job.runOnce();
  await entered.promise;
  const stopped = job.stop().then(() => order.push("stopped"));
  // Give a stop that did not wait every chance to finish first.
  await nextTurn();
  await pool.query(sql.unsafe`SELECT 1`);
  t.deepEqual(order, []);
  release.open();
  await stopped;
  await pass;
  t.deepEqual(order, ["pass ended", "stopped"]);
});

test("passes of one job never overlap, whether started by the timer or by runOnce", async (t) => {
  let inFlight = 0;
  let most = 0;
  let passes = 0;
  const job = startPeriodicJob({
    name: "t_no_overlap",
    intervalMs: 1,
    log,
    run: async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      // Real work that takes longer than the interval, so ticks come while it runs.
      await pool.query(sql.unsafe`SELECT pg_sleep(0.02)`);
      inFlight--;
      passes++;
    },
  });
  try {
    const outcomes = await Promise.all([job.runOnce(), job.runOnce(), job.runOnce()]);
    t.deepEqual(
      outcomes.map((o) => o.status),
      ["ran", "ran", "ran"],
    );
    await waitFor("timer passes as well", () => passes >= 5, { timeoutMs: 10_000 });
  } finally {
    await job.stop();
  }
  t.is(most, 1, "at most one pass at a time");
});

test("the session lock lets one of two instances run; the other is counted as lock-busy", async (t) => {
  const release = gate();
  const entered = gate();
  const sessionLock = { lock: SESSION_LOCK, databaseUrl: db.url };
  const first = manualJob(
    "t_lock_first",
    async () => {
      entered.open();
      await release.promise;
      return "first";
    },
    { sessionLock },
  );
  const second = manualJob("t_lock_second", async () => "second", { sessionLock });
  const holding = first.runOnce();
  await entered.promise;
  // Held on a connection of its own, named after the lock, not on a pooled one.
  const holders = await query<{ application_name: string }>(
    db.url,
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted`,
    [SESSION_LOCK.classId, SESSION_LOCK.objId],
  );
  t.deepEqual(
    holders.map((h) => h.application_name),
    ["lock: jobs test"],
  );
  t.deepEqual(await second.runOnce(), { status: "lock_busy" });
  t.is(await metric("background_job_lock_busy_total", "t_lock_second"), 1);
  t.is(await metric("background_job_runs_total", "t_lock_second"), 0);
  release.open();
  t.deepEqual(await holding, { status: "ran", result: "first" });
  t.deepEqual(await second.runOnce(), { status: "ran", result: "second" }, "released with the pass");

  // A pass that throws releases the lock too.
  const failing = manualJob("t_lock_failing", () => Promise.reject(new Error("pass broke")), { sessionLock });
  await t.throwsAsync(failing.runOnce(), { instanceOf: JobPassError });
  t.deepEqual(await second.runOnce(), { status: "ran", result: "second" });
});

test("a pass that finds its transaction lock taken reports lock-busy, not a run", async (t) => {
  const job = manualJob("t_xact_lock", async (pass) =>
    pool.transaction(async (tx) => {
      if (!(await tryTransactionLock(tx, XACT_LOCK))) {
        pass.lockBusy();
        return false;
      }
      return true;
    }),
  );
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query("BEGIN");
    await holder.query("SELECT pg_advisory_xact_lock($1, $2)", [XACT_LOCK.classId, XACT_LOCK.objId]);
    t.deepEqual(await job.runOnce(), { status: "lock_busy" });
    await holder.query("COMMIT");
  } finally {
    await holder.end();
  }
  t.deepEqual(await job.runOnce(), { status: "ran", result: true });
  t.is(await metric("background_job_lock_busy_total", "t_xact_lock"), 1);
  t.is(await metric("background_job_runs_total", "t_xact_lock"), 1);
});

test("a failed pass is counted, logged with its cause, and thrown to a runOnce caller", async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const job = new PeriodicJob({
    name: "t_failing",
    intervalMs: 3_600_000,
    log: createLogger("test", "info", sink),
    run: async () => {
      await pool.query(sql.unsafe`SELECT * FROM no_such_table`);
    },
  });
  const error = await t.throwsAsync(job.runOnce(), { instanceOf: JobPassError });
  t.regex(String((error!.cause as Error).message), /no_such_table/);
  t.is(await metric("background_job_failures_total", "t_failing"), 1);
  t.is(await metric("background_job_runs_total", "t_failing"), 1);
  t.is(await metric("background_job_last_success_timestamp_seconds", "t_failing"), 0, "no success recorded");
  const logged = lines.map((line) => JSON.parse(line) as { job?: string; msg: string; err?: { message: string } }).find((l) => l.job === "t_failing");
  t.is(logged?.msg, "background job pass failed");
  t.regex(logged?.err?.message ?? "", /^t_failing: pass failed: .*no_such_table/, "the cause is in the logged message");
  // The job keeps going: the next pass runs.
  await t.throwsAsync(job.runOnce());
  t.is(await metric("background_job_failures_total", "t_failing"), 2);
});

test("timer passes wait out the start delay; a final pass runs on stop when asked for", async (t) => {
  let clockPasses = 0;
  let delayedPasses = 0;
  let finalPasses = 0;
  const interval = 5;
  const clock = startPeriodicJob({ name: "t_clock", intervalMs: interval, log, run: async () => void clockPasses++ });
  // The delay is far beyond the intervals this test waits for.
  const delayed = startPeriodicJob({ name: "t_delayed", intervalMs: interval, startDelayMs: 3_600_000, log, run: async () => void delayedPasses++ });
  const final = startPeriodicJob({ name: "t_final", intervalMs: 3_600_000, finalPassOnStop: true, log, run: async () => void finalPasses++ });
  try {
    await waitFor("several intervals", () => clockPasses >= 5, { timeoutMs: 10_000 });
    t.is(delayedPasses, 0, "no timer pass within the start delay");
    t.deepEqual(await delayed.runOnce(), { status: "ran", result: undefined }, "runOnce is not held back");
  } finally {
    await Promise.all([clock.stop(), delayed.stop()]);
  }
  t.is(finalPasses, 0);
  await final.stop();
  t.is(finalPasses, 1);
  await final.stop();
  t.is(finalPasses, 1, "stopping twice runs it once");
});

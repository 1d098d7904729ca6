import { randomUUID } from "node:crypto";
import test from "ava";
import pg from "pg";
import { startGateway } from "@controlplane/gateway";
import { loadGatewayConfig } from "@controlplane/gateway/config";
import { ADVISORY_LOCKS } from "@controlplane/db";
import { createClient, status } from "@controlplane/grpc";
import { startLiveness } from "@controlplane/liveness";
import { loadLivenessConfig } from "@controlplane/liveness/config";
import { sweepOnce } from "@controlplane/liveness/sweeper";
import { createLogger } from "@controlplane/log";
import { registry as metrics } from "@controlplane/metrics";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { createTestDatabase, query, waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";
import { seedRuntime } from "../support/tasks.js";

const log = createLogger("test", "silent");
let stack: Stack;
test.before(async () => {
  // A short timing chain (300 + 200 + 300 < 1200 ms), sweeps on demand.
  stack = await startStack({
    HEARTBEAT_INTERVAL_MS: "200",
    FLUSH_INTERVAL_MS: "300",
    FLUSH_TICK_MS: "300",
    LIVENESS_TTL_MS: "700",
    STALE_THRESHOLD_MS: "1200",
    SWEEP_INTERVAL_MS: "600000",
    // A fleet of four falling silent together is taken for our outage.
    SWEEP_SILENCE_MIN_FLEET: "4",
  });
});
test.after.always(async () => {
  await stack?.stop();
});
// Each test starts from a quiet fleet: runtimes earlier tests left online would
// count towards (and compete for) the sweep cap.
// Nor does a fleet silence or resume grace an earlier test left behind.
test.beforeEach(async () => {
  await query(stack.db.url, "UPDATE liveness.runtime_liveness SET status = 'offline' WHERE status = 'online'");
  for (const entry of stack.livenessService.deps.state.runtimes.values()) entry.status = "offline";
  await query(stack.db.url, "UPDATE liveness.sweep_state SET silent_since = NULL, hold_until = NULL");
});

/** The configuration under test: every bound below is derived from it. */
const config = () => stack.livenessService.deps.config;

/** A deadline for what the timing chain makes happen within a threshold or two (never a wait in itself). */
const chainDeadline = () => 4 * (config().STALE_THRESHOLD_MS + config().LIVENESS_TTL_MS);

/**
 * Until each runtime would be swept on its own: stale in the database, no
 * live key in the store, no beat within the threshold in this replica's memory.
 */
async function untilSweepable(runtimeIds: string[]): Promise<void> {
  const { store, state } = stack.livenessService.deps;
  await waitFor(
    "the runtimes to be stale everywhere",
    async () => {
      const cutoff = Date.now() - config().STALE_THRESHOLD_MS;
      const rows = await query<{ stale: boolean }>(
        stack.db.url,
        "SELECT coalesce(last_seen_at, status_changed_at) < $2 AS stale FROM liveness.runtime_liveness WHERE runtime_id = ANY($1)",
        [runtimeIds, new Date(cutoff)],
      );
      if (rows.length !== runtimeIds.length || !rows.every((row) => row.stale)) return false;
      if (runtimeIds.some((id) => (state.runtimes.get(id)?.lastBeatAt ?? 0) > cutoff)) return false;
      return (await Promise.all(runtimeIds.map((id) => store.isAlive(id)))).every((alive) => !alive);
    },
    { timeoutMs: chainDeadline(), intervalMs: config().HEARTBEAT_INTERVAL_MS / 2 },
  );
}

const skippedSweeps = async (reason: string) =>
  (await metrics.getSingleMetric("liveness_sweep_skipped_total")?.get())?.values.find((v) => v.labels.reason === reason)?.value ?? 0;

const beat = (ws: SeededWorkspace, runtimeId: string) =>
  http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: ws.member.pat, body: { runtime_id: runtimeId } });

const statusOf = async (runtimeId: string) =>
  (await query<{ status: string }>(stack.db.url, "SELECT status FROM liveness.runtime_liveness WHERE runtime_id = $1", [runtimeId]))[0]?.status;

const offlineEvents = async (runtimeId: string) =>
  (await stack.events.read("runtime.offline")).filter((e) => e.event.runtimeId === runtimeId && e.event.reason === 2);

/** Keeps a runtime beating every 150 ms until stopped, as a live daemon would (its cadence, not a wait). */
function keepBeating(ws: SeededWorkspace, runtimeId: string) {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await beat(ws, runtimeId);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

test.serial("the sweeper takes a silent runtime offline with one event; a beating one stays online", async (t) => {
  const ws = await seedWorkspace(stack);
  const silent = await seedRuntime(stack, ws);
  const live = await seedRuntime(stack, ws);
  await beat(ws, silent);
  const stop = keepBeating(ws, live);
  try {
    await waitFor(
      "the silent runtime to be swept",
      async () => {
        await sweepOnce(stack.livenessService.deps);
        return (await statusOf(silent)) === "offline";
      },
      { timeoutMs: 6_000, intervalMs: 200 },
    );
    await sweepOnce(stack.livenessService.deps);
    t.is(await statusOf(live), "online");
    const events = await waitFor("runtime.offline", async () => {
      const all = await offlineEvents(silent);
      return all.length > 0 ? all : undefined;
    });
    t.is(events.length, 1);
    t.deepEqual(await offlineEvents(live), []);
    await waitFor("the registry to follow", async () => (await stack.registry.getRuntime({ runtimeId: silent })).runtime!.status === "offline");
  } finally {
    await stop();
  }
});

test.serial("two sweepers never both act: one holding the lock blocks the other; concurrent sweeps flip once", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  await waitFor(
    "the runtime to look dead",
    async () => {
      const rows = await query<{ stale: boolean }>(
        stack.db.url,
        "SELECT last_seen_at < now() - interval '1200 milliseconds' AS stale FROM liveness.runtime_liveness WHERE runtime_id = $1",
        [runtimeId],
      );
      return rows[0]!.stale;
    },
    { timeoutMs: 5_000, intervalMs: 100 },
  );
  await waitFor("its key to expire", async () => !(await stack.livenessService.deps.store.isAlive(runtimeId)), { timeoutMs: 5_000 });

  const holder = new pg.Client({ connectionString: stack.db.url });
  await holder.connect();
  try {
    await holder.query("BEGIN");
    await holder.query("SELECT pg_advisory_xact_lock($1, $2)", [ADVISORY_LOCKS.livenessSweeper.classId, ADVISORY_LOCKS.livenessSweeper.objId]);
    const blocked = await sweepOnce(stack.livenessService.deps);
    t.false(blocked.swept, "another sweeper holds the lock");
    t.deepEqual(await stack.livenessService.jobs.sweeper.runOnce(), { status: "lock_busy" }, "and the job counts it as lock-busy");
    t.is(await statusOf(runtimeId), "online");
    await holder.query("COMMIT");
  } finally {
    await holder.end();
  }

  const second = await startLiveness(loadLivenessConfig({ ...stack.env, LIVENESS_GRPC_PORT: "0" }), log);
  try {
    const results = await Promise.all([
      sweepOnce(stack.livenessService.deps),
      sweepOnce(second.deps),
      sweepOnce(stack.livenessService.deps),
      sweepOnce(second.deps),
    ]);
    t.is(results.flatMap((r) => r.offline).filter((id) => id === runtimeId).length, 1, "flipped by exactly one sweep");
    t.is(await statusOf(runtimeId), "offline");
  } finally {
    await second.stop();
  }
  await waitFor("the event", async () => (await offlineEvents(runtimeId)).length > 0);
  t.is((await offlineEvents(runtimeId)).length, 1);
});

test.serial("a liveness restart does not take live runtimes offline; silent ones still go", async (t) => {
  const ws = await seedWorkspace(stack);
  const live = await seedRuntime(stack, ws);
  const silent = await seedRuntime(stack, ws);
  await beat(ws, silent);
  const stop = keepBeating(ws, live);
  try {
    await waitFor("the live runtime online", async () => (await statusOf(live)) === "online");
    const port = Number(stack.env.LIVENESS_GRPC_PORT);
    await stack.livenessService.stop();
    stack.livenessService = await startLiveness(loadLivenessConfig(stack.env), log);
    t.is(port, stack.livenessService.port);
    // The new replica knows when each runtime was last written, so its first beats do not all flush at once.
    const [stored] = await query<{ last_seen_at: Date }>(stack.db.url, "SELECT last_seen_at FROM liveness.runtime_liveness WHERE runtime_id = $1", [silent]);
    t.is(stack.livenessService.deps.state.runtimes.get(silent)?.lastFlushedAt, stored!.last_seen_at.getTime());
    // The database alone would call both dead: only the shared store and the new beats know better.
    await query(stack.db.url, "UPDATE liveness.runtime_liveness SET last_seen_at = now() - interval '1 hour' WHERE runtime_id = ANY($1)", [[live, silent]]);
    await waitFor("the silent runtime's key to expire", async () => !(await stack.livenessService.deps.store.isAlive(silent)), { timeoutMs: 5_000 });
    const result = await sweepOnce(stack.livenessService.deps);
    t.deepEqual(result.offline, [silent]);
    t.is(await statusOf(live), "online");
  } finally {
    await stop();
  }
});

test.serial("a beat that arrives while liveness restarts waits for it and is answered 200", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  t.is((await beat(ws, runtimeId)).status, 200);
  await stack.livenessService.stop();
  const during = beat(ws, runtimeId);
  stack.livenessService = await startLiveness(loadLivenessConfig(stack.env), log);
  t.is((await during).status, 200);
  t.is((await beat(ws, runtimeId)).status, 200);
});

test.serial("one sweep takes at most half the online fleet offline", async (t) => {
  const ws = await seedWorkspace(stack);
  // One runtime keeps beating: the others' silence is theirs, not a fleet-wide one.
  const live = await seedRuntime(stack, ws);
  const runtimes = await Promise.all(Array.from({ length: 6 }, () => seedRuntime(stack, ws)));
  for (const id of runtimes) t.is((await beat(ws, id)).status, 200);
  const stop = keepBeating(ws, live);
  try {
    t.deepEqual(
      await Promise.all(runtimes.map(statusOf)),
      runtimes.map(() => "online"),
    );
    await untilSweepable(runtimes);
    const online = runtimes.length + 1;
    const limit = Math.floor(online * config().SWEEP_MAX_FRACTION);
    const first = await sweepOnce(stack.livenessService.deps);
    t.is(first.offline.length, limit);
    t.is(first.capped, runtimes.length - limit);
    const second = await sweepOnce(stack.livenessService.deps);
    t.is(second.offline.length, Math.floor((online - limit) * config().SWEEP_MAX_FRACTION), "the cap follows the shrinking fleet");
    t.is(await statusOf(live), "online");
  } finally {
    await stop();
  }
});

test.serial("a runtime that registers and never beats is swept a stale threshold after registering, and again after re-registering", async (t) => {
  const ws = await seedWorkspace(stack);
  const daemonId = `daemon-${randomUUID().slice(0, 8)}`;
  const runtimeId = await seedRuntime(stack, ws, daemonId);
  const deps = stack.livenessService.deps;
  for (const round of [1, 2]) {
    const { runtime } = await stack.registry.getRuntime({ runtimeId });
    t.is(runtime!.status, "online", "register writes it online");
    const registeredAt = runtime!.lastSeenAt!.getTime();
    await waitFor("liveness to count it online", async () => (await statusOf(runtimeId)) === "online");
    const sweptAt = await waitFor(
      "the silent runtime to be swept",
      async () => {
        const startedAt = Date.now();
        return (await sweepOnce(deps)).offline.includes(runtimeId) ? startedAt : false;
      },
      { timeoutMs: chainDeadline(), intervalMs: config().STALE_THRESHOLD_MS / 10 },
    );
    t.true(sweptAt >= registeredAt + config().STALE_THRESHOLD_MS, "not before a stale threshold after the registration");
    await waitFor("runtime.offline (stale)", async () => (await offlineEvents(runtimeId)).length === round);
    await waitFor("the registry to follow", async () => (await stack.registry.getRuntime({ runtimeId })).runtime!.status === "offline");
    // The daemon restarts: the registry writes the same runtime online again, and again it never beats.
    if (round === 1) t.is(await seedRuntime(stack, ws, daemonId), runtimeId);
  }
});

test.serial("a fleet-wide silence is our outage: no sweep, one warning; when beats resume, one threshold of grace, then the dead go", async (t) => {
  const ws = await seedWorkspace(stack);
  const fleet = await Promise.all(Array.from({ length: config().SWEEP_SILENCE_MIN_FLEET }, () => seedRuntime(stack, ws)));
  const [first, late, ...dead] = fleet as [string, string, ...string[]];
  for (const id of fleet) t.is((await beat(ws, id)).status, 200);
  // Sweeps run in a second replica that answers no beats: it learns of them only from what the other writes.
  const second = await startLiveness(loadLivenessConfig({ ...stack.env, LIVENESS_GRPC_PORT: "0" }), log);
  const lines: Array<{ msg: string }> = [];
  const sweeper = { ...second.deps, log: createLogger("test", "warn", { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) }) };
  const logged = (prefix: string) => lines.filter((line) => line.msg.startsWith(prefix)).length;
  const stops: Array<() => Promise<void>> = [];
  try {
    await untilSweepable(fleet);
    const before = await skippedSweeps("fleet_silent");
    for (let i = 0; i < 3; i++) t.like(await sweepOnce(sweeper), { swept: true, offline: [], skipped: "fleet_silent" });
    t.is((await skippedSweeps("fleet_silent")) - before, 3, "each skipped sweep is counted");
    t.is(logged("the whole fleet is silent"), 1, "warned once per silence, not per sweep");
    t.deepEqual(
      await Promise.all(fleet.map(statusOf)),
      fleet.map(() => "online"),
    );

    // Beats come back, through the gateway, to the other replica.
    const resumedAt = Date.now();
    stops.push(keepBeating(ws, first));
    const resumed = await waitFor(
      "the sweeper to hear beats again",
      async () => {
        const result = await sweepOnce(sweeper);
        return result.skipped === "fleet_silent" ? false : result;
      },
      { timeoutMs: chainDeadline(), intervalMs: config().FLUSH_TICK_MS / 3 },
    );
    t.like(resumed, { offline: [], skipped: "resume_grace" });
    const holdUntil = resumed.holdUntil!.getTime();
    t.true(holdUntil >= resumedAt + config().STALE_THRESHOLD_MS, "a stale threshold of grace from the first beat back");
    // This one's first beat after the outage comes late, within the grace.
    stops.push(keepBeating(ws, late));

    const gone: string[] = [];
    await waitFor(
      "the runtimes that died in the outage to be swept",
      async () => {
        const startedAt = Date.now();
        const result = await sweepOnce(sweeper);
        if (startedAt < holdUntil) t.like(result, { offline: [], skipped: "resume_grace" }, "nothing is swept during the grace");
        gone.push(...result.offline);
        return gone.length >= dead.length;
      },
      { timeoutMs: chainDeadline(), intervalMs: config().STALE_THRESHOLD_MS / 10 },
    );
    t.deepEqual([...gone].sort(), [...dead].sort());
    t.is(await statusOf(first), "online");
    t.is(await statusOf(late), "online");
    t.is(logged("beats resumed"), 1);
    t.is(logged("the whole fleet is silent"), 1);
  } finally {
    for (const stop of stops) await stop();
    await second.stop();
  }
});

test.serial("below SWEEP_SILENCE_MIN_FLEET a total silence is real: the silent runtimes are swept", async (t) => {
  const ws = await seedWorkspace(stack);
  const fleet = await Promise.all(Array.from({ length: config().SWEEP_SILENCE_MIN_FLEET - 1 }, () => seedRuntime(stack, ws)));
  for (const id of fleet) t.is((await beat(ws, id)).status, 200);
  await untilSweepable(fleet);
  const gone: string[] = [];
  await waitFor(
    "the whole small fleet to be swept",
    async () => {
      const result = await sweepOnce(stack.livenessService.deps);
      t.is(result.skipped, undefined);
      gone.push(...result.offline);
      return gone.length >= fleet.length;
    },
    { timeoutMs: chainDeadline(), intervalMs: 50 },
  );
  t.deepEqual([...gone].sort(), [...fleet].sort());
});

test.serial("a runtime lookup that cannot reach the registry is a 503 heartbeat failed (retryable), never a 404", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  // A liveness replica with an empty directory and no way to reach the registry.
  const db = await createTestDatabase();
  const broken = await startLiveness(
    loadLivenessConfig({ ...stack.env, DATABASE_URL: db.url, LIVENESS_GRPC_PORT: "0", REGISTRY_GRPC_ADDR: "127.0.0.1:1" }),
    log,
  );
  const gateway = await startGateway(loadGatewayConfig({ ...stack.env, GATEWAY_PORT: "0", LIVENESS_GRPC_ADDR: `127.0.0.1:${broken.port}` }), log);
  try {
    const client = createClient(LivenessServiceService, `127.0.0.1:${broken.port}`);
    const error = await t.throwsAsync(client.heartbeat({ runtimeId, supportsBatchImport: true }));
    client.close();
    t.not((error as unknown as { code: number }).code, status.NOT_FOUND);
    const answer = await http(`http://127.0.0.1:${gateway.port}`, "POST", "/api/daemon/heartbeat", { token: ws.member.pat, body: { runtime_id: runtimeId } });
    t.is(answer.status, 503);
    t.is(answer.text, '{"error":"heartbeat failed"}\n');
  } finally {
    await gateway.stop();
    await broken.stop();
    await db.drop();
  }
});

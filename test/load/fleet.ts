/**
 * Liveness benchmark (on demand: `npm run bench:fleet`): a fleet of N runtimes
 * heartbeating every 15 s through the gateway, spread evenly over the
 * interval, for several fleet sizes. For each: beats/s achieved against the
 * target, p50/p99 latency, database writes per second, CPU and RSS per
 * process. A size "holds" when it reaches 95% of its target rate with p99
 * under 50 ms. BENCH_FLEET_SIZES=10000,50000,100000 picks the sizes.
 */
import { randomUUID } from "node:crypto";
import * as hdr from "hdr-histogram-js";
import pg from "pg";
import { Pool } from "undici";
import { createClient } from "@controlplane/grpc";
import { IdentityServiceService, MemberRole } from "@controlplane/proto/registry/v1/identity";
import { cpuSeconds, natsPids, postgresPids, rssMiB, startControlPlane } from "./harness.js";

const SIZES = (process.env.BENCH_FLEET_SIZES ?? "10000,25000,50000,100000").split(",").map(Number);
const INTERVAL_MS = 15_000;
/**
 * Before measuring, one interval in which the gateway meets every runtime it
 * has not seen (each costs a batched registry lookup: reported as the cold
 * figures), then this much more warm-up.
 */
const WARMUP_MS = Number(process.env.BENCH_FLEET_WARMUP_MS ?? INTERVAL_MS);
const MEASURE_MS = Number(process.env.BENCH_FLEET_MEASURE_MS ?? 30_000);
const MAX = Math.max(...SIZES);
/** Beats in flight at most; past it the fleet is already broken. */
const MAX_IN_FLIGHT = 2_000;
const SERVICES = ["registry", "profile-catalog", "task-queue", "liveness", "gateway"];

const workspaceId = randomUUID();
const userId = randomUUID();
const runtimeIds = Array.from({ length: MAX }, () => randomUUID());

/**
 * The fleet goes straight into the registry's and liveness's tables: setup is
 * not what is measured. last_seen_at is spread over the last flush interval,
 * as a fleet in its steady state has it.
 */
async function loadFleet(databaseUrl: string) {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query("INSERT INTO registry.workspace (id, name, slug) VALUES ($1, 'fleet', $2)", [workspaceId, `fleet-${workspaceId.slice(0, 8)}`]);
  await db.query("INSERT INTO registry.member (workspace_id, user_id, role) VALUES ($1, $2, 'owner')", [workspaceId, userId]);
  for (let i = 0; i < MAX; i += 5_000) {
    const ids = runtimeIds.slice(i, i + 5_000);
    await db.query(
      `INSERT INTO registry.agent_runtime (id, workspace_id, daemon_id, name, provider, status, last_seen_at)
       SELECT id, $2, 'daemon-' || id, 'claude', 'claude', 'online', now() FROM unnest($1::uuid[]) AS id`,
      [ids, workspaceId],
    );
    await db.query(
      `INSERT INTO liveness.runtime_liveness (runtime_id, workspace_id, status, last_seen_at)
       SELECT id, $2, 'online', now() - random() * interval '60 seconds' FROM unnest($1::uuid[]) AS id`,
      [ids, workspaceId],
    );
  }
  await db.end();
}

// The larger sizes' runtimes sit idle while the smaller ones are measured: the
// sweeper would take them offline and turn their first beats into flips.
const plane = await startControlPlane({ DB_POOL_SIZE: "10", SWEEP_GRACE_MS: "86400000" }, loadFleet);
const identity = createClient(IdentityServiceService, plane.registryAddr, { deadlineMs: 30_000 });
const http = new Pool(new URL(plane.gatewayUrl).origin, { connections: 256, pipelining: 1 });
const stats = new pg.Client({ connectionString: plane.databaseUrl });
let token = "";

async function dbCounters() {
  const { rows } = await stats.query(
    `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float8 AS commits,
            (SELECT sum(n_tup_upd + n_tup_ins + n_tup_del) FROM pg_stat_user_tables)::float8 AS rows,
            (SELECT n_tup_upd FROM pg_stat_user_tables WHERE schemaname = 'liveness' AND relname = 'runtime_liveness')::float8 AS "lastSeen"`,
  );
  return rows[0] as { commits: number; rows: number; lastSeen: number };
}

/** Where the beat order stands: warm-up and measurement continue one schedule. */
let cursor = 0;

/**
 * Beats every runtime of the fleet once per interval, evenly spread, for
 * `durationMs`. The schedule follows the clock (not the timer's ticks), so a
 * slow tick is made up at the next one.
 */
async function run(size: number, durationMs: number, latency?: hdr.Histogram) {
  const beatsPerMs = size / INTERVAL_MS;
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let missed = 0;
  const inflight = new Set<Promise<void>>();
  const started = performance.now();
  for (let elapsed = 0; elapsed < durationMs; elapsed = performance.now() - started) {
    for (let owed = Math.floor(elapsed * beatsPerMs) - sent - missed; owed > 0; owed--) {
      const runtimeId = runtimeIds[cursor++ % size]!;
      // A saturated control plane: beats the generator cannot even send are counted as missed.
      if (inflight.size >= MAX_IN_FLIGHT) {
        missed++;
        continue;
      }
      sent++;
      const t0 = performance.now();
      const p: Promise<void> = http
        .request({
          path: "/api/daemon/heartbeat",
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: `{"runtime_id":"${runtimeId}","supports_batch_import":true}`,
        })
        .then(async (response) => {
          await response.body.dump();
          if (response.statusCode === 200) ok++;
          else failed++;
          latency?.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
        })
        .catch(() => {
          failed++;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(inflight);
  return { sent, ok, failed, missed, seconds: (performance.now() - started) / 1000 };
}

try {
  await stats.connect();
  ({ token } = await identity.issuePersonalAccessToken({ userId, name: "fleet", ttlSeconds: 3600 }));
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_OWNER });
  const pgPids = await postgresPids();
  const natsServer = await natsPids();
  const results: string[] = [];
  for (const size of SIZES) {
    const cold = hdr.build();
    await run(size, INTERVAL_MS, cold);
    await run(size, WARMUP_MS);
    const latency = hdr.build();
    const before = {
      db: await dbCounters(),
      perProcess: await Promise.all(plane.pids.map((pid) => cpuSeconds([pid]))),
      postgres: await cpuSeconds(pgPids),
      nats: await cpuSeconds(natsServer),
      bench: process.cpuUsage(),
    };
    const r = await run(size, MEASURE_MS, latency);
    const after = await dbCounters();
    const benchCpu = process.cpuUsage(before.bench);
    const target = size / (INTERVAL_MS / 1000);
    const rate = r.ok / r.seconds;
    const p50 = latency.getValueAtPercentile(50) / 1000;
    const p99 = latency.getValueAtPercentile(99) / 1000;
    const holds = rate >= target * 0.95 && p99 < 50 && r.failed === 0 && r.missed === 0;
    const perSecond = (n: number) => (n / r.seconds).toFixed(1);
    const cpu = (seconds: number) => `${((seconds / r.seconds) * 100).toFixed(0)}%`;
    const perProcess = await Promise.all(plane.pids.map((pid, i) => cpuSeconds([pid]).then((c) => c - before.perProcess[i]!)));
    const byService = perProcess.map((c, i) => `${plane.pids.length === 1 ? "all-in-one" : SERVICES[i]} ${cpu(c)}`).join(", ");
    const rss = (await Promise.all(plane.pids.map(rssMiB))).join("+");
    results.push(
      `${String(size).padStart(7)} runtimes: target ${target.toFixed(0)} beats/s, achieved ${rate.toFixed(0)}/s, ` +
        `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, failed ${r.failed}, missed ${r.missed}; ` +
        `db ${perSecond(after.rows - before.db.rows)} rows written/s (${perSecond(after.lastSeen - before.db.lastSeen)} last_seen_at), ` +
        `${perSecond(after.commits - before.db.commits)} transactions/s incl. reads; ` +
        `cpu ${byService}, postgres ${cpu((await cpuSeconds(pgPids)) - before.postgres)}, nats ${cpu((await cpuSeconds(natsServer)) - before.nats)}, ` +
        `load generator ${cpu((benchCpu.user + benchCpu.system) / 1e6)} (of 200%); rss ${rss} MiB; ` +
        `first interval (the gateway meeting the runtimes) p99 ${(cold.getValueAtPercentile(99) / 1000).toFixed(1)} ms -> ${holds ? "holds" : "BREAKS"}`,
    );
    console.log(results.at(-1));
  }
} catch (error) {
  console.error("benchmark failed:", error);
  process.exitCode = 1;
} finally {
  await http.close();
  await stats.end().catch(() => undefined);
  identity.close();
  await plane.stop();
}

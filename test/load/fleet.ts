/**
 * Liveness benchmark (on demand: `npm run bench:fleet`): a fleet of N runtimes
 * heartbeating every 15 s through the gateway, spread evenly over the
 * interval, for several fleet sizes. For each: beats/s achieved against the
 * target, p50/p99 latency, database writes per second, CPU and RSS per
 * process. A size "holds" when it reaches 95% of its target rate with p99
 * under 50 ms. BENCH_FLEET_SIZES=10000,50000,100000 picks the sizes.
 *
 * BENCH_FLEET_MODE picks how the fleet beats:
 * - `http` (the default): one POST /api/daemon/heartbeat per beat, each
 *   runtime's beats spread evenly over the interval;
 * - `socket`: daemons of BENCH_FLEET_RUNTIMES_PER_DAEMON runtimes (default
 *   10), each holding one daemon socket (GET /api/daemon/ws) for all of its
 *   runtimes and sending a round of `daemon:heartbeat` frames, one per
 *   runtime, once per interval, as the daemon does; the daemons' rounds are
 *   spread evenly. Latency is a beat's frame sent -> its
 *   `daemon:heartbeat_ack` received. The gateway's RSS is read before and
 *   after the sockets open (reported per 10,000 sockets);
 * - `both`: socket then HTTP at each size, on the same control plane, with a
 *   table comparing them (`npm run bench:fleet:socket`; default size 100,000).
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import pg from "pg";
import { Pool } from "undici";
import { WebSocket } from "ws";
import { createClient } from "@controlplane/grpc";
import { IdentityServiceService, MemberRole } from "@controlplane/proto/registry/v1/identity";
import { freePort } from "@controlplane/lifecycle";
import { cpuSeconds, ensureFileLimit, loadRuntimes, natsPids, postgresPids, rssMiB, scrapeMetrics, startControlPlane } from "./harness.js";
import { closeAll, ms, openMany } from "./sockets.js";

type Mode = "http" | "socket";
const MODE = process.env.BENCH_FLEET_MODE ?? "http";
if (!["http", "socket", "both"].includes(MODE)) throw new Error(`BENCH_FLEET_MODE is http, socket or both, not ${MODE}`);
const MODES: Mode[] = MODE === "both" ? ["socket", "http"] : [MODE as Mode];
const SIZES = (process.env.BENCH_FLEET_SIZES ?? (MODE === "http" ? "10000,25000,50000,100000" : "100000")).split(",").map(Number);
const RUNTIMES_PER_DAEMON = Number(process.env.BENCH_FLEET_RUNTIMES_PER_DAEMON ?? 10);
/** Socket upgrades in flight while the fleet connects (each checks every id of its socket). */
const OPEN_CONCURRENCY = Number(process.env.BENCH_FLEET_OPEN_CONCURRENCY ?? 64);
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
/** A socket with this much not yet written is not sent more (the generator cannot keep up): its beats count as missed. */
const MAX_BUFFERED_BYTES = 256 * 1024;
/** After a socket run, how long acks still in flight are waited for. */
const ACK_GRACE_MS = 5_000;
const SERVICES = ["registry", "profile-catalog", "task-queue", "liveness", "gateway"];

const workspaceId = randomUUID();
const userId = randomUUID();
const runtimeIds = Array.from({ length: MAX }, () => randomUUID());

if (MODES.includes("socket")) {
  const needed = Math.ceil(MAX / RUNTIMES_PER_DAEMON) + 1_000;
  const files = await ensureFileLimit(needed);
  console.log(
    `open files: soft ${files.soft}, hard ${files.hard}${files.raised ? " (soft raised to the hard limit)" : ""}; ${needed} wanted here and in the gateway`,
  );
  if (files.soft < needed) console.warn(`warning: too few file descriptors for ${needed - 1_000} sockets; some will fail to open`);
}

// The larger sizes' runtimes sit idle while the smaller ones are measured: the
// sweeper would take them offline and turn their first beats into flips.
const gatewayMetricsPort = await freePort();
const plane = await startControlPlane({ DB_POOL_SIZE: "10", SWEEP_GRACE_MS: "86400000", GATEWAY_METRICS_PORT: String(gatewayMetricsPort) }, (databaseUrl) =>
  loadRuntimes(databaseUrl, workspaceId, userId, runtimeIds),
);
const gatewayPid = plane.pids.at(-1)!;
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

/** The gateway's V8 heap in use, MiB (garbage not yet collected included). */
async function gatewayHeapMiB(): Promise<number> {
  return Math.round(((await scrapeMetrics(gatewayMetricsPort)).get("nodejs_heap_size_used_bytes") ?? 0) / 2 ** 20);
}

/** The gateway's GC seconds so far (all kinds), and its event-loop delay p99 since the last scrape (prom-client resets it). */
async function gatewayRuntimeStats(): Promise<{ gcSeconds: number; loopP99Ms: number }> {
  let gcSeconds = 0;
  const metrics = await scrapeMetrics(gatewayMetricsPort);
  for (const [key, value] of metrics) if (key.startsWith("nodejs_gc_duration_seconds_sum")) gcSeconds += value;
  return { gcSeconds, loopP99Ms: (metrics.get("nodejs_eventloop_lag_p99_seconds") ?? 0) * 1000 };
}

/** The gateway's socket heartbeat outcomes so far (sent, skipped, failed, ...). */
async function ackOutcomes(): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  for (const [key, value] of await scrapeMetrics(gatewayMetricsPort)) {
    const match = /^gateway_daemon_socket_acks_total\{outcome="(\w+)"\}$/.exec(key);
    if (match) outcomes[match[1]!] = value;
  }
  return outcomes;
}

interface RunResult {
  /** Beats sent (HTTP: requests; socket: frames). */
  sent: number;
  /** Beats answered ok (200; an ack with status ok). */
  ok: number;
  /** Answered, but not ok. */
  failed: number;
  /** Due but never sent: the generator held back (too many in flight, socket buffer full or closed). */
  missed: number;
  /** Socket only: sent, but no ack came (the gateway skipped or lost it). */
  noAck: number;
  seconds: number;
}

/** Where the beat order stands: warm-up and measurement continue one schedule. */
let cursor = 0;

/**
 * Beats every runtime of the fleet once per interval, evenly spread, for
 * `durationMs`. The schedule follows the clock (not the timer's ticks), so a
 * slow tick is made up at the next one.
 */
async function runHttp(size: number, durationMs: number, latency?: hdr.Histogram): Promise<RunResult> {
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
  return { sent, ok, failed, missed, noAck: 0, seconds: (performance.now() - started) / 1000 };
}

// ---- socket mode ----

/** Runtime id -> its index (for the ack's runtime_id). */
const indexOf = new Map<string, number>(runtimeIds.map((id, i) => [id, i]));
/** Each runtime's beat frame, built once. */
const beatFrames = runtimeIds.map((id) => `{"type":"daemon:heartbeat","payload":{"runtime_id":"${id}","supports_batch_import":true}}`);
/** When runtime i's outstanding beat was sent (performance.now()), 0 when none is. */
const sentAt = new Float64Array(MAX);
const tally = { ok: 0, failed: 0, inflight: 0, latency: undefined as hdr.Histogram | undefined };
let socketsClosed = 0;
const ACK_MARK = '"runtime_id":"';

function onSocketFrame(data: Buffer): void {
  const at = performance.now();
  const text = data.toString("latin1");
  if (!text.startsWith('{"type":"daemon:heartbeat_ack"')) return;
  const k = text.indexOf(ACK_MARK);
  const i = k < 0 ? undefined : indexOf.get(text.slice(k + ACK_MARK.length, k + ACK_MARK.length + 36));
  if (i === undefined || sentAt[i] === 0) return;
  const t0 = sentAt[i]!;
  sentAt[i] = 0;
  tally.inflight--;
  if (text.includes('"status":"ok"')) {
    tally.ok++;
    tally.latency?.recordValue(Math.max(1, Math.round((at - t0) * 1000)));
  } else {
    tally.failed++;
  }
}

let socketCursor = 0;

/**
 * Each daemon sends one round (a beat per runtime, back to back) per
 * interval; the rounds of all daemons are spread evenly over it, on the clock
 * as for HTTP.
 */
async function runSockets(sockets: WebSocket[], size: number, durationMs: number, latency?: hdr.Histogram): Promise<RunResult> {
  const daemons = sockets.length;
  const roundsPerMs = daemons / INTERVAL_MS;
  Object.assign(tally, { ok: 0, failed: 0, latency });
  let rounds = 0;
  let sent = 0;
  let missed = 0;
  let noAck = 0;
  const started = performance.now();
  for (let elapsed = 0; elapsed < durationMs; elapsed = performance.now() - started) {
    for (let owed = Math.floor(elapsed * roundsPerMs) - rounds; owed > 0; owed--) {
      rounds++;
      const d = socketCursor++ % daemons;
      const ws = sockets[d]!;
      const first = d * RUNTIMES_PER_DAEMON;
      const last = Math.min(first + RUNTIMES_PER_DAEMON, size);
      if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        missed += last - first;
        continue;
      }
      for (let i = first; i < last; i++) {
        // Its previous beat, an interval ago, was never acked.
        if (sentAt[i] !== 0) {
          noAck++;
          tally.inflight--;
        }
        sentAt[i] = performance.now();
        tally.inflight++;
        ws.send(beatFrames[i]!);
        sent++;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const until = performance.now() + ACK_GRACE_MS;
  while (tally.inflight > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
  const seconds = (performance.now() - started) / 1000;
  if (tally.inflight > 0) {
    noAck += tally.inflight;
    sentAt.fill(0);
    tally.inflight = 0;
  }
  tally.latency = undefined;
  return { sent, ok: tally.ok, failed: tally.failed, missed, noAck, seconds };
}

// ---- one size in one mode ----

interface Row {
  mode: Mode;
  size: number;
  target: number;
  rate: number;
  p50: number;
  p99: number;
  coldP99: number;
  run: RunResult;
  cpu: { byService: number[]; postgres: number; nats: number; generator: number };
  generatorLoopP99: number;
  /** The gateway's share of the measurement spent in GC, and its event-loop delay p99 over it. */
  gatewayGc: number;
  gatewayLoopP99: number;
  generatorRss: number;
  rss: number[];
  holds: boolean;
  /** Socket mode: the fleet connecting, and the gateway's RSS around it. */
  sockets?: {
    count: number;
    openSeconds: number;
    upgradeP50: string;
    upgradeP99: string;
    rssBefore: number;
    rssOpen: number;
    rssAfter: number;
    heapBefore: number;
    heapOpen: number;
    heapAfter: number;
    /** The gateway's ack outcomes during the measurement, beyond "sent". */
    outcomes: string;
  };
}

async function measure(mode: Mode, size: number, pgPids: number[], natsServer: number[]): Promise<Row> {
  let sockets: WebSocket[] = [];
  let socketInfo: Row["sockets"];
  if (mode === "socket") {
    socketsClosed = 0;
    const daemons = Math.ceil(size / RUNTIMES_PER_DAEMON);
    const idSets = Array.from({ length: daemons }, (_, d) => runtimeIds.slice(d * RUNTIMES_PER_DAEMON, Math.min((d + 1) * RUNTIMES_PER_DAEMON, size)));
    const rssBefore = await rssMiB(gatewayPid);
    const heapBefore = await gatewayHeapMiB();
    const cpuBefore = { perProcess: await Promise.all(plane.pids.map((pid) => cpuSeconds([pid]))), postgres: await cpuSeconds(pgPids) };
    const opened = await openMany(plane.gatewayUrl, token, idSets, OPEN_CONCURRENCY);
    const openCpuUs = (seconds: number) => ((seconds * 1e6) / size).toFixed(0);
    const openCpu = (await Promise.all(plane.pids.map((pid, i) => cpuSeconds([pid]).then((c) => c - cpuBefore.perProcess[i]!))))
      .map((c, i) => `${plane.pids.length === 1 ? "all-in-one" : SERVICES[i]} ${openCpuUs(c)}`)
      .filter((_, i) => plane.pids.length === 1 || ["gateway", "registry"].includes(SERVICES[i]!))
      .join(", ");
    const openPostgres = openCpuUs((await cpuSeconds(pgPids)) - cpuBefore.postgres);
    sockets = opened.sockets;
    for (const ws of sockets) {
      ws.on("message", onSocketFrame);
      ws.on("close", () => socketsClosed++);
    }
    const rssOpen = await rssMiB(gatewayPid);
    const heapOpen = await gatewayHeapMiB();
    socketInfo = {
      count: daemons,
      openSeconds: opened.seconds,
      upgradeP50: ms(opened.upgrade, 50),
      upgradeP99: ms(opened.upgrade, 99),
      rssBefore,
      rssOpen,
      rssAfter: 0,
      heapBefore,
      heapOpen,
      heapAfter: 0,
      outcomes: "",
    };
    console.log(
      `${daemons} daemon sockets (${RUNTIMES_PER_DAEMON} runtimes each) opened in ${opened.seconds.toFixed(1)} s ` +
        `(${(size / opened.seconds).toFixed(0)} runtime ids checked/s; upgrade p50 ${socketInfo.upgradeP50} ms, p99 ${socketInfo.upgradeP99} ms; ` +
        `CPU per runtime id: ${openCpu}, postgres ${openPostgres} µs); ` +
        `gateway RSS ${rssBefore} -> ${rssOpen} MiB, heap used ${heapBefore} -> ${heapOpen} MiB`,
    );
  }
  const run = (durationMs: number, latency?: hdr.Histogram) =>
    mode === "http" ? runHttp(size, durationMs, latency) : runSockets(sockets, size, durationMs, latency);

  const cold = hdr.build();
  await run(INTERVAL_MS, cold);
  await run(WARMUP_MS);
  const latency = hdr.build();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const before = {
    db: await dbCounters(),
    perProcess: await Promise.all(plane.pids.map((pid) => cpuSeconds([pid]))),
    postgres: await cpuSeconds(pgPids),
    nats: await cpuSeconds(natsServer),
    generator: process.cpuUsage(),
    outcomes: mode === "socket" ? await ackOutcomes() : {},
    gateway: await gatewayRuntimeStats(),
  };
  loop.enable();
  const r = await run(MEASURE_MS, latency);
  loop.disable();
  const generatorCpu = process.cpuUsage(before.generator);
  const after = await dbCounters();
  const perProcess = await Promise.all(plane.pids.map((pid, i) => cpuSeconds([pid]).then((c) => c - before.perProcess[i]!)));
  const gateway = await gatewayRuntimeStats();
  const share = (seconds: number) => seconds / r.seconds;
  const row: Row = {
    mode,
    size,
    target: size / (INTERVAL_MS / 1000),
    rate: r.ok / r.seconds,
    p50: latency.getValueAtPercentile(50) / 1000,
    p99: latency.getValueAtPercentile(99) / 1000,
    coldP99: cold.getValueAtPercentile(99) / 1000,
    run: r,
    cpu: {
      byService: perProcess.map(share),
      postgres: share((await cpuSeconds(pgPids)) - before.postgres),
      nats: share((await cpuSeconds(natsServer)) - before.nats),
      generator: share((generatorCpu.user + generatorCpu.system) / 1e6),
    },
    generatorLoopP99: loop.percentile(99) / 1e6,
    gatewayGc: (gateway.gcSeconds - before.gateway.gcSeconds) / r.seconds,
    gatewayLoopP99: gateway.loopP99Ms,
    generatorRss: Math.round(process.memoryUsage.rss() / 2 ** 20),
    rss: await Promise.all(plane.pids.map(rssMiB)),
    holds: false,
    sockets: socketInfo,
  };
  row.holds = row.rate >= row.target * 0.95 && row.p99 < 50 && r.failed === 0 && r.missed === 0 && r.noAck === 0;
  let closedDuring = 0;
  if (socketInfo) {
    socketInfo.rssAfter = row.rss.at(-1)!;
    socketInfo.heapAfter = await gatewayHeapMiB();
    const outcomes = await ackOutcomes();
    socketInfo.outcomes =
      Object.entries(outcomes)
        .map(([outcome, n]) => [outcome, n - (before.outcomes[outcome] ?? 0)] as const)
        .filter(([outcome, n]) => outcome !== "sent" && n > 0)
        .map(([outcome, n]) => `${outcome} ${n}`)
        .join(", ") || "none";
    closedDuring = socketsClosed;
    await closeAll(sockets);
    for (const ws of sockets) ws.removeAllListeners("message");
  }
  const perSecond = (n: number) => (n / r.seconds).toFixed(1);
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const byService = row.cpu.byService.map((c, i) => `${plane.pids.length === 1 ? "all-in-one" : SERVICES[i]} ${pct(c)}`).join(", ");
  console.log(
    `${mode.padEnd(6)} ${String(size).padStart(7)} runtimes: target ${row.target.toFixed(0)} beats/s, achieved ${row.rate.toFixed(0)}/s, ` +
      `p50 ${row.p50.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms, failed ${r.failed}, missed ${r.missed}` +
      (socketInfo ? `, no ack ${r.noAck} (gateway: ${socketInfo.outcomes} not acked), sockets closed by the gateway ${closedDuring}` : "") +
      `; db ${perSecond(after.rows - before.db.rows)} rows written/s (${perSecond(after.lastSeen - before.db.lastSeen)} last_seen_at), ` +
      `${perSecond(after.commits - before.db.commits)} transactions/s incl. reads; ` +
      `cpu ${byService}, postgres ${pct(row.cpu.postgres)}, nats ${pct(row.cpu.nats)}, ` +
      `gateway CPU per beat ${cpuPerBeatUs(row, "gateway")} µs, liveness ${cpuPerBeatUs(row, "liveness")} µs, ` +
      `gateway GC ${pct(row.gatewayGc)} of the time, event-loop delay p99 ${row.gatewayLoopP99.toFixed(0)} ms; ` +
      `load generator ${pct(row.cpu.generator)} (of 200%; event-loop delay p99 ${row.generatorLoopP99.toFixed(0)} ms, rss ${row.generatorRss} MiB); ` +
      `rss ${row.rss.join("+")} MiB; ` +
      `first interval p99 ${row.coldP99.toFixed(1)} ms -> ${row.holds ? "holds" : "BREAKS"}`,
  );
  return row;
}

/** CPU a service spent per beat answered ok, in µs (robust to a shared machine, unlike latency). */
function cpuPerBeatUs(row: Row, service: string): string {
  const share = row.cpu.byService[plane.pids.length === 1 ? 0 : SERVICES.indexOf(service)] ?? 0;
  return row.rate > 0 ? ((share / row.rate) * 1e6).toFixed(0) : "-";
}

function printTable(rows: Row[]): void {
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const sep = (n: number) => n.toLocaleString("en-US");
  console.log();
  console.log(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} (2 cores)`,
  );
  console.log(
    "| mode | runtimes | target beats/s | achieved | p50 | p99 | not ok (failed/missed/no ack) | CPU gateway / liveness / registry / NATS / Postgres / load generator | CPU per beat gateway / liveness / generator | gateway GC, loop delay p99 | gateway RSS | first interval p99 | holds |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const svc = (name: string) => pct(r.cpu.byService[SERVICES.indexOf(name)] ?? 0);
    const cpu = plane.pids.length === 1 ? `all-in-one ${pct(r.cpu.byService[0]!)}` : `${svc("gateway")} / ${svc("liveness")} / ${svc("registry")}`;
    console.log(
      `| ${r.mode === "socket" ? `socket (${sep(r.sockets!.count)} × ${RUNTIMES_PER_DAEMON})` : "http"} | ${sep(r.size)} | ${sep(Math.round(r.target))} | ` +
        `${sep(Math.round(r.rate))} (${((r.rate / r.target) * 100).toFixed(0)}%) | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ` +
        `${r.run.failed}/${r.run.missed}/${r.run.noAck} | ${cpu} / ${pct(r.cpu.nats)} / ${pct(r.cpu.postgres)} / ${pct(r.cpu.generator)} | ` +
        `${cpuPerBeatUs(r, "gateway")} / ${cpuPerBeatUs(r, "liveness")} / ${r.rate > 0 ? ((r.cpu.generator / r.rate) * 1e6).toFixed(0) : "-"} µs | ` +
        `${pct(r.gatewayGc)}, ${r.gatewayLoopP99.toFixed(0)} ms | ` +
        `${r.rss.at(-1)} MiB | ${r.coldP99.toFixed(0)} ms | ${r.holds ? "yes" : "no"} |`,
    );
  }
  for (const r of rows) {
    if (!r.sockets) continue;
    const s = r.sockets;
    const per10k = (mib: number) => ((mib * 10_000) / s.count).toFixed(0);
    console.log(
      `sockets at ${sep(r.size)} runtimes: ${sep(s.count)} opened in ${s.openSeconds.toFixed(1)} s (upgrade p50 ${s.upgradeP50} ms, p99 ${s.upgradeP99} ms); ` +
        `gateway RSS ${s.rssBefore} MiB before, ${s.rssOpen} MiB open and idle, ${s.rssAfter} MiB after the measurement: ` +
        `${per10k(s.rssOpen - s.rssBefore)} MiB per 10,000 sockets idle, ${per10k(s.rssAfter - s.rssBefore)} MiB beating; ` +
        `V8 heap used ${s.heapBefore} MiB before, ${s.heapOpen} MiB open, ${s.heapAfter} MiB after ` +
        `(${per10k(s.heapAfter - s.heapBefore)} MiB per 10,000 sockets; garbage not yet collected included, and the ` +
        `${RUNTIMES_PER_DAEMON} runtimes per socket the upgrade read into the gateway's runtime cache)`,
    );
  }
}

try {
  await stats.connect();
  console.log(
    `mode ${MODE}, sizes ${SIZES.join(", ")}; load average at the start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} (2 cores)`,
  );
  ({ token } = await identity.issuePersonalAccessToken({ userId, name: "fleet", ttlSeconds: 3600 }));
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_OWNER });
  const pgPids = await postgresPids();
  const natsServer = await natsPids();
  const rows: Row[] = [];
  for (const size of SIZES) {
    for (const mode of MODES) rows.push(await measure(mode, size, pgPids, natsServer));
  }
  printTable(rows);
} catch (error) {
  console.error("benchmark failed:", error);
  process.exitCode = 1;
} finally {
  await http.close();
  await stats.end().catch(() => undefined);
  identity.close();
  await plane.stop();
}

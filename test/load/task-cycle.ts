/**
 * Task-lifecycle benchmark (on demand: `npm run bench:tasks`), issue 14: in
 * one run, against the original's shape (daemons of one runtime each,
 * claiming per runtime, heartbeating over HTTP):
 *
 * - cycles/s and CPU per claim -> start -> complete cycle through the
 *   gateway over HTTP, (a) all services in one process and (b) one process
 *   per service as the chart deploys it, CPU per process from /proc;
 * - (c) the raw SQL ceiling: the claim's SQL function and the start and
 *   complete UPDATEs from raw pg connections (no HTTP, gRPC or events);
 * - (d) the HTTP floor: the same requests answered by a bare fastify server
 *   with recorded answers, at the all-in-one's cycle rate and the
 *   heartbeat rate: CPU per cycle and per beat that HTTP alone costs;
 * - control-plane CPU per HTTP heartbeat, N runtimes beating at a set rate;
 * - dispatch latency, enqueue -> task in an idle daemon's hands, on the
 *   daemon socket (wake-up, then an HTTP claim), on long-poll (?wait=25) and
 *   on plain polling with the daemon's poll interval shortened to P.
 *
 * Each round starts (a) and (b) in turn on a fresh database (the order
 * alternates from round to round, so a change in the machine's load weighs on
 * both) and stops each before the next, so one plane's pools and idle work
 * never sit beside the other's; the ceiling is measured once a round, on the
 * first plane while it is idle. The summary prints medians over the rounds,
 * each target of the issue next to its figure.
 *
 * Settings (environment):
 * - BENCH_ROUNDS (3): rounds;
 * - BENCH_DAEMONS (64): simulated daemons, one runtime and one agent each;
 * - BENCH_TASKS_PER_DAEMON (15): tasks each daemon drains per cycle phase;
 * - BENCH_WARMUP_PER_DAEMON (5): tasks each daemon drains first, not
 *   measured (the first cycles of a fresh process compile its code and fill
 *   its caches); 0 measures from the first cycle, as runs before it did;
 * - BENCH_RAW_CONNECTIONS (16): pg connections of the ceiling (a plane's
 *   pools and other users hold part of Postgres' 100; 16 keep two cores busy);
 * - BENCH_BEAT_RUNTIMES (2000), BENCH_BEAT_RATE (1000): runtimes loaded for
 *   the heartbeat measure and the beats per second they make in all (each
 *   runtime beats every RUNTIMES / RATE s; the daemon's interval is 15 s);
 * - BENCH_BEAT_MS (5000): how long beats are measured, after one pass over
 *   every runtime (the gateway meeting each once is not the steady state);
 * - BENCH_BEAT_WARMUP_MS (5000): beats after that pass, not measured (a
 *   fresh process compiles its heartbeat path, and each runtime's first
 *   beat in it writes the store and queues a flush); 0 measures right after
 *   the pass, as runs before it did;
 * - BENCH_DISPATCH_SAMPLES (100), BENCH_DISPATCH_WARMUP (10): latency
 *   samples per way and shape, and samples taken first and thrown away;
 * - BENCH_GAP_MS (10): pause between socket or long-poll samples;
 * - BENCH_POLL_INTERVAL_MS (500), BENCH_POLL_DAEMONS (16): polling's P (the
 *   daemon's is 30 s) and how many daemons poll (each an empty claim per P);
 * - BENCH_TODAYS_DAEMON (unset): 1 also runs today's daemon's batch-claim
 *   phases once at the end, every service in its own process
 *   (todays-daemon-bench.ts, about a minute more);
 * - the harness's BENCH_DATABASE_SERVER_URL, BENCH_CPU_PROF, BENCH_NODE_FLAGS
 *   and BENCH_LOG_LEVEL.
 */
import { loadavg } from "node:os";
import { heartbeatCpu } from "./task-cycle/beats.js";
import { gatewayCycles, rawCeiling } from "./task-cycle/cycles.js";
import { longPollDispatch, pollingDispatch, socketDispatch, type DispatchSettings } from "./task-cycle/dispatch.js";
import { httpFloor, recordAnswers } from "./task-cycle/floor.js";
import type { FloorAnswers } from "./task-cycle/floor-server.js";
import { startBench, type Shape } from "./task-cycle/plane.js";
import { roundLine, summaryLines, type Round, type ShapeRound } from "./task-cycle/summary.js";
import { runTodaysDaemonPhases } from "./todays-daemon-bench.js";

const setting = (name: string, fallback: number, { zeroAllowed = false } = {}) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed))
    throw new Error(`${name} must be a ${zeroAllowed ? "non-negative" : "positive"} number`);
  return value;
};
const ROUNDS = setting("BENCH_ROUNDS", 3);
const DAEMONS = setting("BENCH_DAEMONS", 64);
const TASKS_PER_DAEMON = setting("BENCH_TASKS_PER_DAEMON", 15);
const WARMUP_PER_DAEMON = Math.floor(setting("BENCH_WARMUP_PER_DAEMON", 5, { zeroAllowed: true }));
const RAW_CONNECTIONS = setting("BENCH_RAW_CONNECTIONS", 16);
const BEAT_RUNTIMES = setting("BENCH_BEAT_RUNTIMES", 2_000);
const BEAT_RATE = setting("BENCH_BEAT_RATE", 1_000);
const BEAT_MS = setting("BENCH_BEAT_MS", 5_000);
const BEAT_WARMUP_MS = setting("BENCH_BEAT_WARMUP_MS", 5_000, { zeroAllowed: true });
const DISPATCH: DispatchSettings = {
  samples: setting("BENCH_DISPATCH_SAMPLES", 100),
  warmup: setting("BENCH_DISPATCH_WARMUP", 10),
  gapMs: setting("BENCH_GAP_MS", 10),
  pollIntervalMs: setting("BENCH_POLL_INTERVAL_MS", 500),
  pollers: Math.min(setting("BENCH_POLL_DAEMONS", 16), setting("BENCH_DAEMONS", 64)),
};
const TODAYS_DAEMON = process.env.BENCH_TODAYS_DAEMON === "1";

/** Everything measured of one shape in one round; the ceiling too when `ceiling` is asked for. */
async function measureShape(
  shape: Shape,
  ceiling: boolean,
): Promise<{ result: Omit<ShapeRound, "ofCeiling">; ceiling?: { prepared: number; unnamed: number }; answers: FloorAnswers }> {
  const bench = await startBench(shape, DAEMONS, BEAT_RUNTIMES);
  const phase = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw new Error(`${shape}: ${name} failed`, { cause: error });
    }
  };
  try {
    await phase("first heartbeats", () => bench.refreshDaemons());
    const raw = ceiling
      ? {
          prepared: (await phase("raw ceiling", () => rawCeiling(bench, TASKS_PER_DAEMON, RAW_CONNECTIONS, true))).perSecond,
          unnamed: (await phase("raw ceiling, unnamed", () => rawCeiling(bench, TASKS_PER_DAEMON, RAW_CONNECTIONS, false))).perSecond,
        }
      : undefined;
    const cycles = await phase("gateway cycles", () => gatewayCycles(bench, TASKS_PER_DAEMON, WARMUP_PER_DAEMON));
    const beats = await phase("heartbeats", () => heartbeatCpu(bench, BEAT_RATE, { measureMs: BEAT_MS, warmupMs: BEAT_WARMUP_MS }));
    await phase("heartbeats", () => bench.refreshDaemons());
    const socket = await phase("socket dispatch", () => socketDispatch(bench, DISPATCH));
    const longPoll = await phase("long-poll dispatch", () => longPollDispatch(bench, DISPATCH));
    const polling = await phase("polling dispatch", () => pollingDispatch(bench, DISPATCH));
    const answers = await phase("recording answers for the HTTP floor", () => recordAnswers(bench));
    return { result: { cycles, beats, socket, longPoll, polling }, ceiling: raw, answers };
  } finally {
    await bench.stop();
  }
}

const startedAt = performance.now();
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
try {
  console.log(`load average at the start: ${load()} (2 cores; other work on the machine shows in every figure)`);
  const rounds: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order: Shape[] = r % 2 === 0 ? ["all-in-one", "per-service"] : ["per-service", "all-in-one"];
    const round: Round = { ceiling: NaN, ceilingUnnamed: NaN, shapes: {} };
    const measured: Partial<Record<Shape, Omit<ShapeRound, "ofCeiling">>> = {};
    let answers: FloorAnswers | undefined;
    for (const [i, shape] of order.entries()) {
      const shapeRound = await measureShape(shape, i === 0);
      if (shapeRound.ceiling !== undefined) {
        round.ceiling = shapeRound.ceiling.prepared;
        round.ceilingUnnamed = shapeRound.ceiling.unnamed;
      }
      if (shape === "all-in-one") answers = shapeRound.answers;
      measured[shape] = shapeRound.result;
    }
    for (const shape of order) round.shapes[shape] = { ...measured[shape]!, ofCeiling: measured[shape]!.cycles.perSecond / round.ceiling };
    round.floor = await httpFloor(answers!, {
      daemons: DAEMONS,
      cycles: DAEMONS * TASKS_PER_DAEMON,
      cyclesPerSecond: measured["all-in-one"]!.cycles.perSecond,
      beatRate: BEAT_RATE,
      beatMs: BEAT_MS,
      beatWarmupMs: BEAT_WARMUP_MS,
      beatRuntimes: BEAT_RUNTIMES,
    }).catch((error: unknown) => {
      throw new Error("the HTTP floor failed", { cause: error });
    });
    rounds.push(round);
    console.log(`${roundLine(r, round)}; load average ${load()}`);
  }
  if (TODAYS_DAEMON) {
    const bench = await startBench("per-service", 1, 1);
    try {
      const { plane, workspaceId, token, registry, tasks } = bench;
      for (const line of await runTodaysDaemonPhases({ plane, workspaceId, token, registry, tasks })) console.log(line);
    } finally {
      await bench.stop();
    }
  }
  console.log();
  const lines = summaryLines({
    rounds,
    daemons: DAEMONS,
    cyclesPerShape: DAEMONS * TASKS_PER_DAEMON,
    rawConnections: RAW_CONNECTIONS,
    beatRuntimes: BEAT_RUNTIMES,
    beatRate: BEAT_RATE,
    beatMs: BEAT_MS,
    beatWarmupMs: BEAT_WARMUP_MS,
    pollIntervalMs: DISPATCH.pollIntervalMs,
    pollers: DISPATCH.pollers,
    samples: DISPATCH.samples,
  });
  for (const line of lines) console.log(line);
  console.log(`load average at the end: ${load()}; ${((performance.now() - startedAt) / 1000).toFixed(0)} s in all`);
} catch (error) {
  console.error("benchmark failed:", error);
  process.exitCode = 1;
}

/**
 * The batch-claim phases of `npm run bench:tasks`: today's daemon (one
 * machine-level poller, batch claims, wake-ups on its socket; see
 * todays-daemon.ts) against the whole plane, every service in its own
 * process.
 *
 * 1. Drain: one agent with concurrency 10 and 10 issue tasks of ~10 s each
 *    (the simulated agent run sleeps): the daemon must have all 10 running
 *    at once, so the queue drains in about one run (target: < 15 s wall).
 * 2. Busy: a daemon with 10 runtimes (an agent each) and 1,000 queued tasks:
 *    how much of the time its slots run work, and how long a freed slot
 *    waits for its next task.
 * 3. CPU: the task queue's CPU for one batch claim of 32 tasks against one
 *    single (per-runtime) claim (target: < 4x).
 */
import { randomUUID } from "node:crypto";
import * as hdr from "hdr-histogram-js";
import type { PromiseClient } from "@controlplane/grpc";
import type { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import type { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { benchAgent, cpuSeconds, type ControlPlane } from "./harness.js";
import { SimulatedDaemon } from "./todays-daemon.js";

const AGENT_RUN_MS = Number(process.env.BENCH_AGENT_RUN_MS ?? 10_000);
const BUSY_TASKS = Number(process.env.BENCH_BUSY_TASKS ?? 1_000);
const BUSY_RUNTIMES = Number(process.env.BENCH_BUSY_RUNTIMES ?? 10);
const BUSY_SLOTS = Number(process.env.BENCH_BUSY_SLOTS ?? 20);
const BUSY_RUN_MS = Number(process.env.BENCH_BUSY_RUN_MS ?? 500);
const CPU_SINGLE_CLAIMS = Number(process.env.BENCH_CPU_SINGLE_CLAIMS ?? 640);
const CPU_BATCH_CLAIMS = Number(process.env.BENCH_CPU_BATCH_CLAIMS ?? 80);
const BATCH = 32;
/** The CPU phase alternates this many blocks of single and batch claims. */
const CPU_ROUNDS = 8;
/** Which of the phases to run (all by default): drain, busy, cpu. */
const PHASES = new Set((process.env.BENCH_TODAY_PHASES ?? "drain,busy,cpu").split(","));

export interface BenchContext {
  plane: ControlPlane;
  workspaceId: string;
  token: string;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
  tasks: PromiseClient<typeof TaskQueueServiceService>;
}

const CAPABILITIES = "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,remote-mcp-v1,local-worktree-v1,rpc-v1";

export async function runTodaysDaemonPhases(ctx: BenchContext): Promise<string[]> {
  const lines: string[] = [];
  const { plane, token } = ctx;

  async function post(path: string, body: unknown) {
    const response = await fetch(plane.gatewayUrl + path, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "x-client-capabilities": CAPABILITIES },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as unknown };
  }

  /** A daemon registered as today's daemon registers: `runtimes` runtimes, one agent on each. */
  async function daemonWithAgents(runtimes: number, agentsPerRuntime: number, maxConcurrentTasks: number) {
    const daemonId = `bench-today-${randomUUID().slice(0, 8)}`;
    const answer = await post("/api/daemon/register", {
      workspace_id: ctx.workspaceId,
      daemon_id: daemonId,
      runtimes: Array.from({ length: runtimes }, (_, i) => ({ name: `rt-${i}`, type: `provider-${i}`, version: "1", status: "online" })),
    });
    const runtimeIds = (answer.json as { runtimes: Array<{ id: string }> }).runtimes.map((r) => r.id);
    const agents: string[] = [];
    for (const runtimeId of runtimeIds) {
      for (let i = 0; i < agentsPerRuntime; i++) {
        agents.push(await benchAgent(ctx.registry, { workspaceId: ctx.workspaceId, runtimeId, name: `agent-${i}`, maxConcurrentTasks }));
      }
    }
    return { daemonId, runtimeIds, agents };
  }

  const enqueue = (agentId: string) => ctx.tasks.enqueueTask({ agentId, priority: 0, issueId: randomUUID(), forceFreshSession: false, maxAttempts: 0 });
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  /** Runs a daemon until `count` tasks completed; the wall time from its start. */
  async function runUntil(daemon: SimulatedDaemon, count: number, done: { n: number }) {
    const started = performance.now();
    await daemon.start();
    while (done.n < count) await sleep(5);
    const wall = performance.now() - started;
    await daemon.stop();
    return wall;
  }

  // 1. Drain: 10 tasks of one agent (concurrency 10), ~10 s each.
  if (PHASES.has("drain")) {
    const d = await daemonWithAgents(1, 1, 10);
    for (let i = 0; i < 10; i++) await enqueue(d.agents[0]!);
    const done = { n: 0 };
    const daemon = new SimulatedDaemon({
      gatewayUrl: plane.gatewayUrl,
      token,
      daemonId: d.daemonId,
      runtimeIds: d.runtimeIds,
      slots: 10,
      run: () => sleep(AGENT_RUN_MS),
      onDone: () => done.n++,
    });
    const wall = await runUntil(daemon, 10, done);
    lines.push(
      `today's daemon, drain: 10 tasks of ${(AGENT_RUN_MS / 1000).toFixed(0)} s for one agent (concurrency 10), 10 slots: ` +
        `${(wall / 1000).toFixed(2)} s wall (target < 15 s; serial would be ${((10 * AGENT_RUN_MS) / 1000).toFixed(0)} s); ` +
        `${daemon.stats.claims} batch claims, ${daemon.stats.wakeups} socket wake-ups`,
    );
  }

  // 2. Busy: 10 runtimes, 1,000 queued tasks, short runs.
  if (PHASES.has("busy")) {
    const d = await daemonWithAgents(BUSY_RUNTIMES, 1, BUSY_SLOTS);
    await Promise.all(
      Array.from({ length: 16 }, async (_, worker) => {
        for (let i = worker; i < BUSY_TASKS; i += 16) await enqueue(d.agents[i % d.agents.length]!);
      }),
    );
    const done = { n: 0 };
    const daemon = new SimulatedDaemon({
      gatewayUrl: plane.gatewayUrl,
      token,
      daemonId: d.daemonId,
      runtimeIds: d.runtimeIds,
      slots: BUSY_SLOTS,
      run: () => sleep(BUSY_RUN_MS),
      onDone: () => done.n++,
    });
    const wall = await runUntil(daemon, BUSY_TASKS, done);
    const gaps = hdr.build();
    for (const gap of daemon.refillGapsMs) gaps.recordValue(Math.max(0, Math.round(gap * 1000)));
    const busy = daemon.stats.busySlotMs / (BUSY_SLOTS * wall);
    const claimMs = hdr.build();
    for (const ms of daemon.claimMs) claimMs.recordValue(Math.round(ms * 1000));
    const ideal = (BUSY_TASKS * BUSY_RUN_MS) / BUSY_SLOTS / 1000;
    lines.push(
      `today's daemon, busy: ${BUSY_RUNTIMES} runtimes, ${BUSY_TASKS} queued tasks of ${BUSY_RUN_MS} ms, ${BUSY_SLOTS} slots: ` +
        `${(wall / 1000).toFixed(2)} s wall (agent runs alone: ${ideal.toFixed(1)} s); slots busy ${(busy * 100).toFixed(1)} % of the time ` +
        `(claim, start and complete count as busy); a freed slot refilled after p50 ${(gaps.getValueAtPercentile(50) / 1000).toFixed(1)} ms, ` +
        `p99 ${(gaps.getValueAtPercentile(99) / 1000).toFixed(1)} ms, max ${(gaps.maxValue / 1000).toFixed(1)} ms; ` +
        `${daemon.stats.claims} batch claims for ${daemon.stats.tasks} tasks (p50 ${(claimMs.getValueAtPercentile(50) / 1000).toFixed(1)} ms, ` +
        `p99 ${(claimMs.getValueAtPercentile(99) / 1000).toFixed(1)} ms each); the poller waited out its 30 s interval ${daemon.stats.pollTimeouts} times`,
    );
  }

  // 3. CPU of the task queue: one batch claim of 32 against one single claim.
  if (PHASES.has("cpu")) {
    // Its process: the third the harness starts (registry, catalog, task queue, liveness, gateway).
    const pids = plane.pids.length === 1 ? plane.pids : [plane.pids[2]!];
    const d = await daemonWithAgents(1, BATCH, 100_000);
    const warmSingles = 40;
    const warmBatches = 5;
    // Single claims take the oldest task of any agent: a few spare tasks each, so every batch finds all 32 agents.
    const total = CPU_SINGLE_CLAIMS + warmSingles + (CPU_BATCH_CLAIMS + warmBatches + 8) * BATCH;
    await Promise.all(
      Array.from({ length: 16 }, async (_, worker) => {
        for (let i = worker; i < total; i += 16) await enqueue(d.agents[i % BATCH]!);
      }),
    );
    const runtimeId = d.runtimeIds[0]!;
    const single = async () => {
      const answer = await post(`/api/daemon/runtimes/${runtimeId}/tasks/claim`, {});
      if (!(answer.json as { task: unknown }).task) throw new Error("a single claim found nothing");
    };
    const batch = async () => {
      const answer = await post("/api/daemon/tasks/claim", { daemon_id: d.daemonId, runtime_ids: d.runtimeIds, max_tasks: BATCH });
      const got = (answer.json as { tasks: unknown[] }).tasks.length;
      if (got !== BATCH) throw new Error(`a batch claim answered ${got} tasks`);
    };
    for (let i = 0; i < warmSingles; i++) await single();
    for (let i = 0; i < warmBatches; i++) await batch();
    // Interleaved in rounds, so a change in the machine's load weighs on both alike.
    const singleCost = { cpuMs: 0, wallMs: 0 };
    const batchCost = { cpuMs: 0, wallMs: 0 };
    const measure = async (calls: number, work: () => Promise<void>, into: { cpuMs: number; wallMs: number }, of: number) => {
      const before = await cpuSeconds(pids);
      const started = performance.now();
      for (let i = 0; i < calls; i++) await work();
      into.cpuMs += (((await cpuSeconds(pids)) - before) * 1000) / of;
      into.wallMs += (performance.now() - started) / of;
    };
    for (let round = 0; round < CPU_ROUNDS; round++) {
      await measure(CPU_SINGLE_CLAIMS / CPU_ROUNDS, single, singleCost, CPU_SINGLE_CLAIMS);
      await measure(CPU_BATCH_CLAIMS / CPU_ROUNDS, batch, batchCost, CPU_BATCH_CLAIMS);
    }
    lines.push(
      `task queue CPU per claim call (${plane.pids.length === 1 ? "the whole plane: all in one process" : "its own process"}): ` +
        `single claim ${singleCost.cpuMs.toFixed(2)} ms (${singleCost.wallMs.toFixed(1)} ms wall, ${CPU_SINGLE_CLAIMS} calls); ` +
        `batch claim of ${BATCH} ${batchCost.cpuMs.toFixed(2)} ms (${batchCost.wallMs.toFixed(1)} ms wall, ${CPU_BATCH_CLAIMS} calls): ` +
        `${(batchCost.cpuMs / singleCost.cpuMs).toFixed(2)}x one single claim (target < 4x), ` +
        `${((batchCost.cpuMs / BATCH / singleCost.cpuMs) * 100).toFixed(0)} % of a single claim's CPU per task`,
    );
  }
  return lines;
}

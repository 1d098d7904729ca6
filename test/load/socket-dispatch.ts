/**
 * Daemon socket dispatch benchmark (on demand: `npm run bench:socket`).
 *
 * Every service in its own process (the harness). BENCH_SOCKETS daemon
 * sockets (default 1,000, one runtime each; BENCH_RUNTIMES_PER_SOCKET puts
 * several on one socket) are opened and left idle, beating every 15 s over
 * the socket as daemons do. Then, one at a time, a
 * task is enqueued for a random watched runtime through the task queue's
 * gRPC EnqueueTask, and the socket that watches it, on receiving
 * `daemon:task_available`, claims over HTTP
 * (POST /api/daemon/runtimes/{id}/tasks/claim). Measured from just before
 * the EnqueueTask call: the frame's arrival, and the claim answered with that
 * task. Each task is then started and completed over HTTP (untimed), so no
 * task is left to come back after the recovery window.
 *
 * To show where the time goes, this process also subscribes to the
 * task-queue's wake-up subject on NATS (as a gateway does): "wake on NATS" is
 * when the wake-up reached a NATS subscriber here, "gateway hop" is from then
 * to the frame on the socket (NATS -> gateway -> socket), and "claim RTT" is
 * the claim request alone.
 *
 * Phase 1: the sockets and the claims on gateway A.
 * Phase 2: a second gateway process (B) starts; the sockets move to B and the
 *          claims go through A, so the wake-up crosses to the other replica
 *          (over core NATS, as every wake-up does) and the claim is answered
 *          by a replica that does not hold the socket.
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import * as hdr from "hdr-histogram-js";
import { Pool } from "undici";
import type { WebSocket } from "ws";
import { createClient } from "@controlplane/grpc";
import { taskWakeSubject } from "@controlplane/events";
import { IdentityServiceService, MemberRole } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { benchAgent, cpuSeconds, ensureFileLimit, loadRuntimes, natsPids, postgresPids, rssMiB, startControlPlane } from "./harness.js";
import { closeAll, ms, openMany } from "./sockets.js";

const SOCKETS = Number(process.env.BENCH_SOCKETS ?? 1_000);
const RUNTIMES_PER_SOCKET = Number(process.env.BENCH_RUNTIMES_PER_SOCKET ?? 1);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 400);
/** Samples first taken and thrown away (JIT, pools, first lookups). */
const WARMUP_SAMPLES = Number(process.env.BENCH_WARMUP_SAMPLES ?? 40);
/** Pause between one sample's claim answer and the next enqueue. */
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 10);
const OPEN_CONCURRENCY = 64;
const FRAME_TIMEOUT_MS = 5_000;
/** The daemon's heartbeat interval: the claim hands work only to runtimes seen lately. */
const BEAT_INTERVAL_MS = 15_000;

const workspaceId = randomUUID();
const userId = randomUUID();
const runtimeIds = Array.from({ length: SOCKETS * RUNTIMES_PER_SOCKET }, () => randomUUID());
const socketSets = Array.from({ length: SOCKETS }, (_, s) => runtimeIds.slice(s * RUNTIMES_PER_SOCKET, (s + 1) * RUNTIMES_PER_SOCKET));

const files = await ensureFileLimit(SOCKETS + 1_000);
if (files.soft < SOCKETS + 1_000) console.warn(`warning: open files limited to ${files.soft}; ${SOCKETS} sockets may not all open`);

const plane = await startControlPlane({}, (databaseUrl) => loadRuntimes(databaseUrl, workspaceId, userId, runtimeIds));
const identity = createClient(IdentityServiceService, plane.registryAddr, { deadlineMs: 30_000 });
const registry = createClient(RuntimeRegistryServiceService, plane.registryAddr, { deadlineMs: 30_000 });
const tasks = createClient(TaskQueueServiceService, plane.tasksAddr, { deadlineMs: 30_000 });
const pools: Pool[] = [];
const SERVICES = ["registry", "profile-catalog", "task-queue", "liveness", "gateway"];
const pgPids = await postgresPids();
const natsServer = await natsPids();

/** The sample being taken: one at a time, so a frame for its runtime is its frame. */
let current:
  | {
      runtimeId: string;
      claimVia: Pool;
      /** When the wake-up for this runtime reached this process's NATS subscription. */
      natsAt?: number;
      frame?: { at: number; taskId: string };
      claim?: Promise<{ at: number; taskId?: string }>;
      seen: () => void;
    }
  | undefined;
let strayFrames = 0;

function onFrame(data: string): void {
  const at = performance.now();
  const frame = JSON.parse(data) as { type: string; payload: { runtime_id?: string; task_id?: string } };
  // A wake-up without a task id says a slot was freed (after a complete): not a sample's.
  if (frame.type !== "daemon:task_available" || !frame.payload.task_id) return;
  const sample = current;
  if (!sample || sample.frame || frame.payload.runtime_id !== sample.runtimeId) {
    strayFrames++;
    return;
  }
  sample.frame = { at, taskId: frame.payload.task_id };
  // As the daemon does: the hint only wakes it; the task comes from the HTTP claim.
  sample.claim = claim(sample.claimVia, sample.runtimeId);
  sample.seen();
}

let failedClaims = 0;
let failedFinishes = 0;

async function claim(via: Pool, runtimeId: string): Promise<{ at: number; taskId?: string }> {
  const response = await via.request({
    path: `/api/daemon/runtimes/${runtimeId}/tasks/claim`,
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
  });
  const body = (await response.body.json()) as { task?: { id: string } | null };
  if (response.statusCode !== 200) failedClaims++;
  return { at: performance.now(), taskId: body.task?.id };
}

/** Starts and completes a claimed task over HTTP, as the daemon does. */
async function finish(via: Pool, taskId: string): Promise<void> {
  for (const [step, body] of [
    ["start", "{}"],
    ["complete", '{"output":"done"}'],
  ] as const) {
    const response = await via.request({
      path: `/api/daemon/tasks/${taskId}/${step}`,
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    });
    await response.body.dump();
    if (response.statusCode !== 200) failedFinishes++;
  }
}
function watch(sockets: WebSocket[]): void {
  for (const ws of sockets) ws.on("message", (data) => onFrame(String(data)));
}

/**
 * Beats every runtime over its socket each interval, spread evenly, as idle
 * daemons do; without beats the claim's freshness gate (contract §13.3)
 * would stop handing the runtimes work a few minutes in.
 */
function beatOver(sockets: WebSocket[]): () => void {
  const frames = socketSets.map((ids) => ids.map((id) => `{"type":"daemon:heartbeat","payload":{"runtime_id":"${id}","supports_batch_import":true}}`));
  let next = 0;
  const perTick = Math.max(1, Math.ceil(sockets.length / (BEAT_INTERVAL_MS / 100)));
  const timer = setInterval(() => {
    for (let n = 0; n < perTick; n++, next = (next + 1) % sockets.length) {
      const ws = sockets[next]!;
      if (ws.readyState === ws.OPEN) for (const frame of frames[next]!) ws.send(frame);
    }
  }, 100);
  return () => clearInterval(timer);
}

/** The wake-ups as a gateway receives them, for the decomposition. */
function observeWakeups(nc: NatsConnection): void {
  const prefix = taskWakeSubject(plane.subjectRoot, "");
  nc.subscribe(`${prefix}*`, {
    callback: (_error, message) => {
      const at = performance.now();
      const sample = current;
      if (sample && sample.natsAt === undefined && message.subject.slice(prefix.length) === sample.runtimeId) sample.natsAt = at;
    },
  });
}

interface PhaseResult {
  label: string;
  nats: hdr.Histogram;
  hop: hdr.Histogram;
  claimRtt: hdr.Histogram;
  wake: hdr.Histogram;
  claimed: hdr.Histogram;
  enqueue: hdr.Histogram;
  lost: number;
  wrongTask: number;
  gatewayCpu: string;
  /** CPU per sample (enqueue, wake-up, claim), ms, by process. */
  cpuPerSample: string;
}

/** Takes the samples: enqueue for a random runtime, wait for its frame and the claim the frame started. */
async function measure(label: string, claimVia: Pool, agentOf: Map<string, string>, gatewayPids: number[]): Promise<PhaseResult> {
  const wake = hdr.build();
  const claimed = hdr.build();
  const enqueue = hdr.build();
  const nats = hdr.build();
  const hop = hdr.build();
  const claimRtt = hdr.build();
  let lost = 0;
  let wrongTask = 0;
  let cpuBefore = 0;
  let started = 0;
  const services =
    plane.pids.length === 1
      ? [["all-in-one", plane.pids] as const, ["extra gateway", gatewayPids.filter((pid) => !plane.pids.includes(pid))] as const]
      : [...SERVICES.slice(0, -1).map((name, i) => [name, [plane.pids[i]!]] as const), ["gateways", gatewayPids] as const];
  const named = [...services, ["postgres", pgPids] as const, ["nats", natsServer] as const];
  let perProcessBefore: number[] = [];
  for (let i = 0; i < WARMUP_SAMPLES + SAMPLES; i++) {
    if (i === WARMUP_SAMPLES) {
      cpuBefore = await cpuSeconds(gatewayPids);
      perProcessBefore = await Promise.all(named.map(([, pids]) => cpuSeconds([...pids])));
      started = performance.now();
    }
    const runtimeId = runtimeIds[Math.floor(Math.random() * runtimeIds.length)]!;
    let seen!: () => void;
    const frameSeen = new Promise<void>((resolve) => (seen = resolve));
    const sample: NonNullable<typeof current> = { runtimeId, claimVia, seen };
    current = sample;
    const t0 = performance.now();
    const { task } = await tasks.enqueueTask({
      agentId: agentOf.get(runtimeId)!,
      priority: 0,
      issueId: randomUUID(),
      forceFreshSession: false,
      maxAttempts: 0,
    });
    const enqueued = performance.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([frameSeen, new Promise((resolve) => (timer = setTimeout(resolve, FRAME_TIMEOUT_MS)))]);
    clearTimeout(timer);
    const answer = await sample.claim;
    current = undefined;
    if (i >= WARMUP_SAMPLES) {
      if (!sample.frame || !answer) {
        lost++;
      } else if (sample.frame.taskId !== task!.id || answer.taskId !== task!.id) {
        wrongTask++;
      } else {
        const us = (ms: number) => Math.max(1, Math.round(ms * 1000));
        enqueue.recordValue(us(enqueued - t0));
        wake.recordValue(us(sample.frame.at - t0));
        claimed.recordValue(us(answer.at - t0));
        claimRtt.recordValue(us(answer.at - sample.frame.at));
        if (sample.natsAt !== undefined) {
          nats.recordValue(us(sample.natsAt - t0));
          hop.recordValue(us(sample.frame.at - sample.natsAt));
        }
      }
    }
    // A frame that never came: claim anyway so the task does not linger for the next sample of this runtime.
    if (!sample.frame) await claim(claimVia, runtimeId);
    // Run it to the end as a daemon would: a task left dispatched comes back
    // after the recovery window and would be the answer to a later sample's claim.
    await finish(claimVia, task!.id);
    await new Promise((resolve) => setTimeout(resolve, GAP_MS));
  }
  const seconds = (performance.now() - started) / 1000;
  const gatewayCpu = `${((((await cpuSeconds(gatewayPids)) - cpuBefore) / seconds) * 100).toFixed(0)}%`;
  const perProcess = await Promise.all(named.map(([, pids], i) => cpuSeconds([...pids]).then((c) => c - perProcessBefore[i]!)));
  const cpuPerSample = named.map(([name], i) => `${name} ${((perProcess[i]! * 1000) / SAMPLES).toFixed(2)}`).join(", ");
  return { label, nats, hop, claimRtt, wake, claimed, enqueue, lost, wrongTask, gatewayCpu, cpuPerSample };
}

let token = "";
let nc: NatsConnection | undefined;
try {
  console.log(
    `load average at the start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} (2 cores)`,
  );
  nc = await natsConnect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
  observeWakeups(nc);
  ({ token } = await identity.issuePersonalAccessToken({ userId, name: "socket-bench", ttlSeconds: 3600 }));
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_OWNER });

  // One agent per runtime (the task queue enqueues for an agent).
  const agentOf = new Map<string, string>();
  let nextAgent = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (nextAgent < runtimeIds.length) {
        const runtimeId = runtimeIds[nextAgent++]!;
        agentOf.set(runtimeId, await benchAgent(registry, { workspaceId, runtimeId, name: `agent-${runtimeId.slice(0, 8)}`, ownerId: userId }));
      }
    }),
  );

  const gatewayA = plane.gatewayUrl;
  const gatewayAPid = plane.pids.at(-1)!;
  const viaA = new Pool(new URL(gatewayA).origin, { connections: 8, pipelining: 1 });
  pools.push(viaA);
  const rows: PhaseResult[] = [];
  const notes: string[] = [];

  // Phase 1: sockets and claims on A.
  const rssBefore = await rssMiB(gatewayAPid);
  const onA = await openMany(gatewayA, token, socketSets, OPEN_CONCURRENCY);
  watch(onA.sockets);
  const stopBeatsA = beatOver(onA.sockets);
  notes.push(
    `gateway A: ${SOCKETS} sockets opened in ${onA.seconds.toFixed(1)} s (upgrade p50 ${ms(onA.upgrade, 50)} ms, p99 ${ms(onA.upgrade, 99)} ms); ` +
      `RSS ${rssBefore} -> ${await rssMiB(gatewayAPid)} MiB`,
  );
  rows.push(await measure("A -> A", viaA, agentOf, [gatewayAPid]));
  console.log(`phase 1 done (${rows.at(-1)!.wake.totalCount} samples)`);

  // Phase 2: a second replica holds the sockets; the claim goes through the first.
  const gatewayB = await plane.addGateway();
  stopBeatsA();
  await closeAll(onA.sockets);
  const onB = await openMany(gatewayB.url, token, socketSets, OPEN_CONCURRENCY);
  watch(onB.sockets);
  const stopBeatsB = beatOver(onB.sockets);
  notes.push(
    `gateway B: ${SOCKETS} sockets opened in ${onB.seconds.toFixed(1)} s (upgrade p50 ${ms(onB.upgrade, 50)} ms, p99 ${ms(onB.upgrade, 99)} ms); ` +
      `RSS ${await rssMiB(gatewayB.pid)} MiB; gateway A RSS ${await rssMiB(gatewayAPid)} MiB with none`,
  );
  rows.push(await measure("B -> A", viaA, agentOf, [gatewayAPid, gatewayB.pid]));
  stopBeatsB();
  await closeAll(onB.sockets);

  const pad = (s: string, n: number) => s.padEnd(n);
  console.log();
  console.log(
    `${SOCKETS} idle daemon sockets, ${RUNTIMES_PER_SOCKET} runtime(s) each; ${SAMPLES} samples per row (after ${WARMUP_SAMPLES} warm-up), one at a time, ${GAP_MS} ms apart`,
  );
  console.log(`times from just before EnqueueTask (gRPC, straight to the task queue) unless said; "B -> A" = socket on replica B, claim through replica A`);
  console.log(`gateway hop = the wake-up seen on NATS here -> task_available on the socket; claim RTT = task_available -> claim answered`);
  console.log();
  console.log(
    `| ${pad("socket -> claim via", 19)} | task_available p50 | p99 | claim answered p50 | p99 | enqueue RPC p50 | wake on NATS p50 | gateway hop p50 | p99 | claim RTT p50 | lost/wrong | gateway CPU |`,
  );
  console.log(`|${"-".repeat(21)}|---|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${pad(r.label, 19)} | ${ms(r.wake, 50)} ms | ${ms(r.wake, 99)} ms | ${ms(r.claimed, 50)} ms | ${ms(r.claimed, 99)} ms | ` +
        `${ms(r.enqueue, 50)} ms | ${ms(r.nats, 50)} ms | ${ms(r.hop, 50)} ms | ${ms(r.hop, 99)} ms | ${ms(r.claimRtt, 50)} ms | ${r.lost}/${r.wrongTask} | ${r.gatewayCpu} |`,
    );
  }
  console.log();
  for (const r of rows) console.log(`CPU per sample (enqueue + wake-up + claim, then start + complete), ms, ${r.label}: ${r.cpuPerSample}`);
  for (const note of notes) console.log(note);
  console.log(
    `frames not matching the sample in progress: ${strayFrames}; claims answered other than 200: ${failedClaims}; starts/completes other than 200: ${failedFinishes}`,
  );
  console.log(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} (2 cores)`,
  );
  const [a, b] = rows as [PhaseResult, PhaseResult];
  const verdict = (ok: boolean) => (ok ? "meets" : "MISSES");
  const p = (h: hdr.Histogram, q: number) => (h.totalCount === 0 ? Infinity : h.getValueAtPercentile(q) / 1000);
  console.log(
    `targets: task_available p50 < 5 ms ${verdict(p(a.wake, 50) < 5)}, p99 < 25 ms ${verdict(p(a.wake, 99) < 25)}; ` +
      `claim p50 < 20 ms ${verdict(p(a.claimed, 50) < 20)}; other replica p99 < 25 ms ${verdict(p(b.wake, 99) < 25)}`,
  );
} catch (error) {
  console.error("benchmark failed:", error);
  process.exitCode = 1;
} finally {
  await Promise.all(pools.map((p) => p.close()));
  await nc?.close();
  identity.close();
  registry.close();
  tasks.close();
  await plane.stop();
}

/**
 * Task queue benchmark (run on demand: `npm run bench:tasks`).
 *
 * 1. Claim -> start -> complete cycles per second through the gateway, with
 *    64 simulated daemons (one runtime and one agent each), over real HTTP.
 * 2. The ceiling: the same claim SQL function, plus the start and complete
 *    UPDATEs, from 64 raw pg connections (no gRPC, no HTTP, no events).
 * 3. Enqueue-to-claim latency with long-poll: 64 daemons waiting on
 *    ?wait=25 while tasks are enqueued one by one.
 * 4. Today's daemon (batch claims, socket wake-ups): a queue of ten 10 s
 *    tasks drained at once, a 10-runtime daemon's slots kept busy over 1,000
 *    tasks, and the task queue's CPU for a batch claim of 32 against a
 *    single claim (see todays-daemon-bench.ts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import * as hdr from "hdr-histogram-js";
import pg from "pg";
import { createClient } from "@controlplane/grpc";
import { IdentityServiceService, MemberRole } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { cpuSeconds, postgresPids, rssMiB, startControlPlane } from "./harness.js";
import { runTodaysDaemonPhases } from "./todays-daemon-bench.js";

const DAEMONS = Number(process.env.BENCH_DAEMONS ?? 64);
const TASKS_PER_DAEMON = Number(process.env.BENCH_TASKS_PER_DAEMON ?? 40);
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 400);
/** Raw connections for the ceiling: the services' pools hold some of Postgres' 100. */
const RAW_CONNECTIONS = Number(process.env.BENCH_RAW_CONNECTIONS ?? 48);

const plane = await startControlPlane();
const identity = createClient(IdentityServiceService, plane.registryAddr, { deadlineMs: 30_000 });
const registry = createClient(RuntimeRegistryServiceService, plane.registryAddr, { deadlineMs: 30_000 });
const tasks = createClient(TaskQueueServiceService, plane.tasksAddr, { deadlineMs: 30_000 });

try {
  const userId = randomUUID();
  const { workspace } = await identity.createWorkspace({ name: `bench-${userId.slice(0, 6)}`, slug: "", description: "", repos: [], settingsJson: "", issuePrefix: "" });
  const workspaceId = workspace!.id;
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_OWNER });
  const { token } = await identity.issuePersonalAccessToken({ userId, name: "bench", ttlSeconds: 3600 });

  const daemons = await Promise.all(
    Array.from({ length: DAEMONS }, async (_, i) => {
      const answer = await post(`/api/daemon/register`, {
        workspace_id: workspaceId,
        daemon_id: `bench-daemon-${i}`,
        runtimes: [{ type: "claude", version: "1", status: "online" }],
      });
      const runtimeId = (answer.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
      const { agent } = await registry.upsertAgent({
        workspaceId, runtimeId, name: `agent-${i}`, instructions: "", customEnv: {}, customArgs: [], runtimeConfigJson: "",
        skills: [], maxConcurrentTasks: 1_000, visibility: "",
      });
      return { runtimeId, agentId: agent!.id };
    }),
  );

  async function post(path: string, body: unknown) {
    const response = await fetch(plane.gatewayUrl + path, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as unknown };
  }

  async function enqueueAll() {
    await Promise.all(daemons.map(async ({ agentId }) => {
      for (let i = 0; i < TASKS_PER_DAEMON; i++) await tasks.enqueueTask({ agentId, priority: 0, issueId: randomUUID(), forceFreshSession: false, maxAttempts: 0 });
    }));
  }

  // 1. Through the gateway.
  await enqueueAll();
  const claimLatency = hdr.build();
  let cycles = 0;
  const pgPids = await postgresPids();
  const cpuBefore = { plane: await cpuSeconds(plane.pids), postgres: await cpuSeconds(pgPids), bench: process.cpuUsage() };
  let started = performance.now();
  await Promise.all(daemons.map(async ({ runtimeId }) => {
    for (;;) {
      const t0 = performance.now();
      const claim = await post(`/api/daemon/runtimes/${runtimeId}/tasks/claim`, {});
      claimLatency.recordValue(Math.round((performance.now() - t0) * 1000));
      const task = (claim.json as { task: { id: string } | null }).task;
      if (!task) return;
      await post(`/api/daemon/tasks/${task.id}/start`, {});
      await post(`/api/daemon/tasks/${task.id}/complete`, { output: "ok" });
      cycles++;
    }
  }));
  const gatewaySeconds = (performance.now() - started) / 1000;
  const gatewayRate = cycles / gatewaySeconds;
  const benchCpu = process.cpuUsage(cpuBefore.bench);
  const cpuPerCycleMs = {
    plane: ((await cpuSeconds(plane.pids)) - cpuBefore.plane) * 1000 / cycles,
    postgres: ((await cpuSeconds(await postgresPids())) - cpuBefore.postgres) * 1000 / cycles,
    bench: (benchCpu.user + benchCpu.system) / 1000 / cycles,
  };
  const rssAfterGateway = (await Promise.all(plane.pids.map(rssMiB))).join(" + ");

  // 2. The raw ceiling: same SQL, 64 connections, no layers.
  await enqueueAll();
  const clients = await Promise.all(Array.from({ length: RAW_CONNECTIONS }, async () => {
    const client = new pg.Client({ connectionString: plane.databaseUrl });
    client.on("error", () => undefined);
    await client.connect();
    return client;
  }));
  let rawCycles = 0;
  started = performance.now();
  await Promise.all(clients.map(async (db, i) => {
    const mine = daemons.filter((_, d) => d % RAW_CONNECTIONS === i).map((d) => d.runtimeId);
    while (mine.length > 0) {
      const runtimeId = mine[0]!;
      // Exactly what a claim runs: dispatch with its lease, isolation check, token insert, resume lookup.
      const { rows } = await db.query(
        `SELECT (r.claimed).id AS id FROM taskqueue.claim_tasks(ARRAY[$1]::uuid[], ARRAY[$2]::uuid[], ARRAY[$3]::uuid[], 1, '{}',
           interval '90 seconds', interval '45 seconds', 6, ARRAY[$4], interval '24 hours') r WHERE (r.claimed).id IS NOT NULL`,
        [runtimeId, workspaceId, userId, randomBytes(32).toString("hex")],
      );
      const id = rows[0]?.id as string | null;
      if (!id) {
        mine.shift();
        continue;
      }
      await db.query("UPDATE taskqueue.task SET status = 'running', started_at = now() WHERE id = $1 AND status = 'dispatched'", [id]);
      await db.query("UPDATE taskqueue.task SET status = 'completed', completed_at = now() WHERE id = $1 AND status = 'running'", [id]);
      rawCycles++;
    }
  }));
  const rawSeconds = (performance.now() - started) / 1000;
  const rawRate = rawCycles / rawSeconds;
  await Promise.all(clients.map((c) => c.end()));

  // 3. Enqueue-to-claim latency with every daemon long-polling.
  const dispatch = hdr.build();
  const enqueuedAt = new Map<string, number>();
  let remaining = LATENCY_SAMPLES;
  let stop = false;
  const pollers = daemons.map(async ({ runtimeId }) => {
    while (!stop) {
      const claim = await post(`/api/daemon/runtimes/${runtimeId}/tasks/claim?wait=25`, {});
      const task = (claim.json as { task: { id: string } | null }).task;
      if (!task) continue;
      const at = enqueuedAt.get(task.id);
      if (at !== undefined) dispatch.recordValue(Math.round((performance.now() - at) * 1000));
      remaining--;
    }
  });
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const { agentId } = daemons[i % daemons.length]!;
    const before = performance.now();
    const { task } = await tasks.enqueueTask({ agentId, priority: 0, issueId: randomUUID(), forceFreshSession: false, maxAttempts: 0 });
    enqueuedAt.set(task!.id, before);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const deadline = Date.now() + 30_000;
  while (remaining > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  stop = true;
  // Wake the pollers so they return.
  await Promise.all(daemons.map(({ agentId }) => tasks.enqueueTask({ agentId, priority: 0, issueId: randomUUID(), forceFreshSession: false, maxAttempts: 0 })));
  await Promise.all(pollers);

  const ms = (h: hdr.Histogram, p: number) => (h.getValueAtPercentile(p) / 1000).toFixed(1);
  console.log(`daemons: ${DAEMONS}, tasks per phase: ${DAEMONS * TASKS_PER_DAEMON}`);
  console.log(`gateway cycles (claim->start->complete): ${gatewayRate.toFixed(0)}/s over ${cycles} cycles; claim p50 ${ms(claimLatency, 50)} ms, p99 ${ms(claimLatency, 99)} ms`);
  console.log(`raw SQL ceiling (the same claim statement + start and complete UPDATEs, ${RAW_CONNECTIONS} connections): ${rawRate.toFixed(0)}/s over ${rawCycles} cycles`);
  console.log(`gateway / ceiling: ${(gatewayRate / rawRate).toFixed(2)}`);
  console.log(
    `CPU per gateway cycle: control plane ${cpuPerCycleMs.plane.toFixed(2)} ms, Postgres ${cpuPerCycleMs.postgres.toFixed(2)} ms, ` +
      `load generator ${cpuPerCycleMs.bench.toFixed(2)} ms (2 cores = 2,000 ms of CPU per second)`,
  );
  console.log(`enqueue->claim with long-poll: p50 ${ms(dispatch, 50)} ms, p99 ${ms(dispatch, 99)} ms over ${dispatch.totalCount} tasks`);
  console.log(`control plane RSS after the gateway phase: ${rssAfterGateway} MiB (${plane.pids.length === 1 ? "all in one process" : "registry, profile catalog, task queue, liveness, gateway"})`);

  // 4. Today's daemon.
  for (const line of await runTodaysDaemonPhases({ plane, workspaceId, token, registry, tasks })) console.log(line);
} catch (error) {
  console.error("benchmark failed:", error);
  process.exitCode = 1;
} finally {
  identity.close();
  registry.close();
  tasks.close();
  await plane.stop();
}

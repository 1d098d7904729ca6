/**
 * Profiling driver for the task cycle (run on demand):
 *
 *   node --import tsx test/load/profile/cycle.ts [profile-dir]
 *
 * Starts the control plane (one process per service, or all in one with
 * BENCH_ALL_IN_ONE=1), warms it up, then measures claim -> start -> complete
 * cycles and HTTP heartbeats through the gateway, printing the CPU each costs
 * per control-plane process. With a profile directory every service process
 * runs with --cpu-prof, and the measured windows (monotonic-clock
 * microseconds, the profiles' own clock) are written next to the profiles so
 * summarise.ts can leave start-up and warm-up out.
 *
 * Smaller than `npm run bench:tasks` on purpose: only the phases profiled.
 * PROFILE_PHASES=heartbeats measures only the heartbeat phase (the warm-up
 * still runs a few cycles so every path is compiled).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { createClient } from "@controlplane/grpc";
import { IdentityServiceService, MemberRole } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import pg from "pg";
import { freePort } from "@controlplane/lifecycle";
import { benchAgent, cpuSeconds, postgresPids, scrapeMetrics, startControlPlane, syscalls } from "../harness.js";

const DAEMONS = Number(process.env.BENCH_DAEMONS ?? 64);
const WARMUP_PER_DAEMON = Number(process.env.PROFILE_WARMUP_PER_DAEMON ?? 10);
const TASKS_PER_DAEMON = Number(process.env.BENCH_TASKS_PER_DAEMON ?? 40);
const HEARTBEATS_PER_DAEMON = Number(process.env.PROFILE_HEARTBEATS_PER_DAEMON ?? 100);
const PHASES = (process.env.PROFILE_PHASES ?? "cycles,heartbeats").split(",");
const PROCESS_NAMES = ["registry", "profile-catalog", "task-queue", "liveness", "gateway"];

const profileDir = process.argv[2] ? resolve(process.argv[2]) : undefined;
if (profileDir) {
  mkdirSync(profileDir, { recursive: true });
  // The harness reads this when it spawns the services.
  process.env.BENCH_CPU_PROF = profileDir;
}

/** Monotonic microseconds: the clock V8 stamps profile samples with. */
const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

// gRPC calls by method are read around each phase: all in one, from its one
// metrics endpoint (every call any service handled); one process per service,
// from the gateway's (every call it made).
const metricsPort = await freePort();
const plane = await startControlPlane({ METRICS_PORT: String(metricsPort), GATEWAY_METRICS_PORT: String(metricsPort) });
const names = plane.pids.length === 1 ? ["all-in-one"] : PROCESS_NAMES;
const identity = createClient(IdentityServiceService, plane.registryAddr, { deadlineMs: 30_000 });
const registry = createClient(RuntimeRegistryServiceService, plane.registryAddr, { deadlineMs: 30_000 });
const tasks = createClient(TaskQueueServiceService, plane.tasksAddr, { deadlineMs: 30_000 });
const windows: Record<string, { start: number; end: number }> = {};

try {
  const userId = randomUUID();
  const { workspace } = await identity.createWorkspace({
    name: `prof-${userId.slice(0, 6)}`,
    slug: "",
    description: "",
    repos: [],
    settingsJson: "",
    issuePrefix: "",
  });
  const workspaceId = workspace!.id;
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_OWNER });
  const { token } = await identity.issuePersonalAccessToken({ userId, name: "profile", ttlSeconds: 3600 });

  const post = async (path: string, body: unknown) => {
    const response = await fetch(plane.gatewayUrl + path, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as unknown;
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(json)}`);
    return json;
  };

  const daemons = await Promise.all(
    Array.from({ length: DAEMONS }, async (_, i) => {
      const answer = await post(`/api/daemon/register`, {
        workspace_id: workspaceId,
        daemon_id: `prof-daemon-${i}`,
        runtimes: [{ type: "claude", version: "1", status: "online" }],
      });
      const runtimeId = (answer as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
      return { runtimeId, agentId: await benchAgent(registry, { workspaceId, runtimeId, name: `agent-${i}` }) };
    }),
  );

  const enqueue = (perDaemon: number) =>
    Promise.all(
      daemons.map(async ({ agentId }) => {
        for (let i = 0; i < perDaemon; i++) await tasks.enqueueTask({ agentId, priority: 0, issueId: randomUUID(), forceFreshSession: false, maxAttempts: 0 });
      }),
    );

  /** Every daemon claims, starts and completes until the queue is empty. */
  const drain = async () => {
    let cycles = 0;
    await Promise.all(
      daemons.map(async ({ runtimeId }) => {
        for (;;) {
          const { task } = (await post(`/api/daemon/runtimes/${runtimeId}/tasks/claim`, {})) as { task: { id: string } | null };
          if (!task) return;
          await post(`/api/daemon/tasks/${task.id}/start`, {});
          await post(`/api/daemon/tasks/${task.id}/complete`, { output: "ok" });
          cycles++;
        }
      }),
    );
    return cycles;
  };

  const heartbeats = (perDaemon: number) =>
    Promise.all(
      daemons.map(async ({ runtimeId }) => {
        for (let i = 0; i < perDaemon; i++) await post(`/api/daemon/heartbeat`, { runtime_id: runtimeId });
      }),
    );

  /** CPU milliseconds per unit of `work`, per control-plane process and Postgres. */
  const measure = async (phase: string, work: () => Promise<number>) => {
    const pgPids = await postgresPids();
    const callsBefore = await grpcCalls();
    const xactsBefore = await transactions();
    const before = await Promise.all(plane.pids.map((pid) => cpuSeconds([pid])));
    const syscallsBefore = await Promise.all(plane.pids.map((pid) => syscalls([pid])));
    const pgBefore = await cpuSeconds(pgPids);
    const started = performance.now();
    const start = nowMicros();
    const units = await work();
    windows[phase] = { start, end: nowMicros() };
    const seconds = (performance.now() - started) / 1000;
    const after = await Promise.all(plane.pids.map((pid) => cpuSeconds([pid])));
    const syscallsAfter = await Promise.all(plane.pids.map((pid) => syscalls([pid])));
    const pgAfter = await cpuSeconds(await postgresPids());
    const xacts = ((await transactions()) - xactsBefore) / units;
    const callsAfter = await grpcCalls();
    const calls = [...callsAfter].map(([method, n]) => [method, (n - (callsBefore.get(method) ?? 0)) / units] as const).filter(([, n]) => n >= 0.01);
    const perProcess = after.map((a, i) => ((a - before[i]!) * 1000) / units);
    const total = perProcess.reduce((a, b) => a + b, 0);
    const split = perProcess.map((ms, i) => `${names[i]} ${ms.toFixed(2)}`).join(", ");
    console.log(
      `${phase}: ${units} in ${seconds.toFixed(1)} s (${(units / seconds).toFixed(0)}/s); CPU per unit: control plane ${total.toFixed(2)} ms` +
        (plane.pids.length > 1 ? ` (${split})` : "") +
        `, Postgres ${(((pgAfter - pgBefore) * 1000) / units).toFixed(2)} ms`,
    );
    console.log(`  per unit: ${xacts.toFixed(2)} Postgres transactions; gRPC calls ${calls.map(([m, n]) => `${m} ${n.toFixed(2)}`).join(", ")}`);
    const perUnit = (i: number, key: "reads" | "writes") => (syscallsAfter[i]![key] - syscallsBefore[i]![key]) / units;
    console.log(
      `  system calls per unit, writes / reads: ${names.map((name, i) => `${name} ${perUnit(i, "writes").toFixed(1)} / ${perUnit(i, "reads").toFixed(1)}`).join(", ")}`,
    );
  };

  /** Committed transactions of the run's database (a statement outside a transaction is one). */
  const transactions = async () => {
    const db = new pg.Client({ connectionString: plane.databaseUrl });
    await db.connect();
    const { rows } = await db.query("SELECT xact_commit::int AS n FROM pg_stat_database WHERE datname = current_database()");
    await db.end();
    // pg_stat_database is refreshed by the stats collector; this connection's own query adds one.
    return Number(rows[0].n);
  };
  /** gRPC calls by method: handled by any service all in one, made by the gateway with one process per service. */
  const counted = plane.pids.length === 1 ? "grpc_server_handled_total" : "grpc_client_handled_total";
  const grpcCalls = async () => {
    const calls = new Map<string, number>();
    for (const [key, value] of await scrapeMetrics(metricsPort)) {
      const method = key.startsWith(`${counted}{`) ? /grpc_method="([^"]+)"/.exec(key)?.[1] : undefined;
      if (method) calls.set(method, (calls.get(method) ?? 0) + value);
    }
    return calls;
  };

  await enqueue(WARMUP_PER_DAEMON);
  await drain();
  await heartbeats(10);
  if (PHASES.includes("cycles")) {
    await enqueue(TASKS_PER_DAEMON);
    await measure("cycles", drain);
  }
  if (PHASES.includes("heartbeats"))
    await measure("heartbeats", async () => {
      await heartbeats(HEARTBEATS_PER_DAEMON);
      return HEARTBEATS_PER_DAEMON * DAEMONS;
    });
} catch (error) {
  console.error("profiling run failed:", error);
  process.exitCode = 1;
} finally {
  identity.close();
  registry.close();
  tasks.close();
  await plane.stop();
  if (profileDir) {
    writeFileSync(
      resolve(profileDir, "windows.json"),
      JSON.stringify({ windows, pids: Object.fromEntries(plane.pids.map((pid, i) => [pid, names[i]])) }, null, 2),
    );
    console.log(`profiles in ${profileDir}; summarise with: node --import tsx test/load/profile/summarise.ts ${profileDir} cycles`);
  }
}

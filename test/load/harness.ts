import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { PromiseClient } from "@controlplane/grpc";
import { freePort } from "@controlplane/lifecycle";
import type { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { checkHealth } from "@controlplane/testkit";

/**
 * The whole control plane in child processes, on a fresh database and
 * stream, so the load generator in this process does not share an event loop
 * with the services. By default each service runs in its own process, as it
 * is deployed; BENCH_ALL_IN_ONE=1 runs them all in one (`npm start`'s mode).
 */
export interface ControlPlane {
  gatewayUrl: string;
  registryAddr: string;
  tasksAddr: string;
  databaseUrl: string;
  /** EVENTS_SUBJECT_ROOT of this run (events and core NATS signals live under it). */
  subjectRoot: string;
  /** Process ids of the control plane (one, or one per service). */
  pids: number[];
  /**
   * Starts one more gateway process on the same services, database and NATS
   * (a second replica); it is stopped with the rest. Its pid is not in `pids`.
   */
  addGateway(): Promise<{ url: string; pid: number }>;
  stop(): Promise<void>;
}

const SERVER = process.env.BENCH_DATABASE_SERVER_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export async function startControlPlane(
  extraEnv: Record<string, string> = {},
  /** Runs after migrations, before any service starts (e.g. to load a fleet). */
  beforeStart?: (databaseUrl: string) => Promise<void>,
): Promise<ControlPlane> {
  const suffix = randomBytes(4).toString("hex");
  const database = `cp_bench_${suffix}`;
  const databaseUrl = SERVER.replace(/\/[^/]*$/, `/${database}`);
  const ports = {
    gateway: await freePort(),
    registry: await freePort(),
    profiles: await freePort(),
    tasks: await freePort(),
    liveness: await freePort(),
    metrics: await freePort(),
  };
  // BENCH_CPU_PROF=<dir> profiles every service; BENCH_NODE_FLAGS adds flags (e.g. --trace-gc).
  const profile = [
    ...(process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
    ...(process.env.BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? []),
  ];
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    EVENTS_STREAM: `BENCH_${suffix}`,
    EVENTS_SUBJECT_ROOT: `cpbench-${suffix}`,
    GATEWAY_PORT: String(ports.gateway),
    REGISTRY_GRPC_PORT: String(ports.registry),
    PROFILE_CATALOG_GRPC_PORT: String(ports.profiles),
    TASK_QUEUE_GRPC_PORT: String(ports.tasks),
    LIVENESS_GRPC_PORT: String(ports.liveness),
    METRICS_PORT: String(ports.metrics),
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn",
    DB_POOL_SIZE: "10",
    REGISTRY_GRPC_ADDR: `127.0.0.1:${ports.registry}`,
    PROFILE_CATALOG_GRPC_ADDR: `127.0.0.1:${ports.profiles}`,
    TASK_QUEUE_GRPC_ADDR: `127.0.0.1:${ports.tasks}`,
    LIVENESS_GRPC_ADDR: `127.0.0.1:${ports.liveness}`,
    LIVENESS_METRICS_PORT: "0",
    REGISTRY_METRICS_PORT: "0",
    PROFILE_CATALOG_METRICS_PORT: "0",
    TASK_QUEUE_METRICS_PORT: "0",
    GATEWAY_METRICS_PORT: "0",
    ...extraEnv,
  };
  const run = (entry: string, overrides: Record<string, string> = {}, nodeFlags: string[] = []) =>
    spawn(process.execPath, [...nodeFlags, ...profile, "--import", "tsx", fileURLToPath(new URL(`../../${entry}`, import.meta.url))], {
      env: { ...env, ...overrides },
      stdio: ["ignore", "inherit", "inherit"],
    });
  const children: ChildProcess[] = [];
  // The database and every schema exist before anything starts.
  const { execFileSync } = await import("node:child_process");
  execFileSync(process.execPath, ["--import", "tsx", fileURLToPath(new URL("../../tools/all-in-one/src/migrate.ts", import.meta.url))], {
    env,
    stdio: "inherit",
  });
  await beforeStart?.(databaseUrl);
  if (process.env.BENCH_ALL_IN_ONE === "1") {
    // As `npm start` runs it (scripts/start.sh): the same V8 flag.
    children.push(run("tools/all-in-one/src/main.ts", {}, ["--max-semi-space-size=32"]));
  } else {
    for (const entry of [
      "services/runtime-registry/src/main.ts",
      "services/profile-catalog/src/main.ts",
      "services/task-queue/src/main.ts",
      "services/liveness/src/main.ts",
      "services/gateway/src/main.ts",
    ]) {
      children.push(run(entry));
    }
  }
  const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
  const grpcAddrs = [ports.registry, ports.profiles, ports.tasks, ports.liveness].map((port) => `127.0.0.1:${port}`);
  const deadline = Date.now() + 60_000;
  // Ready when the gateway answers and every service reports SERVING.
  for (;;) {
    const failure = children.some((c) => c.exitCode !== null)
      ? "a control-plane process exited during start"
      : Date.now() > deadline
        ? "control plane did not start within 60 s"
        : undefined;
    if (failure) {
      for (const child of children) child.kill("SIGKILL");
      throw new Error(failure);
    }
    try {
      const gatewayUp = (await fetch(`${gatewayUrl}/healthz`)).ok;
      const serving = await Promise.all(grpcAddrs.map((addr) => checkHealth(addr)));
      if (gatewayUp && serving.every((s) => s === "SERVING")) break;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    gatewayUrl,
    registryAddr: `127.0.0.1:${ports.registry}`,
    tasksAddr: `127.0.0.1:${ports.tasks}`,
    databaseUrl,
    subjectRoot: env.EVENTS_SUBJECT_ROOT,
    pids: children.map((c) => c.pid!),
    async addGateway() {
      const port = await freePort();
      const child = run("services/gateway/src/main.ts", { GATEWAY_PORT: String(port) });
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      const until = Date.now() + 60_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error("the extra gateway exited during start");
        if (Date.now() > until) throw new Error("the extra gateway did not start within 60 s");
        try {
          if ((await fetch(`${url}/healthz`)).ok) return { url, pid: child.pid! };
        } catch {
          // not up yet
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async stop() {
      await Promise.all(
        children.map((c) => {
          const exited = new Promise((resolve) => c.once("exit", resolve));
          c.kill("SIGTERM");
          return exited;
        }),
      );
      const admin = new pg.Client({ connectionString: SERVER });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** Resident set size of a process in MiB, from /proc. */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** CPU seconds (user + system) used so far by the given processes. */
export async function cpuSeconds(pids: number[]): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const ticks = await Promise.all(
    pids.map(async (pid) => {
      try {
        const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
        return Number(fields[11]) + Number(fields[12]);
      } catch {
        return 0;
      }
    }),
  );
  return ticks.reduce((a, b) => a + b, 0) / 100;
}

/**
 * Read and write system calls made so far by the given processes (from
 * /proc/<pid>/io): on this kind of virtual machine a socket write, which
 * wakes its peer, is among a request's dearest steps.
 */
export async function syscalls(pids: number[]): Promise<{ reads: number; writes: number }> {
  const { readFile } = await import("node:fs/promises");
  const counts = await Promise.all(
    pids.map(async (pid) => {
      try {
        const io = await readFile(`/proc/${pid}/io`, "utf8");
        return { reads: Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0), writes: Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0) };
      } catch {
        return { reads: 0, writes: 0 };
      }
    }),
  );
  return counts.reduce((a, b) => ({ reads: a.reads + b.reads, writes: a.writes + b.writes }), { reads: 0, writes: 0 });
}

/** Process ids of every Postgres server process on this machine. */
export function postgresPids(): Promise<number[]> {
  return pidsNamed("postgres");
}

/** Process ids of the NATS server. */
export function natsPids(): Promise<number[]> {
  return pidsNamed("nats-server");
}

async function pidsNamed(command: string): Promise<number[]> {
  const { readdir, readFile } = await import("node:fs/promises");
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readFile(`/proc/${entry}/comm`, "utf8")).trim() === command) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * Loads a workspace, one member and `runtimeIds` (owned by that member, as
 * a member's registration makes them) straight into the
 * registry's and liveness's tables (setup is not what is measured).
 * last_seen_at is spread over the last minute, as a fleet in its steady
 * state has it.
 */
export async function loadRuntimes(databaseUrl: string, workspaceId: string, userId: string, runtimeIds: string[]): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query("INSERT INTO registry.workspace (id, name, slug) VALUES ($1, 'fleet', $2)", [workspaceId, `fleet-${workspaceId.slice(0, 8)}`]);
  await db.query("INSERT INTO registry.member (workspace_id, user_id, role) VALUES ($1, $2, 'owner')", [workspaceId, userId]);
  for (let i = 0; i < runtimeIds.length; i += 5_000) {
    const ids = runtimeIds.slice(i, i + 5_000);
    await db.query(
      `INSERT INTO registry.agent_runtime (id, workspace_id, daemon_id, name, provider, status, owner_id, last_seen_at)
       SELECT id, $2, 'daemon-' || id, 'claude', 'claude', 'online', $3, now() FROM unnest($1::uuid[]) AS id`,
      [ids, workspaceId, userId],
    );
    await db.query(
      `INSERT INTO liveness.runtime_liveness (runtime_id, workspace_id, status, last_seen_at)
       SELECT id, $2, 'online', now() - random() * interval '60 seconds' FROM unnest($1::uuid[]) AS id`,
      [ids, workspaceId],
    );
  }
  await db.end();
}

/**
 * Makes sure this process (and the services it starts afterwards, which
 * inherit it) may open `needed` file descriptors: raises the soft limit up
 * to the hard one with prlimit(1) when it is lower. Returns the limits then
 * in force; the caller decides what to do when the hard limit is too low.
 */
export async function ensureFileLimit(needed: number): Promise<{ soft: number; hard: number; raised: boolean }> {
  const { readFile } = await import("node:fs/promises");
  const read = async () => {
    const line = (await readFile("/proc/self/limits", "utf8")).split("\n").find((l) => l.startsWith("Max open files"))!;
    const [soft, hard] = line
      .replace("Max open files", "")
      .trim()
      .split(/\s+/)
      .map((v) => (v === "unlimited" ? Infinity : Number(v)));
    return { soft: soft!, hard: hard! };
  };
  const limits = await read();
  if (limits.soft >= needed || limits.soft >= limits.hard) return { ...limits, raised: false };
  const { execFileSync } = await import("node:child_process");
  try {
    const hard = limits.hard === Infinity ? "unlimited" : String(limits.hard);
    execFileSync("prlimit", [`--pid=${process.pid}`, `--nofile=${hard}:${hard}`], { stdio: "ignore" });
  } catch {
    // no prlimit, or not allowed: report what there is
  }
  return { ...(await read()), raised: true };
}

/**
 * A service's Prometheus metrics (its METRICS_PORT), as name{labels} ->
 * value, e.g. "nodejs_heap_size_used_bytes" or
 * 'gateway_daemon_socket_acks_total{outcome="skipped"}'. Empty when it
 * cannot be read.
 */
export async function scrapeMetrics(port: number): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split("\n")) {
      if (line.startsWith("#") || line.trim() === "") continue;
      const space = line.lastIndexOf(" ");
      values.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
  } catch {
    // not reachable: nothing to report
  }
  return values;
}

/**
 * Creates an agent on a runtime with nothing but a name and a concurrency
 * limit (room for every task by default), as the benchmarks need; returns
 * its id. `ownerId` is needed when the runtime has no owner of its own.
 */
export async function benchAgent(
  registry: PromiseClient<typeof RuntimeRegistryServiceService>,
  agent: { workspaceId: string; runtimeId: string; name: string; maxConcurrentTasks?: number; ownerId?: string },
): Promise<string> {
  const { agent: created } = await registry.upsertAgent({
    workspaceId: agent.workspaceId,
    runtimeId: agent.runtimeId,
    name: agent.name,
    instructions: "",
    customEnv: {},
    customArgs: [],
    runtimeConfigJson: "",
    skills: [],
    maxConcurrentTasks: agent.maxConcurrentTasks ?? 1_000,
    visibility: "",
    ...(agent.ownerId === undefined ? {} : { ownerId: agent.ownerId }),
  });
  if (!created) throw new Error(`UpsertAgent answered no agent for runtime ${agent.runtimeId}`);
  return created.id;
}

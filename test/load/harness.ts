import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort } from "@controlplane/lifecycle";
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
  /** Process ids of the control plane (one, or one per service). */
  pids: number[];
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
  const run = (entry: string) =>
    spawn(process.execPath, [...profile, "--import", "tsx", fileURLToPath(new URL(`../../${entry}`, import.meta.url))], {
      env,
      stdio: ["ignore", "inherit", "inherit"],
    });
  const children: ChildProcess[] = [];
  // The database and every schema exist before anything starts.
  const { execFileSync } = await import("node:child_process");
  execFileSync(process.execPath, ["--import", "tsx", fileURLToPath(new URL("../../tools/all-in-one/src/migrate.ts", import.meta.url))], { env, stdio: "inherit" });
  await beforeStart?.(databaseUrl);
  if (process.env.BENCH_ALL_IN_ONE === "1") {
    children.push(run("tools/all-in-one/src/main.ts"));
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
    pids: children.map((c) => c.pid!),
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

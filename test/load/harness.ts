import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort } from "@controlplane/lifecycle";

/**
 * The whole control plane in a child process (`npm start`'s all-in-one) on a
 * fresh database and stream, so the load generator in this process does not
 * share its event loop with the services.
 */
export interface ControlPlane {
  gatewayUrl: string;
  registryAddr: string;
  tasksAddr: string;
  databaseUrl: string;
  pid: number;
  stop(): Promise<void>;
}

const SERVER = process.env.BENCH_DATABASE_SERVER_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export async function startControlPlane(extraEnv: Record<string, string> = {}): Promise<ControlPlane> {
  const suffix = randomBytes(4).toString("hex");
  const database = `cp_bench_${suffix}`;
  const databaseUrl = SERVER.replace(/\/[^/]*$/, `/${database}`);
  const ports = { gateway: await freePort(), registry: await freePort(), profiles: await freePort(), tasks: await freePort(), metrics: await freePort() };
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...profile, "--import", "tsx", fileURLToPath(new URL("../../tools/all-in-one/src/main.ts", import.meta.url))], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      EVENTS_STREAM: `BENCH_${suffix}`,
      EVENTS_SUBJECT_ROOT: `cpbench-${suffix}`,
      GATEWAY_PORT: String(ports.gateway),
      REGISTRY_GRPC_PORT: String(ports.registry),
      PROFILE_CATALOG_GRPC_PORT: String(ports.profiles),
      TASK_QUEUE_GRPC_PORT: String(ports.tasks),
      METRICS_PORT: String(ports.metrics),
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn",
      DB_POOL_SIZE: "10",
      ...extraEnv,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`control plane exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${gatewayUrl}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("control plane did not start within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    gatewayUrl,
    registryAddr: `127.0.0.1:${ports.registry}`,
    tasksAddr: `127.0.0.1:${ports.tasks}`,
    databaseUrl,
    pid: child.pid!,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
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

import { fileURLToPath } from "node:url";
import { migrate } from "@controlplane/db";
import { createClient, GrpcServer } from "@controlplane/grpc";
import { openServiceHost, type PeriodicJob } from "@controlplane/lifecycle";
import type { Logger } from "@controlplane/log";
import { gauge } from "@controlplane/metrics";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { Broadcast } from "./broadcast.js";
import type { LivenessConfig } from "./config.js";
import type { LivenessDeps } from "./deps.js";
import { Directory } from "./directory.js";
import { startLivenessConsumers } from "./events.js";
import { flusherJob } from "./flusher.js";
import { housekeepingJob } from "./housekeeping.js";
import { livenessHandlers } from "./server.js";
import { LivenessState } from "./state.js";
import { LivenessStore } from "./store.js";
import { retentionJob } from "./retention.js";
import { sweeperJob, type SweepResult } from "./sweeper.js";

/** This service's Postgres schema; nothing else reads or writes it. */
export const SCHEMA = "liveness";
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));

const states = new Set<LivenessState>();
gauge({
  name: "liveness_flush_backlog",
  help: "Runtimes waiting for the next bulk flush.",
  labelNames: [] as const,
  collect() {
    let backlog = 0;
    for (const state of states) backlog += state.flushBacklog;
    this.set(backlog);
  },
});

export interface RunningLiveness {
  port: number;
  /** For tests and benchmarks: the running deps (flush and sweep on demand). */
  deps: LivenessDeps;
  /** The background jobs, for tests (runOnce) and benchmarks. */
  jobs: {
    sweeper: PeriodicJob<SweepResult>;
    flusher: PeriodicJob<number>;
    housekeeping: PeriodicJob<void>;
    retention: ReturnType<typeof retentionJob>;
  };
  stop(): Promise<void>;
}

export async function migrateLiveness(config: LivenessConfig, log: Logger): Promise<void> {
  await migrate({ databaseUrl: config.DATABASE_URL, schema: SCHEMA, dir: MIGRATIONS_DIR, log });
}

/** Wires config -> pool -> migrations -> events -> store -> gRPC server. */
export async function startLiveness(config: LivenessConfig, log: Logger): Promise<RunningLiveness> {
  const host = await openServiceHost({ name: "liveness", schema: SCHEMA, migrationsDir: MIGRATIONS_DIR, config, log });
  try {
    const registry = createClient(RuntimeRegistryServiceService, config.REGISTRY_GRPC_ADDR, { deadlineMs: 5_000 });
    host.onStop(async () => registry.close());
    const state = new LivenessState();
    states.add(state);
    host.onStop(async () => {
      states.delete(state);
    });
    const store = await LivenessStore.open(host.bus.nc, LivenessStore.bucketFor(config.EVENTS_SUBJECT_ROOT), config.LIVENESS_TTL_MS);
    const directory = new Directory(host.pool, state, registry);
    const broadcast = new Broadcast(
      host.bus.nc,
      Broadcast.prefixFor(config.EVENTS_SUBJECT_ROOT),
      (kind, runtimeId) => {
        if (kind === "pending") state.hintPending(runtimeId);
        else if (kind === "online") state.markOnline(runtimeId);
        else if (kind === "offline") state.markOffline(runtimeId);
        else state.forget(runtimeId);
      },
      log,
    );
    host.onStop(async () => broadcast.close());
    const deps: LivenessDeps = { pool: host.pool, outbox: host.outbox, bus: host.bus, state, directory, store, broadcast, config, log };
    const known = await directory.load();
    const jobs = { sweeper: sweeperJob(deps), flusher: flusherJob(deps), housekeeping: housekeepingJob(deps), retention: retentionJob(deps) };
    // Hints and overdue actions are right before the first beat is answered.
    await jobs.housekeeping.runOnce();
    for (const consumer of await startLivenessConsumers(deps)) host.onStop(consumer);
    host.onStop(jobs.sweeper.start());
    host.onStop(jobs.housekeeping.start());
    host.onStop(jobs.retention.start());
    // Stopped after the server, so the last beats still reach the database.
    host.onStop(jobs.flusher.start());
    const server = new GrpcServer(log).add(LivenessServiceService, livenessHandlers(deps));
    const port = await server.listen(config.LIVENESS_GRPC_PORT);
    host.onStop(() => server.shutdown(config.SHUTDOWN_GRACE_MS));
    log.info({ port, known_runtimes: known }, "liveness serving");
    return { port, deps, jobs, stop: host.stop };
  } catch (error) {
    await host.stop();
    throw error;
  }
}

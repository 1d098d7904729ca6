import { fileURLToPath } from "node:url";
import { migrate } from "@controlplane/db";
import { createClient, GrpcServer } from "@controlplane/grpc";
import { openServiceHost, type PeriodicJob } from "@controlplane/lifecycle";
import type { Logger } from "@controlplane/log";
import { gauge } from "@controlplane/metrics";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { BuiltinSkillsCache } from "./builtin-skills.js";
import type { TaskQueueConfig } from "./config.js";
import { dropChangedRuntimesOnEvents } from "./cache-events.js";
import { startTaskQueueConsumers } from "./events.js";
import { RuntimeFreshness } from "./freshness.js";
import { RegistryReads } from "./reads.js";
import { claimSettings } from "./claim.js";
import { claimsInGroups, completionsInGroups, startsInGroups } from "./groups.js";
import { taskQueueHandlers } from "./server.js";
import { retentionJob, type RetentionResult } from "./retention.js";
import { sweeperJob, type SweepResult } from "./sweeper.js";
import { KnownTasks } from "./task-refs.js";
import { WakeHub } from "./wake.js";
import { ActivityEvents } from "./activity.js";

/** This service's Postgres schema; nothing else reads or writes it. */
export const SCHEMA = "taskqueue";
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));

const hubs = new Set<WakeHub>();
gauge({
  name: "taskqueue_long_poll_waiting",
  help: "Claims currently waiting for work.",
  labelNames: [] as const,
  collect() {
    let waiting = 0;
    for (const hub of hubs) waiting += hub.waiting;
    this.set(waiting);
  },
});

export interface RunningTaskQueue {
  port: number;
  /** The background jobs, for tests (runOnce) and benchmarks. */
  jobs: { sweeper: PeriodicJob<SweepResult>; retention: PeriodicJob<RetentionResult> };
  stop(): Promise<void>;
}

export async function migrateTaskQueue(config: TaskQueueConfig, log: Logger): Promise<void> {
  await migrate({ databaseUrl: config.DATABASE_URL, schema: SCHEMA, dir: MIGRATIONS_DIR, log });
}

/** Wires config -> pool -> migrations -> events -> gRPC server. */
export async function startTaskQueue(config: TaskQueueConfig, log: Logger): Promise<RunningTaskQueue> {
  const host = await openServiceHost({ name: "task-queue", schema: SCHEMA, migrationsDir: MIGRATIONS_DIR, config, log });
  try {
    const registry = createClient(RuntimeRegistryServiceService, config.REGISTRY_GRPC_ADDR, { deadlineMs: 5_000 });
    const identity = createClient(IdentityServiceService, config.REGISTRY_GRPC_ADDR, { deadlineMs: 5_000 });
    // Claims ask it about their runtimes: a short deadline, a claim must answer.
    const liveness = createClient(LivenessServiceService, config.LIVENESS_GRPC_ADDR, { deadlineMs: 2_000 });
    host.onStop(async () => {
      registry.close();
      identity.close();
      liveness.close();
    });
    const wake = new WakeHub(host.bus.nc, WakeHub.subjectPrefix(config.EVENTS_SUBJECT_ROOT), log);
    hubs.add(wake);
    host.onStop(async () => {
      hubs.delete(wake);
    });
    // Stopped after the server has drained (stops run in reverse order): the last handlers' events still go out.
    const activity = new ActivityEvents(host.bus, log);
    host.onStop(async () => activity.close());
    const reads = new RegistryReads(registry, identity, config.REGISTRY_CACHE_TTL_MS);
    const builtinSkills = new BuiltinSkillsCache(host.pool);
    const freshness = new RuntimeFreshness(liveness, config.CLAIM_RUNTIME_FRESHNESS_MS, config.CLAIM_LIVENESS_CACHE_TTL_MS, log);
    // A task is in flight at most this long before the sweeper fails it.
    const knownTasks = new KnownTasks(config.DISPATCH_TIMEOUT_MS + config.RUNNING_TIMEOUT_MS);
    const deps = {
      pool: host.pool,
      claims: claimsInGroups(host.pool, claimSettings(config)),
      starts: startsInGroups(host.pool),
      completions: completionsInGroups(host.pool, host.outbox),
      outbox: host.outbox,
      bus: host.bus,
      activity,
      registry,
      identity,
      wake,
      reads,
      freshness,
      builtinSkills,
      knownTasks,
      config,
      log,
    };
    for (const consumer of await startTaskQueueConsumers(deps)) host.onStop(consumer);
    host.onStop(dropChangedRuntimesOnEvents(deps));
    const jobs = { sweeper: sweeperJob(deps).start(), retention: retentionJob(deps).start() };
    for (const job of Object.values(jobs)) host.onStop(job);
    const server = new GrpcServer(log).add(TaskQueueServiceService, taskQueueHandlers(deps));
    const port = await server.listen(config.TASK_QUEUE_GRPC_PORT);
    // Stop order: release waiting claims (they answer at once), then drain the server.
    host.onStop(() => server.shutdown(config.SHUTDOWN_GRACE_MS));
    host.onStop(async () => wake.close());
    log.info({ port }, "task-queue serving");
    return { port, jobs, stop: host.stop };
  } catch (error) {
    await host.stop();
    throw error;
  }
}

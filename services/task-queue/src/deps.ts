import type { Coalescer, DatabasePool, Outbox } from "@controlplane/db";
import type { EventBus } from "@controlplane/events";
import type { PromiseClient } from "@controlplane/grpc";
import type { Logger } from "@controlplane/log";
import type { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import type { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import type { ActivityEvents } from "./activity.js";
import type { BuiltinSkillsCache } from "./builtin-skills.js";
import type { TaskQueueConfig } from "./config.js";
import type { RuntimeFreshness } from "./freshness.js";
import type { RegistryReads } from "./reads.js";
import type { KnownTasks } from "./task-refs.js";
import type { ClaimTasksResult, SingleClaim } from "./repository/claims.js";
import type { TaskRow } from "./repository/rows.js";
import type { CompletedRow, KnownCompletion } from "./repository/reports.js";
import type { WakeHub } from "./wake.js";

/** What the task queue's use cases work with. */
export interface TaskQueueDeps {
  pool: DatabasePool;
  /** Single-task claims of one runtime each, sent together when they queue up (groups.ts). */
  claims: Coalescer<SingleClaim, void, ClaimTasksResult>;
  /** Starts by task id, sent together like claims. */
  starts: Coalescer<string, void, TaskRow>;
  /** Completions of tasks this replica knows, by task id, sent together like starts. */
  completions: Coalescer<string, KnownCompletion, CompletedRow>;
  outbox: Outbox;
  bus: EventBus;
  /** Display-only task events (dispatched, started, waiting, progress), published at most once. */
  activity: ActivityEvents;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
  identity: PromiseClient<typeof IdentityServiceService>;
  wake: WakeHub;
  reads: RegistryReads;
  /** The claim's gate: is a runtime online and recently seen (liveness's answer). */
  freshness: RuntimeFreshness;
  /** This replica's copy of the product's built-in skills, refreshed by version at claim. */
  builtinSkills: BuiltinSkillsCache;
  /** Tasks this replica claimed or started: their terminal transition writes its events in the same statement. */
  knownTasks: KnownTasks;
  config: TaskQueueConfig;
  log: Logger;
}

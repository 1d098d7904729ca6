import { GATEWAY_GRPC_DEADLINE_MS } from "@controlplane/config";
import { createClient, hasCode, status, type PromiseClient } from "@controlplane/grpc";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { HeartbeatRequest, HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import type {
  CallError,
  ClaimTaskResponse,
  CompleteTaskRequest,
  CompleteTaskResponse,
  StartTaskRequest,
  StartTaskResponse,
} from "@controlplane/proto/taskqueue/v1/taskqueue";
import { CodedError, MicroBatcher, type Settled } from "./batcher.js";
import { GroupedCalls } from "./grouped-calls.js";

/** The gRPC services the gateway translates to. */
export interface GatewayClients {
  identity: PromiseClient<typeof IdentityServiceService>;
  profiles: PromiseClient<typeof ProfileCatalogServiceService>;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
  tasks: PromiseClient<typeof TaskQueueServiceService>;
  liveness: PromiseClient<typeof LivenessServiceService>;
  /** Heartbeats go through this, many per liveness call. */
  heartbeats: MicroBatcher<HeartbeatRequest, HeartbeatResponse>;
  /** First lookups of runtimes' workspaces, many per registry call (undefined: no such runtime). */
  runtimeWorkspaces: MicroBatcher<string, string | undefined>;
  /** Claims without a wait (by runtime id), starts and completions: a busy gateway's share task-queue calls. */
  claims: GroupedCalls<string, ClaimTaskResponse>;
  starts: GroupedCalls<StartTaskRequest, StartTaskResponse>;
  completions: GroupedCalls<CompleteTaskRequest, CompleteTaskResponse>;
}

export interface GatewayClientOptions {
  /** HeartbeatBatch calls go out at most this often (0: one call per loop turn with beats). */
  heartbeatBatchIntervalMs?: number;
  /** Claims, starts and completions: calls of each kind in flight before the next requests wait to share one (0: a call each). */
  taskCallsInFlight?: number;
}

/** Beats per HeartbeatBatch call. */
const HEARTBEAT_BATCH = 256;
/** Runtime ids per GetRuntimeWorkspaces call (the registry takes up to 1,000). */
const LOOKUP_BATCH = 256;
/** Claims, starts or completions per task-queue call (the task queue takes up to 100). */
const TASK_CALL_BATCH = 64;
/**
 * Completions in one call weigh at most this: gRPC refuses messages over 8
 * MiB, and one completion may carry a 1 Mi-character output (up to 3 MiB).
 */
const COMPLETION_BATCH_BYTES = 4 * 1024 * 1024;

const DEADLINE_MS = GATEWAY_GRPC_DEADLINE_MS;
/** A daemon's request during a service's restart waits for it (within the deadline) rather than failing. */
const WAIT_FOR_READY = true;

export function createGatewayClients(
  addresses: { registry: string; profileCatalog: string; taskQueue: string; liveness: string },
  { heartbeatBatchIntervalMs = 0, taskCallsInFlight = 1 }: GatewayClientOptions = {},
): GatewayClients {
  const liveness = createClient(LivenessServiceService, addresses.liveness, {
    deadlineMs: DEADLINE_MS,
    waitForReady: WAIT_FOR_READY,
  });
  const tasks = createClient(TaskQueueServiceService, addresses.taskQueue, {
    deadlineMs: DEADLINE_MS,
    waitForReady: WAIT_FOR_READY,
  });
  const grouped = { maxInFlight: taskCallsInFlight, maxBatch: TASK_CALL_BATCH, deadlineMs: DEADLINE_MS };
  const registry = createClient(RuntimeRegistryServiceService, addresses.registry, {
    deadlineMs: DEADLINE_MS,
    waitForReady: WAIT_FOR_READY,
  });
  return {
    identity: createClient(IdentityServiceService, addresses.registry, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
    }),
    profiles: createClient(ProfileCatalogServiceService, addresses.profileCatalog, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
    }),
    registry,
    tasks,
    liveness,
    heartbeats: new MicroBatcher(async (beats) => settledItems((await liveness.heartbeatBatch({ beats })).outcomes, "ack"), {
      maxBatch: HEARTBEAT_BATCH,
      minIntervalMs: heartbeatBatchIntervalMs,
    }),
    runtimeWorkspaces: new MicroBatcher(
      async (runtimeIds) => {
        const { workspaceIds } = await registry.getRuntimeWorkspaces({ runtimeIds });
        return runtimeIds.map((id) => ({ ok: true, value: workspaceIds[id] }));
      },
      { maxBatch: LOOKUP_BATCH },
    ),
    claims: new GroupedCalls(
      orOneByOne(
        async (runtimeIds, deadlineMs) => (await tasks.claimTaskBatch({ runtimeIds }, { deadlineMs })).outcomes,
        (runtimeId, deadlineMs) => tasks.claimTask({ runtimeId, waitMs: 0 }, { deadlineMs }),
      ),
      { ...grouped, kind: "claim" },
    ),
    starts: new GroupedCalls(
      orOneByOne(
        async (starts, deadlineMs) => (await tasks.startTaskBatch({ starts }, { deadlineMs })).outcomes,
        (start, deadlineMs) => tasks.startTask(start, { deadlineMs }),
      ),
      { ...grouped, kind: "start" },
    ),
    completions: new GroupedCalls(
      orOneByOne(
        async (completions, deadlineMs) => (await tasks.completeTaskBatch({ completions }, { deadlineMs })).outcomes,
        (completion, deadlineMs) => tasks.completeTask(completion, { deadlineMs }),
      ),
      { ...grouped, kind: "complete", maxWeight: COMPLETION_BATCH_BYTES, weigh: completionBytes },
    ),
  };
}

/** An item's outcome in a batch answer (liveness's beats: "ack"; the task queue's items: "answer"). */
type BatchOutcome<C extends string, R> = { outcome?: { $case: C; value: R } | { $case: "error"; value: CallError } | undefined };

/**
 * Sends items with the batch call, each answered its own outcome; to a task
 * queue without the batch calls (an older one, during a rolling upgrade:
 * UNIMPLEMENTED), with one single call per item instead.
 */
function orOneByOne<I, R>(
  batch: (items: I[], deadlineMs: number) => Promise<Array<BatchOutcome<"answer", R>>>,
  single: (item: I, deadlineMs: number) => Promise<R>,
) {
  return async (items: I[], deadlineMs: number): Promise<Array<Settled<R>>> => {
    const dueAt = performance.now() + deadlineMs;
    try {
      return settledItems(await batch(items, deadlineMs), "answer");
    } catch (error) {
      if (!hasCode(error, status.UNIMPLEMENTED)) throw error;
      const left = Math.max(1, Math.ceil(dueAt - performance.now()));
      return Promise.all(
        items.map((item) =>
          single(item, left).then(
            (value): Settled<R> => ({ ok: true, value }),
            (itemError: unknown): Settled<R> => ({ ok: false, error: itemError }),
          ),
        ),
      );
    }
  };
}

/** A batch answer's outcomes as each item's result or error. */
function settledItems<C extends string, R>(outcomes: Array<BatchOutcome<C, R>>, answerCase: C): Array<Settled<R>> {
  return outcomes.map(({ outcome }): Settled<R> => {
    // TypeScript does not narrow a union on a generic discriminant: the casts follow the $case test.
    if (outcome && outcome.$case === answerCase) return { ok: true, value: outcome.value as R };
    const error = outcome?.value as CallError | undefined;
    return { ok: false, error: new CodedError(error?.code ?? status.INTERNAL, error?.message ?? "no outcome for this item") };
  });
}

/** At least a completion's encoded size: its strings' UTF-16 code units encode to at most 3 bytes each in UTF-8. */
function completionBytes(completion: CompleteTaskRequest): number {
  const { prUrl, output, sessionId, workDir, branchName = "", durableWorkDir = "", retiredSessionId = "" } = completion;
  return 3 * (prUrl.length + output.length + sessionId.length + workDir.length + branchName.length + durableWorkDir.length + retiredSessionId.length) + 256;
}

export function closeGatewayClients(clients: GatewayClients): void {
  clients.identity.close();
  clients.profiles.close();
  clients.registry.close();
  clients.tasks.close();
  clients.liveness.close();
  clients.claims.close();
  clients.starts.close();
  clients.completions.close();
}

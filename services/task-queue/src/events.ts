import { hasCode, status } from "@controlplane/grpc";
import { startConsumer, type RunningConsumer } from "@controlplane/events";
import { OfflineReason, RuntimeDeletedReason } from "@controlplane/proto/events/v1/events";
import type { TaskQueueDeps } from "./deps.js";
import { failTasksWhere } from "./lifecycle.js";
import { afterCancellations } from "./cancellations.js";
import * as tasks from "./repository/tasks.js";

/**
 * What the task queue consumes (durable, at least once, each handler
 * idempotent because every write is a guarded UPDATE):
 * - runtime.offline: its in-flight tasks fail with "runtime went offline"
 *   (retried where allowed). After a deregister they get a grace period first,
 *   since the daemon still reports tasks finishing during its shutdown.
 * - runtime.merged: the legacy runtime's tasks move to the new one.
 * - runtime.deleted (not by merge): its unfinished tasks are cancelled.
 * - agent.upserted: the agent's concurrency limit.
 *
 * Published (through the outbox): task.queued, task.dispatched, task.started,
 * task.waiting, task.messages, task.completed, task.failed, task.cancelled,
 * issue.first_executed; task.progress directly (never stored).
 */
export async function startTaskQueueConsumers(deps: TaskQueueDeps): Promise<RunningConsumer[]> {
  const { bus, log } = deps;
  return Promise.all([
    startConsumer({
      bus,
      log,
      durable: "taskqueue-runtime-offline",
      type: "runtime.offline",
      handler: async (event) => {
        if (event.reason === OfflineReason.OFFLINE_REASON_DEREGISTER) {
          const age = Date.now() - (event.meta?.occurredAt?.getTime() ?? 0);
          if (age < deps.config.DEREGISTER_GRACE_MS) return { retryAfterMs: deps.config.DEREGISTER_GRACE_MS - age };
          if (await isOnline(deps, event.runtimeId)) return;
        }
        const { failed } = await failTasksWhere(deps, tasks.inFlightOnRuntime(event.runtimeId), "runtime went offline", "runtime_offline");
        if (failed.length > 0) log.info({ runtime_id: event.runtimeId, count: failed.length }, "in-flight tasks of an offline runtime failed");
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "taskqueue-runtime-merged",
      type: "runtime.merged",
      handler: async (event) => {
        const moved = await tasks.moveRuntime(deps.pool, event.fromRuntimeId, event.toRuntimeId);
        if (moved > 0) deps.wake.notify(event.toRuntimeId);
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "taskqueue-runtime-deleted",
      type: "runtime.deleted",
      handler: async (event) => {
        if (event.reason === RuntimeDeletedReason.RUNTIME_DELETED_REASON_MERGED) return;
        await deps.outbox.transaction(async (tx) => afterCancellations(tx, deps.outbox, await tasks.cancelOnRuntime(tx, event.runtimeId)));
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "taskqueue-agent-upserted",
      type: "agent.upserted",
      handler: async (event) => {
        if (!event.agentId) return;
        deps.reads.agents.forget(event.agentId);
        if (event.maxConcurrentTasks > 0) await tasks.upsertAgentLimit(deps.pool, event.agentId, event.maxConcurrentTasks);
      },
    }),
  ]);
}

/** A runtime back online (its daemon restarted and registered again) keeps its tasks. */
async function isOnline(deps: TaskQueueDeps, runtimeId: string): Promise<boolean> {
  try {
    const { runtime } = await deps.registry.getRuntime({ runtimeId });
    return runtime?.status === "online";
  } catch (error) {
    if (hasCode(error, status.NOT_FOUND)) return false;
    throw error;
  }
}

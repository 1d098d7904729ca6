import { isForeignKeyViolation, type DatabasePool, type Outbox } from "@controlplane/db";
import { FailedPreconditionError } from "@controlplane/grpc";
import { eventMeta, occurredAt, startConsumer, type EventBus, type RunningConsumer } from "@controlplane/events";
import type { Logger } from "@controlplane/log";
import { detachInTransaction } from "./profiles.js";
import * as runtimes from "./repository/runtimes.js";

/**
 * What the registry consumes. Published by the registry itself (through its
 * outbox): runtime.registered, daemon.registered, runtime.offline (deregister),
 * runtime.merged, runtime.deleted.
 *
 * - runtime.online / runtime.offline (liveness): the status column is a
 *   projection of them, applied only when newer than the last change.
 * - profile.deleted (profile catalog): runtime rows registered for the
 *   profile after it was detached are removed too.
 */
export async function startRegistryConsumers(deps: { bus: EventBus; pool: DatabasePool; outbox: Outbox; log: Logger }): Promise<RunningConsumer[]> {
  const { bus, pool, outbox, log } = deps;
  return Promise.all([
    startConsumer({
      bus,
      log,
      durable: "registry-runtime-online",
      type: "runtime.online",
      handler: async (event) => {
        await runtimes.applyStatus(pool, event.runtimeId, "online", occurredAt(event), event.lastSeenAt);
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "registry-runtime-offline",
      type: "runtime.offline",
      handler: async (event) => {
        await runtimes.applyStatus(pool, event.runtimeId, "offline", occurredAt(event), event.lastSeenAt);
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "registry-profile-deleted",
      type: "profile.deleted",
      handler: async (event) => {
        try {
          await outbox.transaction((tx) => detachInTransaction(tx, outbox, eventMeta(event).workspaceId, event.profileId));
        } catch (error) {
          // Agents were bound to a late runtime: keep it rather than retry forever.
          if (!(error instanceof FailedPreconditionError) && !isForeignKeyViolation(error)) throw error;
          log.warn({ profile_id: event.profileId }, "runtimes of a deleted profile kept: agents are bound to them");
        }
      },
    }),
  ]);
}

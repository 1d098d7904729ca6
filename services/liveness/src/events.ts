import { occurredAt, startConsumer, type RunningConsumer } from "@controlplane/events";
import { OfflineReason } from "@controlplane/proto/events/v1/events";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import type { LivenessDeps } from "./deps.js";
import { registrationOf } from "./directory.js";
import * as repo from "./repository/runtimes.js";

/**
 * What liveness consumes from the registry:
 * - runtime.registered / daemon.registered: the runtime exists, in this
 *   workspace, with the status register gave it (online: seen at
 *   registration, so it is swept like any silent runtime if it never beats);
 * - runtime.deleted: forget it (its beats answer 404 from now on);
 * - runtime.offline (deregister): its daemon said goodbye; the next beat,
 *   if any, brings it back online with an event.
 * Every replica is told at once over core NATS; the database is the record.
 *
 * Published (through the outbox): runtime.online (a beat brought a runtime
 * back), runtime.offline (reason stale, by the sweeper), action.finished.
 */
export async function startLivenessConsumers(deps: LivenessDeps): Promise<RunningConsumer[]> {
  const { log } = deps;
  const { bus } = deps;
  return Promise.all([
    startConsumer({
      bus,
      log,
      durable: "liveness-runtime-registered",
      type: "runtime.registered",
      handler: async (event) => {
        if (event.runtime) await learnRegistered(deps, event.runtime, occurredAt(event));
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "liveness-daemon-registered",
      type: "daemon.registered",
      handler: async (event) => {
        for (const runtime of event.runtimes) await learnRegistered(deps, runtime, occurredAt(event));
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "liveness-runtime-deleted",
      type: "runtime.deleted",
      handler: async (event) => {
        await repo.forget(deps.pool, event.runtimeId);
        deps.state.forget(event.runtimeId);
        deps.broadcast.send("deleted", event.runtimeId);
        await deps.store.forget(event.runtimeId).catch(() => undefined);
      },
    }),
    startConsumer({
      bus,
      log,
      durable: "liveness-runtime-deregistered",
      type: "runtime.offline",
      handler: async (event) => {
        if (event.reason !== OfflineReason.OFFLINE_REASON_DEREGISTER) return;
        if (!(await repo.markOfflineQuietly(deps.pool, event.runtimeId, occurredAt(event)))) return;
        deps.state.markOffline(event.runtimeId, occurredAt(event).getTime());
        deps.broadcast.send("offline", event.runtimeId);
      },
    }),
  ]);
}

/** Learns a registered runtime; a status change reaches every replica's memory. */
async function learnRegistered(deps: LivenessDeps, runtime: Runtime, occurredAt: Date): Promise<void> {
  const changed = await deps.directory.learn(registrationOf(runtime, occurredAt));
  if (changed) deps.broadcast.send(changed, runtime.id);
}

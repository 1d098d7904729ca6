import { decodeEvent, isEventType, type EventType } from "@controlplane/events";
import type { TaskQueueDeps } from "./deps.js";

/** The events after which a runtime's cached registry row or liveness verdict may be wrong. */
const RUNTIME_EVENTS: readonly EventType[] = [
  "runtime.registered",
  "daemon.registered",
  "runtime.online",
  "runtime.offline",
  "runtime.merged",
  "runtime.deleted",
];

/**
 * Keeps the claim path's caches of runtimes (registry rows, liveness
 * verdicts) honest: every replica hears each runtime event over core NATS
 * and drops what it names, so those caches can live long without serving a
 * change late. At most once, like every hint: a missed event costs only
 * the cache's TTL. Returns the unsubscribe.
 */
export function dropChangedRuntimesOnEvents(deps: TaskQueueDeps): () => Promise<void> {
  const root = deps.bus.subjectRoot;
  const forget = (runtimeId: string) => {
    if (!runtimeId) return;
    deps.reads.runtimes.forget(runtimeId);
    deps.freshness.forget(runtimeId);
  };
  const subscriptions = RUNTIME_EVENTS.map((type) =>
    deps.bus.nc.subscribe(`${root}.${type}`, {
      callback: (_error, message) => {
        try {
          if (isEventType(type)) for (const id of runtimesNamed(type, message.data)) forget(id);
        } catch (error) {
          deps.log.debug({ err: error, subject: message.subject }, "runtime event for the claim caches not understood");
        }
      },
    }),
  );
  return async () => {
    for (const subscription of subscriptions) subscription.unsubscribe();
  };
}

/** The runtimes an event is about. */
function runtimesNamed(type: EventType, data: Uint8Array): string[] {
  switch (type) {
    case "runtime.registered":
      return [decodeEvent(type, data).runtime?.id ?? ""];
    case "daemon.registered":
      return decodeEvent(type, data).runtimes.map((r) => r.id);
    case "runtime.online":
    case "runtime.offline":
    case "runtime.deleted":
      return [decodeEvent(type, data).runtimeId];
    case "runtime.merged": {
      const event = decodeEvent(type, data);
      return [event.fromRuntimeId, event.toRuntimeId];
    }
    default:
      return [];
  }
}

import { randomUUID } from "node:crypto";
import { encodeEvent, EventMeta, subjectFor, type EventBody, type EventPayload, type EventType } from "@controlplane/events";
import type { TaskQueueDeps } from "./deps.js";

/**
 * Activity events (task.dispatched, task.started, task.waiting,
 * task.progress) are published straight to the stream, at most once, after
 * the change: they drive displays, and a lost one is replaced by the next.
 * Events other services act on (task.queued and every terminal transition)
 * go through the outbox instead.
 */
export function publishActivity<T extends EventType>(deps: TaskQueueDeps, type: T, body: EventBody<T>, workspaceId: string): void {
  const meta = EventMeta.fromPartial({ eventId: randomUUID(), occurredAt: new Date(), workspaceId });
  const bytes = encodeEvent(type, { ...body, meta } as EventPayload<T>);
  try {
    deps.bus.nc.publish(subjectFor(deps.bus.subjectRoot, type), bytes);
  } catch (error) {
    deps.log.debug({ err: error, type }, "activity event not published");
  }
}

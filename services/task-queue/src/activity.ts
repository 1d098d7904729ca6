import { randomUUID } from "node:crypto";
import { encodeEvent, type EventBody, EventMeta, type EventBus, type EventPayload, type EventType, subjectFor } from "@controlplane/events";
import type { Logger } from "@controlplane/log";

/**
 * Under a steady stream of claims and starts, activity events wait up to
 * this long so that one socket write carries several (each write to NATS
 * was a visible share of a task cycle's CPU); the first event after a quiet
 * spell goes out at once.
 */
export const ACTIVITY_WINDOW_MS = 20;

/**
 * Activity events (task.dispatched, task.started, task.waiting,
 * task.progress) are published straight to the stream, at most once, after
 * the change: they drive displays, and a lost one is replaced by the next.
 * Events other services act on (task.queued and every terminal transition)
 * go through the outbox instead.
 */
export class ActivityEvents {
  private queued: Array<{ subject: string; bytes: Uint8Array }> = [];
  private timer: NodeJS.Timeout | undefined;
  private lastFlushAt = 0;
  private closed = false;
  private readonly flushNow: () => void;

  constructor(
    private readonly bus: Pick<EventBus, "nc" | "subjectRoot">,
    private readonly log: Logger,
  ) {
    // Assigned, not declared as a field: tsx would name a field's closure on every instance.
    this.flushNow = () => this.flush();
  }

  publish<T extends EventType>(type: T, body: EventBody<T>, workspaceId: string): void {
    if (this.closed) return;
    const meta = EventMeta.fromPartial({ eventId: randomUUID(), occurredAt: new Date(), workspaceId });
    this.queued.push({ subject: subjectFor(this.bus.subjectRoot, type), bytes: encodeEvent(type, { ...body, meta } as EventPayload<T>) });
    if (this.timer) return;
    const wait = this.lastFlushAt + ACTIVITY_WINDOW_MS - Date.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(this.flushNow, wait);
  }

  /** Publishes what is queued, in order, in one turn: the NATS client writes it to its socket at once. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastFlushAt = Date.now();
    const queued = this.queued;
    this.queued = [];
    for (const { subject, bytes } of queued) {
      try {
        this.bus.nc.publish(subject, bytes);
      } catch (error) {
        this.log.debug({ err: error, subject }, "activity event not published");
      }
    }
  }

  /** Publishes what is still queued; later events are dropped (the connection is about to close). */
  close(): void {
    this.flush();
    this.closed = true;
  }
}

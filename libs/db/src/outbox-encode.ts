import { randomUUID } from "node:crypto";
import { encodeEvent, EventMeta, subjectFor, type EventBody, type EventPayload, type EventType } from "@controlplane/events";
import { activeTracer, context, SpanKind, trace, traceparentOf, type Span } from "@controlplane/tracing";
import { EventTooLargeError } from "./errors.js";

/**
 * Largest encoded event `writeMany` accepts. Half of NATS's default 1 MiB
 * max_payload: the relay adds headers, and a field that grows later (or a
 * server configured lower) must not turn a committed event into one that can
 * never be published. Producers keep events far smaller; this is a backstop.
 */
export const MAX_EVENT_BYTES = 512 * 1024;

export interface EventMetaInput {
  workspaceId: string;
  actorId?: string;
}

/** One event to record; the outbox fills in its meta. */
export type PendingEvent = { [T in EventType]: { type: T; body: EventBody<T>; meta: EventMetaInput } }[EventType];

/** Each event encoded with its meta; throws EventTooLargeError when one is over MAX_EVENT_BYTES. */
export function encodeEvents(events: readonly PendingEvent[]): Array<{ eventId: string; type: EventType; bytes: Buffer }> {
  const occurredAt = new Date();
  const rows = events.map(({ type, body, meta }) => {
    const eventId = randomUUID();
    const payload = {
      ...body,
      meta: EventMeta.fromPartial({ eventId, occurredAt, workspaceId: meta.workspaceId, actorId: meta.actorId }),
    } as EventPayload<typeof type>;
    return { eventId, type, bytes: Buffer.from(encodeEvent(type, payload)) };
  });
  for (const row of rows) assertEventSize(row.type, row.bytes.length);
  return rows;
}

/**
 * With tracing on, a PRODUCER span per event ("create task.completed"),
 * child of the active span; its context is what the row stores, so each
 * consumer's span is a child of the span that wrote its event.
 */
export function startCreateSpans(
  subjectRoot: string,
  rows: ReadonlyArray<{ eventId: string; type: EventType }>,
): Array<{ span: Span; traceparent: string | null }> | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  const parent = context.active();
  return rows.map(({ eventId, type }) => {
    const span = tracer.startSpan(
      `create ${type}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          "messaging.system": "nats",
          "messaging.operation.type": "create",
          "messaging.destination.name": subjectFor(subjectRoot, type),
          "messaging.message.id": eventId,
        },
      },
      parent,
    );
    return { span, traceparent: traceparentOf(trace.setSpan(parent, span)) };
  });
}

/** Throws EventTooLargeError when an encoded event is over MAX_EVENT_BYTES. */
function assertEventSize(type: string, size: number): void {
  if (size > MAX_EVENT_BYTES) throw new EventTooLargeError(type, size, MAX_EVENT_BYTES);
}

import { headers, type MsgHdrs } from "@nats-io/transport-node";
import {
  activeTracer,
  context,
  extractContext,
  injectContext,
  markFailed,
  SpanKind,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from "@controlplane/tracing";

/** The W3C header an event (or a signal) carries its producer's trace context in. */
export const TRACEPARENT_HEADER = "traceparent";

const headerGetter: TextMapGetter<MsgHdrs | undefined> = {
  get: (carrier, key) => (carrier?.has(key) ? carrier.get(key) : undefined),
  keys: (carrier) => carrier?.keys() ?? [],
};
const headerSetter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** Bytes a `traceparent` header adds to a message's header block (0 without one). */
export function traceHeaderBytes(traceparent: string | null | undefined): number {
  return traceparent ? Buffer.byteLength(`${TRACEPARENT_HEADER}: ${traceparent}\r\n`) : 0;
}

/** Headers carrying a stored `traceparent` as is (an outbox row's, at relay time). */
export function traceparentHeaders(traceparent: string): MsgHdrs {
  const carrier = headers();
  carrier.set(TRACEPARENT_HEADER, traceparent);
  return carrier;
}

/**
 * Headers for a core NATS signal (a wake-up) carrying the active trace
 * context, or undefined when there is none to carry (tracing off).
 */
export function traceHeaders(ctx: Context = context.active()): MsgHdrs | undefined {
  if (!activeTracer() || !trace.getSpanContext(ctx)) return undefined;
  const carrier = headers();
  injectContext(carrier, headerSetter, ctx);
  return carrier;
}

/**
 * The CONSUMER span around one event's handler: a child of the context the
 * producer stored with the event (its `create` span), or a new trace when
 * the message carries none. Undefined when tracing is off.
 */
export function startConsumerSpan(options: {
  type: string;
  subject: string;
  durable: string;
  eventId: string | undefined;
  headers: MsgHdrs | undefined;
}): { span: Span; context: Context } | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  const parent = extractContext(options.headers, headerGetter);
  const span = tracer.startSpan(
    `process ${options.type}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": options.subject,
        "messaging.consumer.group.name": options.durable,
        ...(options.eventId ? { "messaging.message.id": options.eventId } : {}),
      },
    },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends a consumer span: `failure` when the handler threw (the event is redelivered). */
export function endConsumerSpan(span: Span | undefined, outcome: "ack" | "retry" | "failed", failure?: unknown): void {
  if (!span) return;
  span.setAttribute("messaging.outcome", outcome);
  if (outcome === "failed") markFailed(span, failure instanceof Error ? failure.name : "handler failed", failure);
  span.end();
}

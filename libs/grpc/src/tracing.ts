import { status, type Metadata } from "@grpc/grpc-js";
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

/** W3C trace context in gRPC metadata: `traceparent` (and `tracestate`), as text keys. */
const metadataSetter: TextMapSetter<Metadata> = {
  set: (metadata, key, value) => metadata.set(key, value),
};
const metadataGetter: TextMapGetter<Metadata> = {
  get: (metadata, key) => {
    const [value] = metadata.get(key);
    return typeof value === "string" ? value : undefined;
  },
  keys: (metadata) => Object.keys(metadata.getMap()),
};

/**
 * Codes that mean the server failed (OpenTelemetry's rule for gRPC server
 * spans); the others are the caller's problem and leave the span unset.
 */
const SERVER_FAULTS = new Set([status.UNKNOWN, status.DEADLINE_EXCEEDED, status.UNIMPLEMENTED, status.INTERNAL, status.UNAVAILABLE, status.DATA_LOSS]);

/**
 * The CLIENT span of one outbound call (retries included), child of the
 * active span, its context injected into `metadata`. Undefined when tracing
 * is off: nothing is injected, nothing is allocated.
 */
export function startClientSpan(path: string, service: string, method: string, requestId: string, metadata: Metadata): Span | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  const parent = context.active();
  const span = tracer.startSpan(
    path.slice(1),
    {
      kind: SpanKind.CLIENT,
      attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, request_id: requestId },
    },
    parent,
  );
  injectContext(metadata, metadataSetter, trace.setSpan(parent, span));
  return span;
}

/** Ends a client span with the call's final code; any code but OK marks it failed. */
export function endClientSpan(span: Span | undefined, code: status): void {
  if (!span) return;
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== status.OK) markFailed(span, status[code] ?? String(code));
  span.end();
}

/**
 * The SERVER span of one inbound call, child of the trace context its
 * metadata carries (a new trace when none), and the context to run the
 * handler in. Undefined when tracing is off.
 */
export function startServerSpan(
  path: string,
  service: string,
  method: string,
  requestId: string,
  metadata: Metadata,
): { span: Span; context: Context } | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  const parent = extractContext(metadata, metadataGetter);
  const span = tracer.startSpan(
    path.slice(1),
    {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, request_id: requestId },
    },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

export function endServerSpan(span: Span | undefined, code: status, error?: unknown): void {
  if (!span) return;
  span.setAttribute("rpc.grpc.status_code", code);
  if (SERVER_FAULTS.has(code)) markFailed(span, status[code] ?? String(code), error);
  span.end();
}

import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";

/**
 * The tracer of the kit's own spans while tracing is on in this process, or
 * undefined. Every instrumented point asks this first and does nothing else
 * when it is undefined: with no exporter configured, tracing costs one
 * variable read per call.
 */
let current: Tracer | undefined;

/** Set by startTracing, cleared by its stop (not exported from the package). */
export function setTracer(tracer: Tracer | undefined): void {
  current = tracer;
}

/** The kit's tracer, or undefined when tracing is off. */
export function activeTracer(): Tracer | undefined {
  return current;
}

export function tracingEnabled(): boolean {
  return current !== undefined;
}

/** Runs `fn` with `span` as the active span (so the spans `fn` starts are its children); just `fn` without one. */
export function withSpan<T>(span: Span | undefined, fn: () => T, parent: Context = context.active()): T {
  return span ? context.with(trace.setSpan(parent, span), fn) : fn();
}

/**
 * Runs `fn` outside any trace: work started on behalf of many callers (a
 * batch) must not be filed under the first caller's trace.
 */
export function withoutTrace<T>(fn: () => T): T {
  return current ? context.with(ROOT_CONTEXT, fn) : fn();
}

/** True when `ctx` carries a span to be a child of (a valid one, recorded or not). */
export function hasParent(ctx: Context = context.active()): boolean {
  const parent = trace.getSpanContext(ctx);
  return parent !== undefined && trace.isSpanContextValid(parent);
}

/** Writes `ctx`'s trace context (the W3C `traceparent`) into a carrier. */
export function injectContext<C>(carrier: C, setter: TextMapSetter<C>, ctx: Context = context.active()): void {
  propagation.inject(ctx, carrier, setter);
}

/**
 * The trace context a carrier brings, on top of the root context: what was
 * active where this code runs (a connection's, a loop's) never leaks in.
 */
export function extractContext<C>(carrier: C, getter: TextMapGetter<C>): Context {
  return propagation.extract(ROOT_CONTEXT, carrier, getter);
}

/** The `traceparent` value for `ctx`, or null when it has no valid span (or tracing is off). */
export function traceparentOf(ctx: Context = context.active()): string | null {
  if (!current || !hasParent(ctx)) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent ?? null;
}

/** The context a stored `traceparent` names (the root context when there is none). */
export function contextFromTraceparent(traceparent: string | null | undefined): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/**
 * Marks a span failed. `detail` is the short, safe description (a status
 * name, an error class); the exception itself is recorded only when asked,
 * since some messages carry data (SQL errors quote values).
 */
export function markFailed(span: Span, detail: string, exception?: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: detail });
  if (exception instanceof Error) span.recordException(exception);
}

export {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";

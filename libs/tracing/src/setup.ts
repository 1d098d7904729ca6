import {
  context,
  diag,
  DiagLogLevel,
  INVALID_SPAN_CONTEXT,
  propagation,
  trace,
  type Context,
  type Span,
  type SpanOptions,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { redactUrl, type Logger } from "@controlplane/log";
import { loadTracingEnv, tracesUrl, type TracingEnv } from "./config.js";
import { setTracer, tracingEnabled } from "./spans.js";

/** Instrumentation scope of every span the kit makes. */
export const TRACER_NAME = "@controlplane/tracing";

export interface TracingOptions {
  /** The process's own name (`task-queue`, `gateway`, `controlplane` for all-in-one); OTEL_SERVICE_NAME wins. */
  serviceName: string;
  /** Where the OTEL_* settings are read (default: process.env). */
  env?: Record<string, string | undefined>;
  /**
   * Export to this instead of OTLP, and trace whatever the env says (tests:
   * an InMemorySpanExporter). Spans are handed over as each ends, unless
   * `batch` is set.
   */
  exporter?: SpanExporter;
  batch?: boolean;
  /** Told once that tracing is on, and of the SDK's own warnings and errors (a collector that cannot be reached). */
  log?: Logger;
}

export interface Tracing {
  /** False when nothing was configured: no provider, no context manager, no cost. */
  readonly enabled: boolean;
  /** Exports what is buffered, then turns tracing off for the process. */
  stop(): Promise<void>;
}

const OFF: Tracing = { enabled: false, stop: async () => undefined };

/**
 * Sets up tracing for this process, once: a tracer provider (the service's
 * name as `service.name`), the W3C trace-context propagator and an
 * AsyncLocalStorage context manager, exporting over OTLP/HTTP (protobuf).
 * Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set, or an
 * exporter is given; off, it registers nothing, so the instrumented points
 * cost one variable read. Start it before the pools open (main.ts does):
 * a pool decides at creation whether it traces its queries.
 */
export function startTracing(options: TracingOptions): Tracing {
  const config = loadTracingEnv(options.env);
  const url = tracesUrl(config);
  const wanted = !config.OTEL_SDK_DISABLED && config.OTEL_TRACES_EXPORTER !== "none" && (options.exporter || url);
  if (!wanted) return OFF;
  if (tracingEnabled()) throw new Error("tracing is already started in this process (one provider per process)");

  const serviceName = config.OTEL_SERVICE_NAME ?? options.serviceName;
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ "service.name": serviceName }));
  const exporter = options.exporter ?? new OTLPTraceExporter({ url });
  const processor = options.exporter && !options.batch ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new BasicTracerProvider({ resource, sampler: samplerOf(config), spanProcessors: [processor] });

  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new OwnSpansOnly(provider));
  setTracer(provider.getTracer(TRACER_NAME));
  if (options.log) {
    const log = options.log.child({ component: "tracing" });
    diag.setLogger(
      {
        error: (message, ...args) => log.warn({ detail: args }, message),
        warn: (message, ...args) => log.warn({ detail: args }, message),
        info: () => undefined,
        debug: () => undefined,
        verbose: () => undefined,
      },
      DiagLogLevel.WARN,
    );
    log.info({ service_name: serviceName, export_to: url ? redactUrl(url) : "in-process exporter" }, "tracing on");
  }

  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    stop: () =>
      (stopped ??= (async () => {
        setTracer(undefined);
        try {
          await provider.shutdown();
        } finally {
          trace.disable();
          propagation.disable();
          context.disable();
          diag.disable();
        }
      })()),
  };
}

/** OTEL_TRACES_SAMPLER as the specification reads it (default parentbased_always_on). */
function samplerOf(config: TracingEnv): Sampler {
  const ratio = config.OTEL_TRACES_SAMPLER_ARG ?? 1;
  switch (config.OTEL_TRACES_SAMPLER ?? "parentbased_always_on") {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * The global provider: spans come from the kit alone. Libraries that call
 * the OpenTelemetry API themselves (slonik wraps every interceptor step and
 * row in a span of its own) get a tracer that records nothing and does not
 * even switch context, so a trace reads in our terms (RPCs, statements,
 * events) and their spans' children hang off ours.
 */
class OwnSpansOnly implements TracerProvider {
  constructor(private readonly provider: BasicTracerProvider) {}

  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): Tracer {
    return name === TRACER_NAME ? this.provider.getTracer(name, version, options) : SILENT;
  }
}

/**
 * A tracer whose spans are the parent's context, not recorded. Its "active"
 * spans run the callback as is: the active span stays the real parent, so
 * anything the callback starts is a child of it.
 */
function silentSpan(_name?: string, _options?: SpanOptions, ctx: Context = context.active()): Span {
  return trace.wrapSpanContext(trace.getSpanContext(ctx) ?? INVALID_SPAN_CONTEXT);
}
const SILENT = {
  startSpan: silentSpan,
  // (name, fn) | (name, options, fn) | (name, options, context, fn)
  startActiveSpan(_name: string, ...rest: unknown[]): unknown {
    const fn = rest[rest.length - 1] as (span: Span) => unknown;
    const ctx = rest.length >= 3 ? (rest[1] as Context) : context.active();
    return fn(silentSpan(undefined, undefined, ctx));
  },
} as Tracer;

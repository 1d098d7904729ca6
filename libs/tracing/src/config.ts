import { flag, loadConfig, z } from "@controlplane/config";

/** An unset or empty variable reads as absent (an empty value in a manifest means "not set"). */
const optional = <T extends z.ZodTypeAny>(schema: T) => z.preprocess((value) => (value === "" ? undefined : value), schema.optional());

const httpUrl = z.string().refine((value) => {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL");

/**
 * The standard OpenTelemetry variables this kit reads itself; a bad value
 * stops the process naming the variable (the SDK alone would log and go on).
 * The rest of the standard set (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
 * _COMPRESSION, OTEL_BSP_*, OTEL_SPAN_*_LIMIT, OTEL_RESOURCE_ATTRIBUTES) is
 * read by the SDK and the exporter as documented there.
 */
export const tracingEnv = {
  /** `true` turns tracing off whatever else is set. */
  OTEL_SDK_DISABLED: flag(false),
  /** `otlp` (the only exporter shipped) or `none`. */
  OTEL_TRACES_EXPORTER: optional(z.enum(["otlp", "none"])),
  /** Base URL of an OTLP/HTTP collector; traces go to `<url>/v1/traces`. Unset: no export, and no tracing cost. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(httpUrl),
  /** Full URL for traces, used as is; wins over OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optional(httpUrl),
  OTEL_EXPORTER_OTLP_PROTOCOL: optional(z.literal("http/protobuf", { errorMap: () => ({ message: "only http/protobuf is supported" }) })),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: optional(z.literal("http/protobuf", { errorMap: () => ({ message: "only http/protobuf is supported" }) })),
  /** Overrides the name the process gives itself (the service's, or `controlplane` for all-in-one). */
  OTEL_SERVICE_NAME: optional(z.string().min(1).max(255)),
  OTEL_TRACES_SAMPLER: optional(
    z.enum(["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"]),
  ),
  /** Ratio for the *traceidratio samplers, 0 to 1. */
  OTEL_TRACES_SAMPLER_ARG: optional(z.coerce.number().min(0).max(1)),
};

export type TracingEnv = z.infer<z.ZodObject<typeof tracingEnv>>;

export function loadTracingEnv(env: Record<string, string | undefined> = process.env): TracingEnv {
  return loadConfig(z.object(tracingEnv), env);
}

/** Where OTLP spans go, or undefined when no endpoint is configured (tracing off). */
export function tracesUrl(config: TracingEnv): string | undefined {
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT) return `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, "")}/v1/traces`;
  return undefined;
}

import { z } from "zod";

/** Raised when the environment does not satisfy a service's schema. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses `env` with a zod object whose keys are environment variable names.
 * Fails fast with one line per bad variable, naming it, so an operator sees
 * exactly what to fix.
 */
export function loadConfig<S extends z.ZodRawShape>(schema: z.ZodObject<S>, env: Record<string, string | undefined> = process.env): z.infer<z.ZodObject<S>> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const variable = issue.path.join(".") || "(environment)";
    return `${variable}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration: ${lines.join("; ")}`);
}

/**
 * For a program's entry point: the configuration `load` returns, or, when it
 * throws a ConfigError, that one line on stderr and exit status 1. Runs
 * first, before the logger exists: the logger's level is a setting too.
 */
export function exitOnConfigError<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

/** A TCP port; 0 asks the OS for a free one (tests). */
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** A positive duration in milliseconds. */
export const millis = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A count that must be at least one. */
export const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A URL with one of the given schemes. */
export const url = (schemes: string[], fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine(
      (value) => {
        try {
          return schemes.includes(new URL(value).protocol.replace(/:$/, ""));
        } catch {
          return false;
        }
      },
      `must be a ${schemes.map((s) => `${s}://`).join(" or ")} URL`,
    );

/**
 * host:port of a gRPC peer, or dns:///host:port to balance over every
 * address the name resolves to (e.g. a headless Kubernetes Service).
 */
export const address = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((value) => /^(dns:\/\/\/)?[^\s:/]+:\d+$/.test(value), "must be host:port or dns:///host:port");

/** "true"/"false" (also 1/0, yes/no) from the environment. */
export const flag = (fallback: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"])
    .default(fallback ? "true" : "false")
    .transform((value) => value === "true" || value === "1" || value === "yes");

/** pino's levels; a program's logger takes its level from this setting, never from the raw environment. */
export const logLevel = () => z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info");

/** The connection settings every service with storage and events reads. */
export const commonEnv = {
  DATABASE_URL: url(["postgres", "postgresql"], "postgres://postgres@127.0.0.1:5432/controlplane"),
  NATS_URL: url(["nats", "tls"], "nats://127.0.0.1:4222"),
  LOG_LEVEL: logLevel(),
  /** JetStream stream holding every control-plane event. */
  EVENTS_STREAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and - only")
    .default("CONTROLPLANE"),
  /** First token of every event subject: <root>.<domain>.<event>. */
  EVENTS_SUBJECT_ROOT: z
    .string()
    .regex(/^[a-z0-9_-]+$/, "lower-case letters, digits, _ and - only")
    .default("controlplane"),
  DB_POOL_SIZE: positiveInt(10),
  /**
   * Statements a service runs again and again are prepared once per
   * connection (libs/db prepared.ts). False behind a pooler that does not
   * keep named statements across transactions.
   */
  DB_PREPARED_STATEMENTS: flag(true),
  /**
   * Apply this service's migrations at start. Deployments that run them
   * beforehand (the Helm chart's migrations Job) set false, so pods never
   * run DDL.
   */
  MIGRATE_ON_START: flag(true),
};

/**
 * The bounds of a service's retention job (task queue, liveness): how often
 * it runs (on one replica at a time), rows per DELETE statement, statements
 * per table per pass. 100 x 1,000 rows a table every 10 minutes is over 14
 * million rows a day, far beyond what either service writes, while one
 * statement stays short enough never to hold up the hot paths.
 */
export const retentionEnv = {
  RETENTION_INTERVAL_MS: millis(10 * 60_000),
  RETENTION_BATCH_SIZE: positiveInt(1_000),
  RETENTION_MAX_BATCHES: positiveInt(100),
};

export { z };
export * from "./timing.js";
export * from "./limits.js";

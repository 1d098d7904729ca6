import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Paths pino replaces with "[redacted]" wherever they appear in a log line.
 * Tokens must never reach a log: log `tokenPrefix(token)` when one matters.
 */
const REDACT = [
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "*.*.headers.authorization",
  "password",
  "*.password",
  "databaseUrl",
];

/**
 * A JSON logger tagged with the service's name. `level` comes from the
 * program's validated configuration (LOG_LEVEL), never read here: a bad
 * value must stop the program with the config's message, not a throw from pino.
 */
export function createLogger(service: string, level = "info", destination?: pino.DestinationStream): Logger {
  const options = {
    name: service,
    level,
    base: { service },
    redact: { paths: REDACT, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The first characters of a token: enough to recognise it, useless to replay it. */
export function tokenPrefix(token: string): string {
  return token.length <= 8 ? "****" : `${token.slice(0, 8)}…`;
}

/** A URL with its password replaced, safe for logs and error messages. */
export function redactUrl(raw: string): string {
  try {
    const parsed = new URL(raw);
    if (parsed.password) parsed.password = "****";
    return parsed.toString();
  } catch {
    return raw;
  }
}

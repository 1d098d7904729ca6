import { homedir } from "node:os";
import { basename, dirname } from "node:path";

/**
 * Secrets are replaced before a message is stored or published, in this order
 * (earlier, more specific patterns win over the generic ones below them).
 */
const PATTERNS: Array<[RegExp, string]> = [
  [/AKIA[0-9A-Z]{16}/g, "[REDACTED AWS KEY]"],
  [/((?:aws_)?secret_access_key\s*[=:]\s*["']?)[A-Za-z0-9/+=]{40}/gi, "$1[REDACTED AWS SECRET]"],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, "[REDACTED PRIVATE KEY]"],
  [/\bgh[pousr]_[A-Za-z0-9]{36,}/g, "[REDACTED GITHUB TOKEN]"],
  [/\bsk-[A-Za-z0-9_-]{20,}/g, "[REDACTED API KEY]"],
  [/\bxox[bporas]-[A-Za-z0-9-]+/g, "[REDACTED SLACK TOKEN]"],
  [/\bglpat-[A-Za-z0-9_-]{10,}/g, "[REDACTED GITLAB TOKEN]"],
  [/\bey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, "[REDACTED JWT]"],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/gi, "Bearer [REDACTED]"],
  [/\b((?:postgres(?:ql)?|mysql|mongodb(?:\+srv)?|rediss?|amqps?):\/\/)[^\s:@/]+:[^\s@/]+@/gi, "$1[REDACTED CONNECTION STRING]@"],
  // A value already partly redacted above (e.g. a connection string) is taken whole.
  [
    /\b((?:[A-Z0-9]+_)*(?:API_KEY|API_SECRET|SECRET_KEY|SECRET|ACCESS_TOKEN|AUTH_TOKEN|PRIVATE_KEY|DATABASE_URL|DB_PASSWORD|DB_URL|REDIS_URL|PASSWORD|TOKEN)\s*[=:]\s*)("[^"]*"|'[^']*'|\S*?\[REDACTED [A-Z ]+\]\S*|\S+)/gi,
    "$1[REDACTED CREDENTIAL]",
  ],
];

const home = homedir();
const homeMask = home && basename(home) ? `${dirname(home).replace(/\/$/, "")}/****` : null;

export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  if (homeMask && home.length > 1) out = out.split(home).join(homeMask);
  return out;
}

/** Redacts the top-level string values of a JSON object; nested values pass through. */
export function redactInput(input: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).map(([key, value]) => [key, typeof value === "string" ? redact(value) : value]));
}

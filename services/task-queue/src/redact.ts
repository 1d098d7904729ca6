import { homedir, userInfo } from "node:os";

/*
 * The original's redaction, pattern for pattern and in its order (CONTRACT
 * §4.7). Each pattern replaces its whole match: `API_KEY=abc` becomes
 * `[REDACTED CREDENTIAL]`, and a connection string loses its scheme and its
 * credentials together (`postgres://u:p@db/x` → `[REDACTED CONNECTION STRING]@db/x`).
 *
 * The original's patterns are Go (RE2) expressions; these say the same in
 * JavaScript's dialect:
 * - RE2's `\s` is ASCII only (tab, newline, form feed, carriage return,
 *   space): spelled out as WS, and `\S` as its complement.
 * - RE2's `(?i)` folds case as Unicode simple case folding does (`s` also
 *   matches U+017F, `k` also U+212A): the `iu` flags do the same.
 * - RE2's `\b` is an ASCII word boundary, even under `(?i)`; JavaScript's
 *   `\b` under `iu` would count U+017F and U+212A as word characters, so the
 *   one case-insensitive pattern with `\b` (Bearer) is written without `i`,
 *   its letters and its folded class spelled out.
 */
const WS = "[\\t\\n\\f\\r ]";
const NOT_WS = "[^\\t\\n\\f\\r ]";

const PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  // AWS access key ids.
  [/\bAKIA[0-9A-Z]{16}\b/g, "[REDACTED AWS KEY]"],
  // AWS secret access keys: 40 base64-ish characters after the name and = or :.
  [new RegExp(`(?:aws_secret_access_key|secret_?access_?key)${WS}*[=:]${WS}*[A-Za-z0-9/+=]{40}`, "giu"), "[REDACTED AWS SECRET]"],
  // PEM private keys (across lines, shortest block).
  [/-----BEGIN[A-Z\t\n\f\r ]*PRIVATE KEY-----[\s\S]*?-----END[A-Z\t\n\f\r ]*PRIVATE KEY-----/gu, "[REDACTED PRIVATE KEY]"],
  // GitHub tokens: 36 to 255 characters after the prefix, ending on a word boundary.
  [/\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36,255}\b/g, "[REDACTED GITHUB TOKEN]"],
  // OpenAI / Anthropic API keys.
  [/\bsk-[A-Za-z0-9_-]{20,}\b/g, "[REDACTED API KEY]"],
  // Slack tokens.
  [/\bxox[bporas]-[A-Za-z0-9-]{10,}\b/g, "[REDACTED SLACK TOKEN]"],
  // GitLab personal access tokens.
  [/\bglpat-[A-Za-z0-9_-]{20,}\b/g, "[REDACTED GITLAB TOKEN]"],
  // JWTs: three base64url segments.
  [/\bey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b/g, "[REDACTED JWT]"],
  // "Bearer <token>", any case: (?i)\bBearer\s+[A-Za-z0-9\-._~+/]+=*\b
  [new RegExp(`\\b[Bb][Ee][Aa][Rr][Ee][Rr]${WS}+[A-Za-z0-9\\-._~+/\\u017f\\u212a]+=*\\b`, "g"), "Bearer [REDACTED]"],
  // Connection strings with a password: scheme, user and password go together.
  [/(?:postgres|mysql|mongodb|redis|amqp)(?:ql)?:\/\/[^:\t\n\f\r ]+:[^@\t\n\f\r ]+@/giu, "[REDACTED CONNECTION STRING]@"],
  // NAME=value / NAME: value for common secret names, name included, anywhere in a word.
  [
    new RegExp(
      `(?:API_KEY|API_SECRET|SECRET_KEY|SECRET|ACCESS_TOKEN|AUTH_TOKEN|PRIVATE_KEY|DATABASE_URL|DB_PASSWORD|DB_URL|REDIS_URL|PASSWORD|TOKEN)${WS}*[=:]${WS}*${NOT_WS}+`,
      "giu",
    ),
    "[REDACTED CREDENTIAL]",
  ],
];

/**
 * The server's home directory with the user name masked, as the original
 * masked it: the first occurrence of the name in the path becomes `****`.
 * Nothing is masked when either is unknown.
 */
export function homeMask(home: string, username: string): readonly [string, string] | undefined {
  if (home === "" || username === "") return undefined;
  return [home, home.replace(username, () => "****")];
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "";
  }
}

const serverHome = homeMask(homedir(), currentUser());

/** Secrets replaced in the original's order, then this server's home directory masked. */
export function redact(text: string, home: readonly [string, string] | undefined = serverHome): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  if (home) out = out.split(home[0]).join(home[1]);
  return out;
}

/**
 * Redacts the top-level string values of a JSON object; nested values pass
 * through (the original's InputMap). The copy is a fresh map, as the
 * original's was: stored (jsonb) and answered with sorted keys either way.
 */
export function redactInput(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    Object.defineProperty(out, key, { value: typeof value === "string" ? redact(value) : value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

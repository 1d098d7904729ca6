/**
 * The failure_reason of a failure reported without one, from its error text:
 * ordered, case-insensitive substring checks, first hit wins.
 */
type Rule = [reason: string, matches: (text: string) => boolean];

const any =
  (...needles: string[]) =>
  (text: string) =>
    needles.some((n) => text.includes(n));
const all =
  (...needles: string[]) =>
  (text: string) =>
    needles.every((n) => text.includes(n));
const either =
  (...checks: Array<(text: string) => boolean>) =>
  (text: string) =>
    checks.some((check) => check(text));

const RULES: Rule[] = [
  [
    "agent_error.context_overflow",
    either(any("context length", "context_length_exceeded", "maximum context", "prompt is too long", "context size has been exceeded"), all("token", "limit")),
  ],
  [
    "agent_error.missing_config",
    either(any("missing environment variable", "no llm provider configured", "no provider configured"), all("missing", "api_key"), all("api key", "required")),
  ],
  [
    "agent_error.provider_auth_or_access",
    any(
      "401",
      "403",
      "unauthorized",
      "login required",
      "not logged in",
      "please login again",
      "refresh token",
      "invalid api key",
      "access token",
      "subscription access",
      "does not have access",
      "you may not have access",
    ),
  ],
  [
    "agent_error.provider_quota_limit",
    any(
      "402",
      "insufficient_balance",
      "balance is too low",
      "monthly usage limit",
      "usage limit",
      "you've hit your limit",
      "you\u2019ve hit your limit",
      "credits",
      "quota",
    ),
  ],
  ["agent_error.provider_capacity_or_rate_limit", any("429", "rate limit", "overloaded", "529", "no capacity available")],
  [
    "agent_error.provider_server_error",
    either(any("server had an error", "provider returned error", "internal error", "service unavailable", "bad gateway"), (text) =>
      /(^|[^0-9])5\d\d([^0-9]|$)/.test(text),
    ),
  ],
  [
    "agent_error.provider_network",
    any("stream disconnected", "error sending request", "unable to connect", "dial tcp", "connection refused", "connectionrefused", "dns", "i/o timeout"),
  ],
  ["agent_error.model_not_found_or_unavailable", either(all("model", "not found"), any("unknown model", "selected model", "http 404", "404 page not found"))],
  ["agent_error.empty_or_unparseable_output", any("returned empty output", "returned no parseable output")],
  ["agent_error.agent_timeout", any("timed out after")],
  ["agent_error.runtime_missing_executable", any("executable not found")],
  ["agent_error.runtime_version_unsupported", any("below the minimum supported version", "requires a newer version")],
  [
    "agent_error.process_failure",
    any("exit status", "signal", "panic", "sigsegv", "process exited", "pipe has been ended", "file already closed", "initialize failed"),
  ],
];

export function classifyFailure(error: string): string {
  const text = error.toLowerCase();
  if (text.trim() === "") return "agent_error.unknown";
  for (const [reason, matches] of RULES) if (matches(text)) return reason;
  return "agent_error.unknown";
}

import test from "ava";
import fc from "fast-check";
import { classifyFailure } from "../src/classify.js";

/** [error text a daemon reports, the failure_reason it is stored with]. */
const VECTORS: Array<[string, string]> = [
  // Context overflow: any of its phrases, or "token" and "limit" anywhere in the text.
  ["This model's maximum context length is 200000 tokens", "agent_error.context_overflow"],
  ["error: context_length_exceeded", "agent_error.context_overflow"],
  ["Prompt is too long", "agent_error.context_overflow"],
  ["the context size has been exceeded", "agent_error.context_overflow"],
  ["input exceeds the TOKEN LIMIT", "agent_error.context_overflow"],
  ["limit reached for tokens", "agent_error.context_overflow"],
  // Missing configuration.
  ["missing environment variable FOO", "agent_error.missing_config"],
  ["No LLM provider configured", "agent_error.missing_config"],
  ["no provider configured for claude", "agent_error.missing_config"],
  ["OPENAI_API_KEY is missing", "agent_error.missing_config"],
  ["an API key is required", "agent_error.missing_config"],
  // Provider authentication or access.
  ["HTTP 401", "agent_error.provider_auth_or_access"],
  ["got 403 from the provider", "agent_error.provider_auth_or_access"],
  ["Unauthorized", "agent_error.provider_auth_or_access"],
  ["Not logged in · Please run /login", "agent_error.provider_auth_or_access"],
  ["Invalid API key", "agent_error.provider_auth_or_access"],
  ["your refresh token expired", "agent_error.provider_auth_or_access"],
  ["you may not have access to this model", "agent_error.provider_auth_or_access"],
  // Quota.
  ["402 Payment Required", "agent_error.provider_quota_limit"],
  ["insufficient_balance", "agent_error.provider_quota_limit"],
  ["You've hit your limit", "agent_error.provider_quota_limit"],
  ["You\u2019ve hit your limit", "agent_error.provider_quota_limit"],
  ["out of credits", "agent_error.provider_quota_limit"],
  ["quota exceeded", "agent_error.provider_quota_limit"],
  // Capacity or rate limit.
  ["429 Too Many Requests", "agent_error.provider_capacity_or_rate_limit"],
  ["Rate limit reached", "agent_error.provider_capacity_or_rate_limit"],
  ["Overloaded", "agent_error.provider_capacity_or_rate_limit"],
  ["status 529", "agent_error.provider_capacity_or_rate_limit"],
  // Server errors: a phrase, or a 5xx standing alone as a number.
  ["The server had an error while processing your request", "agent_error.provider_server_error"],
  ["502 Bad Gateway", "agent_error.provider_server_error"],
  ["status=503", "agent_error.provider_server_error"],
  ["500", "agent_error.provider_server_error"],
  ["Service Unavailable", "agent_error.provider_server_error"],
  // Network.
  ["stream disconnected before completion", "agent_error.provider_network"],
  ["dial tcp 10.0.0.1:443: connect: connection refused", "agent_error.provider_network"],
  ["ConnectionRefused", "agent_error.provider_network"],
  ["i/o timeout", "agent_error.provider_network"],
  // Model.
  ["model claude-x not found", "agent_error.model_not_found_or_unavailable"],
  ["Unknown model", "agent_error.model_not_found_or_unavailable"],
  ["404 page not found", "agent_error.model_not_found_or_unavailable"],
  // Output, timeout, executable, version, process.
  ["claude returned empty output", "agent_error.empty_or_unparseable_output"],
  ["codex returned no parseable output", "agent_error.empty_or_unparseable_output"],
  ["agent timed out after 2h0m0s", "agent_error.agent_timeout"],
  ['exec: "claude": executable not found in $PATH', "agent_error.runtime_missing_executable"],
  ["claude 1.0.1 is below the minimum supported version 2.0.0", "agent_error.runtime_version_unsupported"],
  ["this feature requires a newer version of codex", "agent_error.runtime_version_unsupported"],
  ["exit status 1", "agent_error.process_failure"],
  ["killed by signal 9", "agent_error.process_failure"],
  ["panic: runtime error", "agent_error.process_failure"],
  ["SIGSEGV", "agent_error.process_failure"],
  ["The pipe has been ended.", "agent_error.process_failure"],
  ["initialize failed: handshake", "agent_error.process_failure"],
  // Nothing known.
  ["", "agent_error.unknown"],
  ["   \n\t", "agent_error.unknown"],
  ["something odd happened", "agent_error.unknown"],
];

for (const [error, reason] of VECTORS) {
  test(`${JSON.stringify(error)} is ${reason}`, (t) => {
    t.is(classifyFailure(error), reason);
  });
}

test("the first rule in order wins when several match", (t) => {
  // Both "401" (auth) and "token limit" (context overflow): overflow comes first.
  t.is(classifyFailure("401: token limit"), "agent_error.context_overflow");
  // "429" (rate limit) and "exit status" (process): rate limit comes first.
  t.is(classifyFailure("exit status 1: 429"), "agent_error.provider_capacity_or_rate_limit");
  // "403" (auth) and "quota" (quota): auth comes first.
  t.is(classifyFailure("quota 403"), "agent_error.provider_auth_or_access");
});

test("a 5xx inside a longer number is no server error", (t) => {
  t.is(classifyFailure("used 15000 units"), "agent_error.unknown");
  t.is(classifyFailure("id 5001"), "agent_error.unknown");
  t.is(classifyFailure("id 1500"), "agent_error.unknown");
  t.is(classifyFailure("code-500-x"), "agent_error.provider_server_error");
});

test("case never changes the reason", (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...VECTORS.map(([error]) => error)), fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }), (error, upper) => {
      const mixed = [...error].map((c, i) => (upper[i % upper.length] ? c.toUpperCase() : c.toLowerCase())).join("");
      return classifyFailure(mixed) === classifyFailure(error);
    }),
  );
  t.pass();
});

test("every text gets one of the known reasons", (t) => {
  const known = new Set(VECTORS.map(([, reason]) => reason));
  fc.assert(fc.property(fc.string({ maxLength: 80 }), (error) => known.has(classifyFailure(error))));
  t.pass();
});

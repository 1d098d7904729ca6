/**
 * The protocol families a custom runtime profile may speak: the single source
 * of truth for validation, the error message and anything that lists them.
 * The order is the contract's (it appears verbatim in the error message).
 */
export const PROTOCOL_FAMILIES = [
  "claude",
  "codebuddy",
  "codex",
  "copilot",
  "opencode",
  "openclaw",
  "hermes",
  "gemini",
  "pi",
  "cursor",
  "kimi",
  "kiro",
  "antigravity",
] as const;

export type ProtocolFamily = (typeof PROTOCOL_FAMILIES)[number];

export function isProtocolFamily(value: string): value is ProtocolFamily {
  return (PROTOCOL_FAMILIES as readonly string[]).includes(value);
}

export const UNSUPPORTED_PROTOCOL_FAMILY = `unsupported protocol_family: must be one of ${PROTOCOL_FAMILIES.join(", ")}`;

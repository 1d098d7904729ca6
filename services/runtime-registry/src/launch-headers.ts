/**
 * How each known provider's CLI is launched, as shown with a runtime. Built-in
 * providers are free text, so an unknown one simply has no header.
 */
const LAUNCH_HEADERS: Record<string, string> = {
  claude: "claude (stream-json)",
  codebuddy: "codebuddy (stream-json)",
  codex: "codex app-server",
  copilot: "copilot (json)",
  cursor: "cursor-agent (stream-json)",
  gemini: "gemini (stream-json)",
  hermes: "hermes acp",
  kimi: "kimi acp",
  kiro: "kiro-cli acp",
  openclaw: "openclaw agent (json)",
  opencode: "opencode run (json)",
  pi: "pi (json mode)",
  antigravity: "agy -p (print mode)",
};

export function launchHeader(provider: string): string {
  return (Object.hasOwn(LAUNCH_HEADERS, provider) ? LAUNCH_HEADERS[provider] : undefined) ?? "";
}

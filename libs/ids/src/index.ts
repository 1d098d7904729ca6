const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BARE = /^[0-9a-f]{32}$/i;

/**
 * Parses a UUID the way the daemon contract does: the 36-character hyphenated
 * form or 32 bare hex characters, either case. Returns the canonical
 * lower-case hyphenated form, or null when the input is not a UUID.
 */
export function parseUuid(input: string): string | null {
  if (HYPHENATED.test(input)) return input.toLowerCase();
  if (BARE.test(input)) {
    const h = input.toLowerCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  return null;
}

export function isUuid(input: string): boolean {
  return parseUuid(input) !== null;
}

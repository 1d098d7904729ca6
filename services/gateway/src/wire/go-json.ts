/**
 * JSON exactly as the original server's Go encoder writes it: `<`, `>`, `&`,
 * U+2028 and U+2029 escaped as \u00XX, and a trailing newline on every body.
 */
export function goJson(value: unknown): string {
  return goMarshal(value) + "\n";
}

/** Like goJson without the newline: json.Marshal, as the original wrote socket frames. */
export function goMarshal(value: unknown): string {
  return escapeHtml(JSON.stringify(value));
}

function escapeHtml(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (char) => "\\u" + char.charCodeAt(0).toString(16).padStart(4, "0"));
}

/**
 * Go writes stored raw JSON (json.RawMessage, e.g. workspace settings)
 * compacted, with key order as stored: strip insignificant whitespace
 * without re-parsing, so nothing is reordered.
 */
export function compactJson(raw: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i]!;
    if (inString) {
      out += char;
      if (char === "\\") out += raw[++i] ?? "";
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
      out += char;
    } else if (char !== " " && char !== "\n" && char !== "\r" && char !== "\t") {
      out += char;
    }
  }
  return escapeHtml(out);
}

/** Marks an already-encoded JSON fragment to be embedded as is by `goJsonWithRaw`. */
export class RawJson {
  constructor(readonly json: string) {}
}

/**
 * Like goJson, but values wrapped in RawJson are embedded verbatim
 * (compacted) instead of being encoded as strings.
 */
export function goJsonWithRaw(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof RawJson) {
      raws.push(compactJson(v.json));
      return `\u0000raw${raws.length - 1}\u0000`;
    }
    return v;
  });
  return escapeHtml(text).replace(/"\\u0000raw(\d+)\\u0000"/g, (_m, index: string) => raws[Number(index)]!) + "\n";
}

/** RFC 3339 to the second in UTC, as row timestamps are written: 2026-06-17T03:33:09Z. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function rfc3339OrNull(date: Date | undefined | null): string | null {
  return date ? rfc3339(date) : null;
}

/**
 * A Go time.Time as JSON (RFC 3339 with the fraction trimmed of zeros), for
 * the fields the original wrote from raw time values; the zero time when absent.
 */
export function rfc3339Nano(date: Date | undefined | null): string {
  if (!date) return "0001-01-01T00:00:00Z";
  return date.toISOString().replace(/\.(\d*?)0*Z$/, (_m, digits: string) => (digits ? `.${digits}Z` : "Z"));
}

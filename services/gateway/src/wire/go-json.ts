/**
 * JSON exactly as the original server's Go encoder writes it: `<`, `>`, `&`,
 * U+2028 and U+2029 escaped as \u00XX, and a trailing newline on every body.
 * Plain objects keep their key order (a Go struct's field order); GoMap
 * values are written with sorted keys (a Go map); RawJson is embedded as is.
 */
export function goJson(value: unknown): string {
  return `${goMarshal(value)}\n`;
}

/** Like goJson without the newline: json.Marshal, as the original wrote socket frames. */
export function goMarshal(value: unknown): string {
  const out: string[] = [];
  if (!write(value, out)) return "null";
  return escapeHtml(out.join(""));
}

function escapeHtml(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * A Go map (map[string]any, map[string]string): json.Marshal writes its keys
 * sorted by their UTF-8 bytes, whatever order they were added in. Only its
 * own keys are sorted: a plain object inside it stays a struct.
 */
export class GoMap {
  constructor(readonly entries: Readonly<Record<string, unknown>>) {}
}

/** Marks an answer (or part of one) the original built as a Go map. */
export function goMap(entries: Readonly<Record<string, unknown>>): GoMap {
  return new GoMap(entries);
}

/**
 * Stored JSON as the original handed it on after decoding it into Go's
 * `any` (json.Unmarshal into `var v any`, then json.Marshal): every object
 * becomes a map, so keys come out sorted at every depth; numbers are float64
 * (as in JavaScript), and a negative zero keeps its sign as Go writes it.
 * Throws on text that is not JSON.
 */
export function goAny(json: string): unknown {
  return asGoAny(JSON.parse(json) as unknown);
}

function asGoAny(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(asGoAny);
  if (typeof value === "object" && value !== null) {
    const entries: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) Object.defineProperty(entries, key, { value: asGoAny(item), enumerable: true });
    return new GoMap(entries);
  }
  if (Object.is(value, -0)) return new RawJson("-0");
  return value;
}

/** Go's map key order: byte order of the keys' UTF-8, i.e. code point order. */
export function compareGoKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** UTF-16 units ranked as the code points they start: surrogates above U+E000–U+FFFF. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/**
 * Appends the JSON of `value` to `out`, as JSON.stringify would (toJSON,
 * skipped undefined/function/symbol members, null for them in arrays and for
 * non-finite numbers), plus RawJson and GoMap. False when the value itself is
 * one JSON.stringify leaves out.
 */
function write(value: unknown, out: string[]): boolean {
  switch (typeof value) {
    case "string":
      out.push(JSON.stringify(value));
      return true;
    case "number":
      out.push(Number.isFinite(value) ? JSON.stringify(value) : "null");
      return true;
    case "boolean":
      out.push(value ? "true" : "false");
      return true;
    case "bigint":
      throw new TypeError("Do not know how to serialize a BigInt");
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) {
    out.push("null");
    return true;
  }
  if (value instanceof RawJson) {
    out.push(compactJson(value.json));
    return true;
  }
  if (value instanceof GoMap) {
    writeObject(value.entries, Object.keys(value.entries).sort(compareGoKeys), out);
    return true;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return write(toJSON.call(value, ""), out);
  if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, index) => {
      if (index > 0) out.push(",");
      if (!write(item, out)) out.push("null");
    });
    out.push("]");
    return true;
  }
  writeObject(value as Record<string, unknown>, Object.keys(value), out);
  return true;
}

function writeObject(object: Readonly<Record<string, unknown>>, keys: readonly string[], out: string[]): void {
  out.push("{");
  let first = true;
  for (const key of keys) {
    const mark = out.length;
    out.push(first ? "" : ",", JSON.stringify(key), ":");
    if (write(object[key], out)) first = false;
    else out.length = mark;
  }
  out.push("}");
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
    const char = raw.charAt(i);
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

/**
 * An already-encoded JSON fragment (a Go json.RawMessage: stored JSON handed
 * on undecoded), embedded compacted with its key order untouched.
 */
export class RawJson {
  constructor(readonly json: string) {}
}

/** goJson: kept for the routes that embed RawJson (goJson itself embeds it). */
export function goJsonWithRaw(value: unknown): string {
  return goJson(value);
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

import { InvalidArgumentError } from "@controlplane/grpc";
import { LIMITS } from "@controlplane/config";

/**
 * Text on its way into Postgres. Postgres `text` cannot hold U+0000, and
 * `jsonb` refuses both `\u0000` and a lone UTF-16 surrogate (`\ud800`), which
 * JSON.stringify writes for such characters. Free text loses nothing
 * meaningful without them, so they are repaired rather than refused: NUL is
 * removed, a lone surrogate becomes U+FFFD (what a UTF-8 encoder does anyway).
 */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const REPLACEMENT = "\uFFFD";

/** `text` with NUL removed and lone surrogates replaced: a string Postgres `text` and `jsonb` accept. */
export function storableText(text: string): string {
  // Removing NUL first: it may have separated the two halves of a pair.
  return text.replaceAll("\u0000", "").replace(LONE_SURROGATE, REPLACEMENT);
}

/** `storableText` for optional values: undefined and null pass through. */
export function storableOptional<T extends string | null | undefined>(text: T): T {
  return (typeof text === "string" ? storableText(text) : text) as T;
}

/** A parsed JSON value: what JSON.parse can produce. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The value with every string in it, object keys included, made storable.
 * Nesting deeper than `maxDepth` is refused (INVALID_ARGUMENT): Postgres's
 * JSON parser has its own stack limit, and this walk must not overflow ours.
 */
export function storableJson(value: Json, maxDepth: number = LIMITS.JSON_DEPTH): Json {
  return walk(value, maxDepth, 0);
}

function walk(value: Json, maxDepth: number, depth: number): Json {
  if (typeof value === "string") return storableText(value);
  if (value === null || typeof value !== "object") return value;
  if (depth >= maxDepth) throw new InvalidArgumentError("message input too deeply nested");
  if (Array.isArray(value)) return value.map((item) => walk(item, maxDepth, depth + 1));
  const out: { [key: string]: Json } = {};
  for (const [key, item] of Object.entries(value)) {
    // Two keys that differ only by NUL collapse into one; the later wins, as in JSON.parse.
    out[storableText(key)] = walk(item, maxDepth, depth + 1);
  }
  return out;
}

/**
 * At most `max` UTF-16 code units of `text`, never ending between the two
 * halves of a surrogate pair (the cut moves one unit earlier instead).
 */
export function prefixUtf16(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return "";
  const last = text.charCodeAt(max - 1);
  const splitsPair = last >= 0xd800 && last <= 0xdbff;
  return text.slice(0, splitsPair ? max - 1 : max);
}

/** Refuses `text` longer than `max` UTF-16 code units: INVALID_ARGUMENT "<field> too long". */
export function requireLength(field: string, text: string | null | undefined, max: number): void {
  if (text && text.length > max) throw new InvalidArgumentError(`${field} too long`);
}

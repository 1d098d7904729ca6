import { z } from "zod";
import { INT32_MAX, INT32_MIN, LIMITS } from "@controlplane/config";
import { HttpError } from "./errors.js";

export const INVALID_BODY = "invalid request body";

/**
 * The fields of a request body, compiled once (at module load, not per
 * request: building zod schemas is the expensive part). Unknown fields pass.
 */
export function bodySchema<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape).passthrough();
}

/**
 * Decodes a request body the way the original server's JSON decoder did:
 * only the first JSON value is read (trailing bytes are ignored), an empty
 * body is an error, `null` decodes to an empty object, unknown fields are
 * ignored and a value of the wrong type is an error (400 "invalid request
 * body"). Beyond the original, every field is bounded (libs/config's LIMITS):
 * a value past its bound answers 400 naming the field and the bound, and
 * lone UTF-16 surrogates become U+FFFD as Go's decoder makes them.
 */
export function decodeBody<T extends z.ZodTypeAny>(raw: unknown, schema: T): z.infer<T> {
  const text = typeof raw === "string" ? raw : Buffer.isBuffer(raw) ? raw.toString("utf8") : "";
  const value = parseFirstValue(text);
  if (value === undefined) throw new HttpError(400, INVALID_BODY);
  const result = schema.safeParse(value === null ? {} : ESCAPED_SURROGATE.test(text) ? wellFormed(value) : value);
  if (!result.success) throw new HttpError(400, describeIssue(result.error.issues[0]));
  return result.data;
}

/** A `\uD800`–`\uDFFF` escape: only then can the parsed value hold a lone surrogate. */
export const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

/** The value with every string and key well-formed UTF-16 (lone surrogates -> U+FFFD). */
export function wellFormed(value: unknown): unknown {
  if (typeof value === "string") return value.toWellFormed();
  if (Array.isArray(value)) return value.map(wellFormed);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key.toWellFormed(), wellFormed(inner)]));
  }
  return value;
}

/** Type errors keep the contract's text; our bounds say which field and which bound. */
function describeIssue(issue: z.ZodIssue | undefined): string {
  if (!issue) return INVALID_BODY;
  const field = issue.path.filter((part) => typeof part === "string").join(".") || "body";
  switch (issue.code) {
    case "too_big":
      if (issue.type === "array") return `${field}: too many entries (at most ${issue.maximum})`;
      if (issue.type === "string") return `${field}: too long (at most ${issue.maximum} characters)`;
      return `${field}: out of range`;
    case "too_small":
      return issue.type === "number" || issue.type === "bigint" ? `${field}: out of range` : INVALID_BODY;
    case "custom":
      return `${field}: ${issue.message}`;
    default:
      return INVALID_BODY;
  }
}

const NUL = "\u0000";
const refuseNul = (value: string, ctx: z.RefinementCtx) => {
  if (value.includes(NUL)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: "contains a NUL character" });
};
/** Removes U+0000: nothing in free text needs it, and Postgres text cannot store it. */
export const stripNul = (value: string) => (value.includes(NUL) ? value.replaceAll(NUL, "") : value);

/**
 * A short string (an id, name, kind, version, status), at most `max`
 * characters; a NUL in it is refused. Null and absent both read as undefined.
 */
export const str = (max: number = LIMITS.NAME_CHARS) =>
  z
    .string()
    .max(max)
    .superRefine(refuseNul)
    .nullish()
    .transform((v) => v ?? undefined);

/** A path, URL or session id. */
export const path = () => str(LIMITS.PATH_CHARS);

/** Free text (output, error, content), at most `max` characters, NUL removed. */
export const text = (max: number) =>
  z
    .string()
    .max(max)
    .nullish()
    .transform((v) => (v == null ? undefined : stripNul(v)));

export const bool = () =>
  z
    .boolean()
    .nullish()
    .transform((v) => v ?? undefined);

/** A JSON integer within protobuf int32 (steps, seq). */
export const int32 = () =>
  z
    .number()
    .int()
    .min(INT32_MIN)
    .max(INT32_MAX)
    .nullish()
    .transform((v) => v ?? undefined);

/** A JSON integer carried exactly (|n| < 2^53): token counts. */
export const int64 = () =>
  z
    .number()
    .int()
    .min(Number.MIN_SAFE_INTEGER)
    .max(Number.MAX_SAFE_INTEGER)
    .nullish()
    .transform((v) => v ?? undefined);

/** A string array of at most `maxItems` short strings; a null element decodes to "" as Go does. */
export const strArray = (maxItems: number, maxChars: number = LIMITS.NAME_CHARS) =>
  z
    .array(
      z
        .string()
        .max(maxChars)
        .superRefine(refuseNul)
        .nullable()
        .transform((v) => v ?? ""),
    )
    .max(maxItems)
    .nullish()
    .transform((v) => v ?? undefined);

/**
 * A JSON object kept as data (a message's input, a skill bundle): NUL
 * removed from its keys and strings (Postgres jsonb cannot hold U+0000), at
 * most `maxChars` once serialized.
 */
export const jsonObject = (maxChars: number = LIMITS.JSON_OBJECT_CHARS) =>
  z
    .record(z.unknown())
    .nullish()
    .transform((v, ctx) => {
      if (v == null) return undefined;
      const clean = withoutNul(v) as Record<string, unknown>;
      if (JSON.stringify(clean).length > maxChars) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `too large (at most ${maxChars} characters as JSON)` });
        return z.NEVER;
      }
      return clean;
    });

/** A JSON array kept as data (a model or skill list), bounded in entries and serialized size. */
export const jsonArray = (maxItems: number = LIMITS.RESULT_LIST_ENTRIES, maxChars: number = LIMITS.JSON_OBJECT_CHARS) =>
  z
    .array(z.unknown())
    .max(maxItems)
    .nullish()
    .transform((v, ctx) => {
      if (v == null) return undefined;
      const clean = withoutNul(v) as unknown[];
      if (JSON.stringify(clean).length > maxChars) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `too large (at most ${maxChars} characters as JSON)` });
        return z.NEVER;
      }
      return clean;
    });

/** The value with U+0000 removed from every string and key (Postgres jsonb cannot hold it). */
export function withoutNul(value: unknown): unknown {
  if (typeof value === "string") return stripNul(value);
  if (Array.isArray(value)) return value.map(withoutNul);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [stripNul(key), withoutNul(inner)]));
  }
  return value;
}

/** Returns the first JSON value of `text`, or undefined when there is none or it is malformed. */
export function parseFirstValue(text: string): unknown {
  const start = skipSpace(text, 0);
  if (start >= text.length) return undefined;
  const end = valueEnd(text, start);
  if (end < 0) return undefined;
  try {
    return JSON.parse(text.slice(start, end));
  } catch {
    return undefined;
  }
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && " \t\r\n".includes(text.charAt(i))) i++;
  return i;
}

/** End offset of the value starting at `start` (exclusive); -1 if unterminated or nested too deep. */
function valueEnd(text: string, start: number): number {
  const first = text.charAt(start);
  if (first === "{" || first === "[") {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i++) {
      const char = text.charAt(i);
      if (inString) {
        if (char === "\\") i++;
        else if (char === '"') inString = false;
      } else if (char === '"') inString = true;
      else if (char === "{" || char === "[") {
        // Deeper than any real body: refused here, before a recursive parser or validator meets it.
        if (++depth > LIMITS.JSON_DEPTH) return -1;
      } else if (char === "}" || char === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return -1;
  }
  if (first === '"') {
    for (let i = start + 1; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return i + 1;
    }
    return -1;
  }
  let i = start;
  while (i < text.length && !' \t\r\n,]}{["'.includes(text.charAt(i))) i++;
  return i;
}

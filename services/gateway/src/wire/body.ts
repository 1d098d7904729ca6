import { z } from "zod";
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
 * ignored and a value of the wrong type is an error. Fields are declared with
 * the helpers below, which treat JSON null like an absent field.
 */
export function decodeBody<T extends z.ZodTypeAny>(raw: unknown, schema: T): z.infer<T> {
  const text = typeof raw === "string" ? raw : Buffer.isBuffer(raw) ? raw.toString("utf8") : "";
  const value = parseFirstValue(text);
  if (value === undefined) throw new HttpError(400, INVALID_BODY);
  const result = schema.safeParse(value === null ? {} : value);
  if (!result.success) throw new HttpError(400, INVALID_BODY);
  return result.data;
}

/** A string field; null and absent both read as undefined. */
export const str = () =>
  z
    .string()
    .nullish()
    .transform((v) => v ?? undefined);

export const bool = () =>
  z
    .boolean()
    .nullish()
    .transform((v) => v ?? undefined);

/** A JSON integer (no fraction, within int64's safe part). */
export const int = () =>
  z
    .number()
    .int()
    .nullish()
    .transform((v) => v ?? undefined);

/** A string array; a null element decodes to "" as Go does. */
export const strArray = () =>
  z
    .array(z.string().nullable().transform((v) => v ?? ""))
    .nullish()
    .transform((v) => v ?? undefined);

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
  while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  return i;
}

/** End offset of the value starting at `start` (exclusive); -1 if unterminated. */
function valueEnd(text: string, start: number): number {
  const first = text[start]!;
  if (first === "{" || first === "[") {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i++) {
      const char = text[i]!;
      if (inString) {
        if (char === "\\") i++;
        else if (char === '"') inString = false;
      } else if (char === '"') inString = true;
      else if (char === "{" || char === "[") depth++;
      else if (char === "}" || char === "]") {
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
  while (i < text.length && !" \t\r\n,]}{[\"".includes(text[i]!)) i++;
  return i;
}

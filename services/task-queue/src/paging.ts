import { z } from "zod";
import { InvalidArgumentError } from "@controlplane/grpc";

/**
 * Paging for the list RPCs. gRPC refuses a message over 8 MiB (the clients'
 * receive limit), and one task's messages or one workspace's tasks can be far
 * larger, so every list answers one page bounded twice: by rows, and by the
 * bytes of its rows. The byte budget is half the gRPC limit, so a page is
 * safely below it even when its one row is as large as a row may be.
 */

/** Rows in a page when the caller names no page size, and the most it may ask for. */
export const PAGE_ROWS = 1_000;

/**
 * Bytes a page's rows may add up to: rows are added while the running total
 * stays within it (the first row always goes in, so a page always progresses).
 */
export const PAGE_BYTES = 4 * 1024 * 1024;

/**
 * The most a stored message may weigh (UTF-8 text of type, tool, content,
 * output and input as Postgres renders it). Equal to the page budget, so a
 * page holding one message still fits; AppendMessages refuses larger ones.
 */
export const MESSAGE_BYTES = PAGE_BYTES;

/** Counted per message for what its text does not cover: ids, seq, timestamp, protobuf framing (~130 bytes). */
export const MESSAGE_ROW_OVERHEAD = 256;

/** Counted per task beyond its measured text: ten ids, five timestamps, numbers, protobuf framing (~600 bytes). */
export const TASK_ROW_OVERHEAD = 1_024;

export const INVALID_PAGE_TOKEN = "invalid page_token";

/** The page size a request asked for: 0 or absent means the default, larger is lowered, negative is refused. */
export function pageRows(requested: number | undefined): number {
  if (requested === undefined || requested === 0) return PAGE_ROWS;
  if (!Number.isInteger(requested) || requested < 0) throw new InvalidArgumentError("invalid page_size");
  return Math.min(requested, PAGE_ROWS);
}

/**
 * Where a page ends, in the storage order of its list. Timestamps travel as
 * microseconds since the epoch (Postgres's precision; a JS Date has only
 * milliseconds and would skip or repeat rows stored within one).
 */
const cursors = {
  /** ListMessages: (seq, created_at, id). */
  messages: z.object({ k: z.literal("m"), seq: z.number().int(), us: z.string().regex(/^-?\d{1,19}$/), id: z.string().uuid() }),
  /** ListTasks: (created_at, id), newest first. */
  tasks: z.object({ k: z.literal("t"), us: z.string().regex(/^-?\d{1,19}$/), id: z.string().uuid() }),
  /** ListPendingTasks: (priority desc, created_at, id). */
  pending: z.object({ k: z.literal("p"), priority: z.number().int(), us: z.string().regex(/^-?\d{1,19}$/), id: z.string().uuid() }),
};

export type CursorKind = keyof typeof cursors;
export type Cursor<K extends CursorKind> = z.infer<(typeof cursors)[K]>;

/** The opaque token of a cursor: base64url JSON, so it survives any transport. */
export function encodePageToken<K extends CursorKind>(cursor: Cursor<K>): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

/** The cursor in `token`, undefined for none; INVALID_ARGUMENT for anything that is not a token of this list. */
export function decodePageToken<K extends CursorKind>(kind: K, token: string | undefined): Cursor<K> | undefined {
  if (!token) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw new InvalidArgumentError(INVALID_PAGE_TOKEN);
  }
  const parsed = cursors[kind].safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(INVALID_PAGE_TOKEN);
  return parsed.data as Cursor<K>;
}

/**
 * What a page query returns per row besides the row: how many rows the query
 * looked at (at most rows + 1), so the caller learns whether more follow
 * without reading the next row's (possibly large) body.
 */
export interface PagedRow {
  fetched: number;
}

/** The next page's token when the query saw more rows than it returned, else "". */
export function nextPageToken<R extends PagedRow>(rows: readonly R[], cursorOf: (row: R) => string): string {
  const last = rows.at(-1);
  if (!last || last.fetched <= rows.length) return "";
  return cursorOf(last);
}

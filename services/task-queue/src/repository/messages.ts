import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";
import type { Cursor } from "../paging.js";

const messageRow = z.object({
  task_id: z.string(),
  seq: z.number(),
  type: z.string(),
  tool: z.string().nullable(),
  content: z.string().nullable(),
  input_json: z.string().nullable(),
  output: z.string().nullable(),
  created_at: z.date(),
});

export type MessageRow = z.infer<typeof messageRow>;

export interface NewMessage {
  seq: number;
  type: string;
  tool: string | null;
  content: string | null;
  inputJson: string | null;
  output: string | null;
}

const storedRow = z.object({ seq: z.number(), stored_bytes: z.number() });

export type StoredMessage = z.infer<typeof storedRow>;

/**
 * A message's stored size: UTF-8 bytes of its text, input as Postgres renders
 * it. Written into `stored_bytes`; computed on read for rows older than it.
 */
const storedBytesOf = (alias: string) => {
  const a = sql.identifier([alias]);
  return sql.fragment`(octet_length(${a}.type) + coalesce(octet_length(${a}.tool), 0) + coalesce(octet_length(${a}.content), 0)
    + coalesce(octet_length(${a}.output), 0) + coalesce(octet_length(${a}.input::text), 0))`;
};

/**
 * Stores a batch in one statement (all or nothing), in the given order, each
 * row with its measured size; returns the seq and size of each.
 */
export function insertMessages(db: CommonQueryMethods, taskId: string, messages: NewMessage[]) {
  const rows = messages.map(
    (m) => sql.fragment`(${m.seq}::integer, ${m.type}::text, ${m.tool}::text, ${m.content}::text, ${m.inputJson}::jsonb, ${m.output}::text)`,
  );
  // The Values Scan yields rows in list order, so clock_timestamp() keeps
  // the batch's order for messages that share a seq.
  return db.any(sql.type(storedRow)`
    INSERT INTO taskqueue.task_message (task_id, seq, type, tool, content, input, output, created_at, stored_bytes)
    SELECT ${taskId}::uuid, v.seq, v.type, v.tool, v.content, v.input, v.output, clock_timestamp(), ${storedBytesOf("v")}
    FROM (VALUES ${sql.join(rows, sql.fragment`, `)}) AS v (seq, type, tool, content, input, output)
    RETURNING seq, stored_bytes`);
}

const pagedMessageRow = messageRow.extend({
  id: z.string(),
  /** created_at in microseconds since the epoch, exact (the page cursor's precision). */
  created_us: z.string(),
  /** Rows the page query looked at: more than it returned means more follow. */
  fetched: z.number(),
});

export type PagedMessageRow = z.infer<typeof pagedMessageRow>;

export interface MessagePage {
  taskId: string;
  since: number | null;
  /** The last row of the previous page, if any. */
  after: Cursor<"messages"> | undefined;
  rows: number;
  budgetBytes: number;
  rowOverheadBytes: number;
}

/**
 * One page of a task's messages in storage order (seq, created_at, id):
 * rows are taken while their running size stays within the budget (the
 * first always), at most `rows` of them. One row more than that is looked
 * at, sizes only, to tell whether more follow; bodies are read only for the
 * rows returned.
 */
export function listMessagesPage(db: CommonQueryMethods, page: MessagePage) {
  const after = page.after
    ? sql.fragment`AND m.seq >= ${page.after.seq}
        AND (m.seq, m.created_at, m.id) > (${page.after.seq}, 'epoch'::timestamptz + ${page.after.us}::bigint * interval '1 microsecond', ${page.after.id}::uuid)`
    : sql.fragment``;
  return db.any(sql.type(pagedMessageRow)`
    SELECT p.id, p.task_id, p.seq, p.type, p.tool, p.content, p.input::text AS input_json, p.output, p.created_at,
           (extract(epoch FROM p.created_at) * 1000000)::bigint::text AS created_us, p.fetched::integer AS fetched
    FROM (
      SELECT s.*, count(*) OVER () AS fetched
      FROM (
        SELECT m.id, m.task_id, m.seq, m.type, m.tool, m.content, m.input, m.output, m.created_at,
               row_number() OVER w AS n,
               sum(coalesce(m.stored_bytes, ${storedBytesOf("m")}) + ${page.rowOverheadBytes}) OVER w AS running
        FROM taskqueue.task_message m
        WHERE m.task_id = ${page.taskId} AND (${page.since}::bigint IS NULL OR m.seq > ${page.since}::bigint) ${after}
        WINDOW w AS (ORDER BY m.seq, m.created_at, m.id ROWS UNBOUNDED PRECEDING)
        ORDER BY m.seq, m.created_at, m.id
        LIMIT ${page.rows + 1}
      ) s
    ) p
    WHERE p.n = 1 OR (p.n <= ${page.rows} AND p.running <= ${page.budgetBytes})
    ORDER BY p.seq, p.created_at, p.id`);
}

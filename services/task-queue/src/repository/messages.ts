import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

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

const columns = sql.fragment`task_id, seq, type, tool, content, input::text AS input_json, output, created_at`;

/** Stores a batch in one statement (all or nothing), in the given order. */
export function insertMessages(db: CommonQueryMethods, taskId: string, messages: NewMessage[]) {
  const rows = messages.map(
    (m) => sql.fragment`(${taskId}, ${m.seq}, ${m.type}, ${m.tool}, ${m.content}, ${m.inputJson}::jsonb, ${m.output}, clock_timestamp())`,
  );
  return db.any(sql.type(messageRow)`
    INSERT INTO taskqueue.task_message (task_id, seq, type, tool, content, input, output, created_at)
    VALUES ${sql.join(rows, sql.fragment`, `)}
    RETURNING ${columns}`);
}

export function listMessages(db: CommonQueryMethods, taskId: string, since: number | null) {
  return db.any(sql.type(messageRow)`
    SELECT ${columns} FROM taskqueue.task_message
    WHERE task_id = ${taskId} AND (${since}::bigint IS NULL OR seq > ${since})
    ORDER BY seq, created_at, id`);
}

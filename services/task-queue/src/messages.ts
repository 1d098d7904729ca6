import { InvalidArgumentError } from "@controlplane/grpc";
import { INT32_MAX, INT32_MIN, LIMITS } from "@controlplane/config";
import { encodeEvent, EventMeta, subjectFor } from "@controlplane/events";
import type { ListMessagesResponse, TaskMessage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { requireTask } from "./ids.js";
import { decodePageToken, encodePageToken, MESSAGE_BYTES, MESSAGE_ROW_OVERHEAD, nextPageToken, PAGE_BYTES, pageRows } from "./paging.js";
import { redact, redactInput } from "./redact.js";
import * as messages from "./repository/messages.js";
import { taskRef } from "./task-shape.js";
import { requireLength, storableJson, storableText, type Json } from "./text.js";
import { randomUUID } from "node:crypto";

/**
 * Stores a batch of transcript messages with secrets redacted (content,
 * output, and the top-level strings of input), all or nothing, and announces
 * it as `task.messages`: the seq range, count and size, not the bodies (a
 * batch can hold megabytes; consumers read it with ListMessages).
 *
 * A batch or field over its bound is refused before the database is touched;
 * what Postgres cannot store (NUL, lone surrogates) is repaired instead.
 */
export async function appendMessages(deps: TaskQueueDeps, taskId: string, batch: TaskMessage[]): Promise<number> {
  if (batch.length === 0) return 0;
  requireBatchBounds(batch);
  const prepared = batch.map(prepareMessage);
  const task = await requireTask(deps.pool, taskId);
  const stored = await deps.outbox.transaction(async (tx) => {
    const rows = await messages.insertMessages(tx, task.id, prepared);
    // Only Postgres knows how long input renders; a refusal here rolls the batch back.
    if (rows.some((row) => row.stored_bytes > MESSAGE_BYTES)) throw new InvalidArgumentError("message too large");
    await deps.outbox.write(tx, "task.messages", { task: taskRef(task), messages: [], ...batchSummary(rows) }, { workspaceId: task.workspace_id });
    return rows;
  });
  return stored.length;
}

/** Refuses a batch over the shared bounds: the count, then each field of each message. */
function requireBatchBounds(batch: readonly TaskMessage[]): void {
  if (batch.length > LIMITS.MESSAGES_PER_BATCH) throw new InvalidArgumentError("too many messages in one batch");
  for (const m of batch) {
    if (!Number.isInteger(m.seq) || m.seq < INT32_MIN || m.seq > INT32_MAX) throw new InvalidArgumentError("message seq out of range");
    requireLength("message type", m.type, LIMITS.NAME_CHARS);
    requireLength("message tool", m.tool, LIMITS.NAME_CHARS);
    requireLength("message content", m.content, LIMITS.TEXT_CHARS);
    requireLength("message output", m.output, LIMITS.TEXT_CHARS);
    requireLength("message input", m.inputJson, LIMITS.JSON_OBJECT_CHARS);
  }
}

/**
 * What is stored for one message: storable text first (so a secret split by
 * NUL is still recognised), then redacted; redaction only swaps ASCII runs,
 * so the text stays storable. Empty tool/content/output are stored as NULL.
 */
function prepareMessage(m: TaskMessage): messages.NewMessage {
  return {
    seq: m.seq,
    type: storableText(m.type),
    tool: nonEmpty(storableText(m.tool ?? "")),
    content: nonEmpty(redact(storableText(m.content ?? ""))),
    inputJson: m.inputJson === undefined ? null : JSON.stringify(redactInput(storableInput(m.inputJson))),
    output: nonEmpty(redact(storableText(m.output ?? ""))),
  };
}

function nonEmpty(text: string): string | null {
  return text === "" ? null : text;
}

/** The seq range, count and stored size of a stored batch: how consumers find it. */
function batchSummary(rows: readonly messages.StoredMessage[]) {
  const [first] = rows;
  if (!first) throw new Error("a stored batch holds at least one message");
  let firstSeq = first.seq;
  let lastSeq = firstSeq;
  let totalBytes = 0;
  for (const row of rows) {
    firstSeq = Math.min(firstSeq, row.seq);
    lastSeq = Math.max(lastSeq, row.seq);
    totalBytes += row.stored_bytes;
  }
  return { firstSeq, lastSeq, count: rows.length, totalBytes };
}

/** One page of a task's messages in storage order, and the token of the next (empty after the last). */
export async function listMessages(
  deps: TaskQueueDeps,
  taskId: string,
  since: number | undefined,
  page: { pageSize?: number; pageToken?: string } = {},
): Promise<ListMessagesResponse> {
  const rows = pageRows(page.pageSize);
  const after = decodePageToken("messages", page.pageToken);
  const task = await requireTask(deps.pool, taskId);
  const found = await messages.listMessagesPage(deps.pool, {
    taskId: task.id,
    since: since ?? null,
    after,
    rows,
    budgetBytes: PAGE_BYTES,
    rowOverheadBytes: MESSAGE_ROW_OVERHEAD,
  });
  return {
    messages: found.map((row) => ({ ...toProto(row), issueId: task.issue_id ?? undefined })),
    nextPageToken: nextPageToken(found, (row) => encodePageToken<"messages">({ k: "m", seq: row.seq, us: row.created_us, id: row.id })),
  };
}

/** Broadcasts progress without storing it: fire and forget on the event subject. */
export async function reportProgress(deps: TaskQueueDeps, taskId: string, summary: string, step: number, total: number) {
  // Published as is on a NATS subject (1 MiB payload at most): bounded like every broadcast text.
  requireLength("summary", summary, LIMITS.SUMMARY_CHARS);
  const task = await requireTask(deps.pool, taskId);
  deps.activity.publish("task.progress", { task: taskRef(task), summary, step, total }, task.workspace_id);
}

function toProto(row: messages.MessageRow): TaskMessage {
  return {
    taskId: row.task_id,
    seq: row.seq,
    type: row.type,
    tool: row.tool ?? undefined,
    content: row.content ?? undefined,
    inputJson: row.input_json ?? undefined,
    output: row.output ?? undefined,
    createdAt: row.created_at,
  };
}

/** The input as a storable JSON object; INVALID_ARGUMENT when it is not an object or nests too deep. */
function storableInput(json: string): Record<string, unknown> {
  const value = storableJson(parseJson(json));
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  throw new InvalidArgumentError("message input must be a JSON object");
}

function parseJson(json: string): Json {
  try {
    return JSON.parse(json) as Json;
  } catch {
    throw new InvalidArgumentError("message input must be a JSON object");
  }
}

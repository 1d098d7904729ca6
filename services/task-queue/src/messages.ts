import { InvalidArgumentError } from "@controlplane/grpc";
import { encodeEvent, EventMeta, subjectFor } from "@controlplane/events";
import type { TaskMessage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { requireTask } from "./ids.js";
import { redact, redactInput } from "./redact.js";
import * as messages from "./repository/messages.js";
import { taskRef } from "./task-shape.js";
import { randomUUID } from "node:crypto";

/**
 * Stores a batch of transcript messages with secrets redacted (content,
 * output, and the top-level strings of input), all or nothing, and announces
 * the stored batch as `task.messages`.
 */
export async function appendMessages(deps: TaskQueueDeps, taskId: string, batch: TaskMessage[]): Promise<number> {
  if (batch.length === 0) return 0;
  const task = await requireTask(deps.pool, taskId);
  const prepared = batch.map((m) => ({
    seq: m.seq,
    type: m.type,
    tool: m.tool || null,
    content: m.content ? redact(m.content) : null,
    inputJson: m.inputJson === undefined ? null : JSON.stringify(redactInput(parseObject(m.inputJson))),
    output: m.output ? redact(m.output) : null,
  }));
  const stored = await deps.outbox.transaction(async (tx) => {
    const rows = await messages.insertMessages(tx, task.id, prepared);
    await deps.outbox.write(tx, "task.messages", { task: taskRef(task), messages: rows.map(toProto) }, { workspaceId: task.workspace_id });
    return rows;
  });
  return stored.length;
}

export async function listMessages(deps: TaskQueueDeps, taskId: string, since: number | undefined): Promise<TaskMessage[]> {
  const task = await requireTask(deps.pool, taskId);
  const rows = await messages.listMessages(deps.pool, task.id, since ?? null);
  return rows.map((row) => ({ ...toProto(row), issueId: task.issue_id ?? undefined }));
}

/** Broadcasts progress without storing it: fire and forget on the event subject. */
export async function reportProgress(deps: TaskQueueDeps, taskId: string, summary: string, step: number, total: number) {
  const task = await requireTask(deps.pool, taskId);
  const meta = EventMeta.fromPartial({ eventId: randomUUID(), occurredAt: new Date(), workspaceId: task.workspace_id });
  const bytes = encodeEvent("task.progress", { meta, task: taskRef(task), summary, step, total });
  deps.bus.nc.publish(subjectFor(deps.bus.subjectRoot, "task.progress"), bytes);
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

function parseObject(json: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError("message input must be a JSON object");
}

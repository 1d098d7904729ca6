import type { DatabaseTransactionConnection, Outbox, PendingEvent } from "@controlplane/db";
import type { TaskRow } from "./repository/rows.js";
import * as tasks from "./repository/tasks.js";
import * as tokens from "./repository/tokens.js";
import { taskRef } from "./task-shape.js";
import { prefixUtf16 } from "./text.js";

/**
 * How much of the error text `task.failed` carries, in UTF-16 code units: enough
 * for a consumer to show or classify it, small enough that the event stays
 * far below NATS's 1 MiB payload (a daemon's error may be 1 MiB of log).
 * The full text stays on the task row.
 */
export const EVENT_ERROR_CHARS = 4_096;

/** Failures worth another attempt: the runtime, not the work, was at fault. */
const RETRYABLE = new Set(["runtime_offline", "runtime_recovery", "timeout", "codex_semantic_inactivity"]);

/**
 * Queues the retry of a failed task when the rule allows: a retryable reason,
 * attempts left (attempt < max_attempts: the count that stops endless
 * retries), not an autopilot run, and an issue or chat session to resume.
 * The child copies the work and the resume pointer (not after
 * codex_semantic_inactivity, which starts fresh). Null when no retry is made,
 * including when the (issue, agent) already has a pending task.
 */
export async function queueRetry(tx: DatabaseTransactionConnection, failed: TaskRow): Promise<TaskRow | null> {
  const reason = failed.failure_reason ?? "";
  if (failed.status !== "failed" || !RETRYABLE.has(reason)) return null;
  if (failed.attempt >= failed.max_attempts || failed.autopilot_run_id) return null;
  if (!failed.issue_id && !failed.chat_session_id) return null;
  const fresh = reason === "codex_semantic_inactivity";
  return tasks.insertTask(tx, {
    workspaceId: failed.workspace_id,
    agentId: failed.agent_id,
    runtimeId: failed.runtime_id,
    issueId: failed.issue_id,
    chatSessionId: failed.chat_session_id,
    autopilotRunId: failed.autopilot_run_id,
    triggerCommentId: failed.trigger_comment_id,
    triggerSummary: failed.trigger_summary,
    priority: failed.priority,
    context: failed.context,
    claimContext: failed.claim_context,
    forceFreshSession: fresh || failed.force_fresh_session,
    initiatorUserId: failed.initiator_user_id,
    maxAttempts: failed.max_attempts,
    attempt: failed.attempt + 1,
    parentTaskId: failed.id,
    sessionId: fresh ? null : failed.session_id,
    workDir: fresh ? null : failed.work_dir,
  });
}

/**
 * The shared failure pipeline, inside the failing transaction: revoke the
 * tasks' tokens, queue retries, record `task.failed` (and `task.queued` for
 * each retry). Returns the retries, so their runtimes can be woken after commit.
 */
export async function afterFailures(tx: DatabaseTransactionConnection, outbox: Outbox, failed: readonly TaskRow[]): Promise<TaskRow[]> {
  await tokens.deleteTokensOfTasks(
    tx,
    failed.map((row) => row.id),
  );
  const retries: TaskRow[] = [];
  const events: PendingEvent[] = [];
  for (const row of failed) {
    const retry = await queueRetry(tx, row);
    const meta = { workspaceId: row.workspace_id };
    if (retry) {
      retries.push(retry);
      events.push({ type: "task.queued", body: { task: taskRef(retry), priority: retry.priority, attempt: retry.attempt }, meta });
    }
    events.push({
      type: "task.failed",
      body: { task: taskRef(row), ...eventError(row.error ?? ""), failureReason: row.failure_reason ?? "", retryTaskId: retry?.id ?? "" },
      meta,
    });
  }
  await outbox.writeMany(tx, events);
  return retries;
}

/** The error as `task.failed` carries it: a bounded prefix, and whether (and from what length) it was cut. */
export function eventError(error: string) {
  const prefix = prefixUtf16(error, EVENT_ERROR_CHARS);
  return { error: prefix, errorTruncated: prefix.length < error.length, errorLength: error.length };
}

import { InvalidArgumentError, NotFoundError } from "@controlplane/grpc";
import type { DatabaseTransactionConnection } from "@controlplane/db";
import type { TaskQueueDeps } from "./deps.js";
import { afterCancellations } from "./cancellations.js";
import { classifyFailure } from "./classify.js";
import { afterFailures } from "./failures.js";
import { requireTask, requireUuid, TASK_NOT_FOUND } from "./ids.js";
import type { TaskRow } from "./repository/rows.js";
import * as tasks from "./repository/tasks.js";
import * as tokens from "./repository/tokens.js";
import { taskRef } from "./task-shape.js";

/** dispatched | waiting_local_directory -> running; otherwise 400 with the original's text. */
export async function startTask(deps: TaskQueueDeps, taskId: string): Promise<TaskRow> {
  const id = requireUuid(taskId, "task_id");
  const row = await deps.outbox.transaction(async (tx) => {
    const started = await tasks.start(tx, id);
    if (started) await deps.outbox.write(tx, "task.started", { task: taskRef(started) }, { workspaceId: started.workspace_id });
    return started;
  });
  if (!row) throw new InvalidArgumentError("start task: no rows in result set");
  return row;
}

/** dispatched -> waiting_local_directory; the reason trimmed, empty stored as NULL. */
export async function waitLocalDirectory(deps: TaskQueueDeps, taskId: string, reason: string): Promise<TaskRow> {
  const id = requireUuid(taskId, "task_id");
  const trimmed = reason.trim() || null;
  const row = await deps.outbox.transaction(async (tx) => {
    const waiting = await tasks.markWaiting(tx, id, trimmed);
    if (waiting) {
      await deps.outbox.write(tx, "task.waiting", { task: taskRef(waiting), reason: trimmed ?? "" }, { workspaceId: waiting.workspace_id });
    }
    return waiting;
  });
  if (!row) throw new InvalidArgumentError("mark task waiting_local_directory: no rows in result set");
  return row;
}

export interface Completion {
  prUrl: string;
  output: string;
  sessionId: string;
  workDir: string;
}

/**
 * running -> completed. From any other state the current row comes back
 * unchanged with no side effects (reports are retried and must be safe to
 * repeat). Either way the task's tokens are revoked.
 */
export async function completeTask(deps: TaskQueueDeps, taskId: string, c: Completion) {
  const id = requireUuid(taskId, "task_id");
  const result = { pr_url: c.prUrl, output: c.output, session_id: c.sessionId, work_dir: c.workDir };
  return deps.outbox.transaction(async (tx) => {
    const row = await tasks.complete(tx, id, result, c.sessionId || null, c.workDir || null);
    await tokens.deleteTaskTokens(tx, id);
    if (!row) return { task: await current(tx, id), transitioned: false };
    const meta = { workspaceId: row.workspace_id };
    await deps.outbox.write(tx, "task.completed", { task: taskRef(row) }, meta);
    if (row.issue_id && (await tasks.recordFirstExecution(tx, row.issue_id, row.id))) {
      await deps.outbox.write(tx, "issue.first_executed", { issueId: row.issue_id, taskId: row.id }, meta);
    }
    return { task: row, transitioned: true };
  });
}

export interface Failure {
  error: string;
  sessionId?: string;
  workDir?: string;
  failureReason: string;
}

/**
 * dispatched | running | waiting_local_directory -> failed, with the reason
 * given or classified from the error text; the resume pointer is kept unless
 * given. Idempotent like completion. A retry is queued when the rule allows.
 */
export async function failTask(deps: TaskQueueDeps, taskId: string, f: Failure) {
  const id = requireUuid(taskId, "task_id");
  const reason = f.failureReason.trim() || classifyFailure(f.error);
  const outcome = await deps.outbox.transaction(async (tx) => {
    const row = await tasks.fail(tx, id, f.error, reason, f.sessionId || undefined, f.workDir || undefined);
    if (!row) {
      await tokens.deleteTaskTokens(tx, id);
      return { task: await current(tx, id), transitioned: false, retry: undefined };
    }
    const [retry] = await afterFailures(tx, deps.outbox, [row]);
    return { task: row, transitioned: true, retry };
  });
  if (outcome.retry) deps.wake.notify(outcome.retry.runtime_id);
  return { task: outcome.task, transitioned: outcome.transitioned, retryTaskId: outcome.retry?.id };
}

/** Any non-terminal -> cancelled (tokens revoked); a terminal task comes back unchanged. */
export async function cancelTask(deps: TaskQueueDeps, taskId: string, scope: { workspaceId?: string; issueId?: string } = {}) {
  const id = requireUuid(taskId, "task_id");
  return deps.outbox.transaction(async (tx) => {
    const existing = await requireTask(tx, id);
    if ((scope.workspaceId && existing.workspace_id !== scope.workspaceId) || (scope.issueId && existing.issue_id !== scope.issueId)) {
      throw new NotFoundError(TASK_NOT_FOUND);
    }
    const row = await tasks.cancel(tx, id);
    if (!row) return { task: existing, transitioned: false };
    await afterCancellations(tx, deps.outbox, [row]);
    return { task: row, transitioned: true };
  });
}

/** Records the resume pointer, only while dispatched or running; silently nothing otherwise. */
export async function pinSession(deps: TaskQueueDeps, taskId: string, sessionId: string, workDir: string) {
  const id = requireUuid(taskId, "task_id");
  if (!sessionId && !workDir) throw new InvalidArgumentError("session_id or work_dir required");
  await tasks.pinSession(deps.pool, id, sessionId || null, workDir || null);
}

/** Fails the runtime's in-flight tasks after its daemon restarted; retries where allowed. */
export async function recoverOrphans(deps: TaskQueueDeps, runtimeId: string) {
  const id = requireUuid(runtimeId, "runtime_id");
  const { failed, retries } = await failTasksWhere(deps, tasks.inFlightOnRuntime(id), "daemon restarted while task was in flight", "runtime_recovery");
  return { orphaned: failed.length, retried: retries.length };
}

/** Fails the tasks `where` selects through the shared pipeline, then wakes the retries' runtimes. */
export async function failTasksWhere(
  deps: TaskQueueDeps,
  where: Parameters<typeof tasks.failWhere>[1],
  error: string,
  reason: string,
  limit?: number,
) {
  const outcome = await deps.outbox.transaction(async (tx) => {
    const failed = await tasks.failWhere(tx, where, error, reason, limit);
    const retries = failed.length > 0 ? await afterFailures(tx, deps.outbox, failed) : [];
    return { failed, retries };
  });
  for (const runtime of new Set(outcome.retries.map((r) => r.runtime_id))) deps.wake.notify(runtime);
  return outcome;
}

async function current(tx: DatabaseTransactionConnection, id: string): Promise<TaskRow> {
  return requireTask(tx, id);
}

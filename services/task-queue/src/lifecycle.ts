import { InvalidArgumentError, NotFoundError } from "@controlplane/grpc";
import { LIMITS } from "@controlplane/config";
import type { DatabaseTransactionConnection } from "@controlplane/db";
import type { TaskQueueDeps } from "./deps.js";
import { afterCancellations } from "./cancellations.js";
import { classifyFailure } from "./classify.js";
import { afterFailures } from "./failures.js";
import { requireTask, requireUuid, TASK_NOT_FOUND } from "./ids.js";
import type { TaskRow } from "./repository/rows.js";
import * as reports from "./repository/reports.js";
import * as tasks from "./repository/tasks.js";
import * as tokens from "./repository/tokens.js";
import { taskRef } from "./task-shape.js";
import { requireLength, storableOptional, storableText } from "./text.js";

/** dispatched | waiting_local_directory -> running; otherwise 400 with the original's text. */
export async function startTask(deps: TaskQueueDeps, taskId: string): Promise<TaskRow> {
  const row = await deps.starts.get(requireUuid(taskId, "task_id"));
  if (!row) {
    await requireTask(deps.pool, taskId);
    throw new InvalidArgumentError("start task: no rows in result set");
  }
  deps.knownTasks.remember(row);
  deps.activity.publish("task.started", { task: taskRef(row) }, row.workspace_id);
  return row;
}

/**
 * dispatched -> waiting_local_directory; the reason trimmed, empty stored as
 * NULL, and so is the seed-era daemon's `local_directory <absolute path>…`
 * (a path on the user's machine, naming the user; today's daemon sends the
 * directory's display name instead).
 */
export async function waitLocalDirectory(deps: TaskQueueDeps, taskId: string, reason: string): Promise<TaskRow> {
  const id = requireUuid(taskId, "task_id");
  requireLength("reason", reason, LIMITS.SUMMARY_CHARS);
  const trimmed = sanitizeWaitReason(storableText(reason)) || null;
  const row = await tasks.markWaiting(deps.pool, id, trimmed, deps.config.PREPARE_LEASE_MS);
  if (!row) {
    await requireTask(deps.pool, taskId);
    throw new InvalidArgumentError("mark task waiting_local_directory: no rows in result set");
  }
  deps.activity.publish("task.waiting", { task: taskRef(row), reason: trimmed ?? "" }, row.workspace_id);
  return row;
}

const LEGACY_WAIT_PREFIX = "local_directory ";

/** The reason trimmed; "" for a legacy reason that starts with an absolute path (POSIX, UNC or drive letter). */
export function sanitizeWaitReason(reason: string): string {
  const trimmed = reason.trim();
  if (!trimmed.startsWith(LEGACY_WAIT_PREFIX)) return trimmed;
  const rest = trimmed.slice(LEGACY_WAIT_PREFIX.length);
  return /^(?:\/|\\\\|[A-Za-z]:[\\/])/.test(rest) ? "" : trimmed;
}

/** What today's daemon adds to complete and fail; all optional. */
export interface RunReport {
  branchName?: string;
  durableWorkDir?: string;
  sessionRolloutMissing?: boolean;
  retiredSessionId?: string;
}

export interface Completion extends RunReport {
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
export async function completeTask(deps: TaskQueueDeps, taskId: string, completion: Completion) {
  const id = requireUuid(taskId, "task_id");
  const c = storableCompletion(completion);
  const run = runOutcome(c);
  // The report as stored: the seed's four keys always, today's only when given.
  const result: Record<string, string | boolean> = {
    pr_url: c.prUrl,
    output: c.output,
    session_id: c.sessionId,
    work_dir: c.workDir,
    ...(run.durableWorkDir ? { durable_work_dir: run.durableWorkDir } : {}),
    ...(run.branchName ? { branch_name: run.branchName } : {}),
    ...(run.retiredSessionId ? { retired_session_id: run.retiredSessionId } : {}),
    ...(run.sessionRolloutMissing ? { session_rollout_missing: true } : {}),
  };
  const known = deps.knownTasks.get(id);
  deps.knownTasks.forget(id);
  // A task this replica claimed or started: one statement with its events,
  // shared with the completions that queue up with it.
  const knownCompletion = known && {
    known: { ...known.ref, workspaceId: known.workspaceId },
    result,
    sessionId: c.sessionId || null,
    workDir: c.workDir || null,
    outcome: run,
  };
  const completed = knownCompletion && (await deps.completions.get(id, knownCompletion));
  if (completed) {
    const { first_execution: _firstExecution, ...row } = completed;
    slotFreed(deps, row);
    return { task: row, transitioned: true };
  }
  const outcome = await deps.outbox.transaction(async (tx) => {
    const done = await reports.complete(tx, id, result, c.sessionId || null, c.workDir || null, run);
    if (!done) return { task: await current(tx, id), transitioned: false };
    const { first_execution: firstExecution, ...row } = done;
    const meta = { workspaceId: row.workspace_id };
    await deps.outbox.writeMany(tx, [
      { type: "task.completed", body: { task: taskRef(row) }, meta },
      ...(firstExecution && row.issue_id ? [{ type: "issue.first_executed" as const, body: { issueId: row.issue_id, taskId: row.id }, meta }] : []),
    ]);
    return { task: row, transitioned: true };
  });
  if (outcome.transitioned) slotFreed(deps, outcome.task);
  return outcome;
}

/**
 * A finished task frees a slot of its agent: its runtime's daemon may now
 * take more work, so it is told (today's daemons claim again on it).
 */
function slotFreed(deps: TaskQueueDeps, row: TaskRow): void {
  deps.wake.notify(row.runtime_id);
}

/**
 * The completion as stored: bounded (INVALID_ARGUMENT before any write) and
 * without NUL, which neither the result's jsonb nor a text column can hold.
 */
function storableCompletion(c: Completion): Completion {
  requireLength("output", c.output, LIMITS.TEXT_CHARS);
  requireLength("pr_url", c.prUrl, LIMITS.PATH_CHARS);
  requireLength("session_id", c.sessionId, LIMITS.PATH_CHARS);
  requireLength("work_dir", c.workDir, LIMITS.PATH_CHARS);
  return {
    prUrl: storableText(c.prUrl),
    output: storableText(c.output),
    sessionId: storableText(c.sessionId),
    workDir: storableText(c.workDir),
    ...storableRunReport(c),
  };
}

/** Today's fields, bounded (INVALID_ARGUMENT before any write) and without NUL. */
function storableRunReport(r: RunReport): RunReport {
  requireLength("branch_name", r.branchName, LIMITS.PATH_CHARS);
  requireLength("durable_work_dir", r.durableWorkDir, LIMITS.PATH_CHARS);
  requireLength("retired_session_id", r.retiredSessionId, LIMITS.PATH_CHARS);
  return {
    branchName: storableOptional(r.branchName),
    durableWorkDir: storableOptional(r.durableWorkDir),
    sessionRolloutMissing: r.sessionRolloutMissing ?? false,
    retiredSessionId: storableOptional(r.retiredSessionId),
  };
}

/** The columns today's fields write: an empty value is not reported (it never clears a stored one). */
function runOutcome(r: RunReport): reports.RunOutcome {
  return {
    branchName: r.branchName || null,
    durableWorkDir: r.durableWorkDir || null,
    sessionRolloutMissing: r.sessionRolloutMissing ?? false,
    retiredSessionId: r.retiredSessionId || null,
  };
}

export interface Failure extends RunReport {
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
export async function failTask(deps: TaskQueueDeps, taskId: string, failure: Failure) {
  const id = requireUuid(taskId, "task_id");
  const f = storableFailure(failure);
  const reason = f.failureReason.trim() || classifyFailure(f.error);
  deps.knownTasks.forget(id);
  const outcome = await deps.outbox.transaction(async (tx) => {
    const row = await reports.fail(tx, id, f.error, reason, f.sessionId || undefined, f.workDir || undefined, runOutcome(f));
    if (!row) {
      await tokens.deleteTaskTokens(tx, id);
      return { task: await current(tx, id), transitioned: false, retry: undefined };
    }
    const [retry] = await afterFailures(tx, deps.outbox, [row]);
    return { task: row, transitioned: true, retry };
  });
  if (outcome.transitioned) slotFreed(deps, outcome.task);
  if (outcome.retry) deps.wake.notify(outcome.retry.runtime_id, outcome.retry.id);
  return { task: outcome.task, transitioned: outcome.transitioned, retryTaskId: outcome.retry?.id };
}

/** The failure as stored: bounded (INVALID_ARGUMENT before any write) and without NUL. */
function storableFailure(f: Failure): Failure {
  requireLength("error", f.error, LIMITS.TEXT_CHARS);
  requireLength("session_id", f.sessionId, LIMITS.PATH_CHARS);
  requireLength("work_dir", f.workDir, LIMITS.PATH_CHARS);
  requireLength("failure_reason", f.failureReason, LIMITS.NAME_CHARS);
  return {
    error: storableText(f.error),
    sessionId: f.sessionId === undefined ? undefined : storableText(f.sessionId),
    workDir: f.workDir === undefined ? undefined : storableText(f.workDir),
    failureReason: storableText(f.failureReason),
    ...storableRunReport(f),
  };
}

export interface CancelAcknowledgement {
  branchName: string;
  durableWorkDir: string;
  errorMessage: string;
  failureReason: string;
}

/**
 * A daemon's report after it saw its task cancelled (any status may be
 * acknowledged; only a cancelled task records anything): trimmed, each
 * written only into an empty column, and when something was written
 * task.cancelled is recorded again so consumers read the row anew.
 * Replays and late acks change nothing. NOT_FOUND when the task does not exist.
 */
export async function acknowledgeCancel(deps: TaskQueueDeps, taskId: string, ack: CancelAcknowledgement): Promise<boolean> {
  const id = requireUuid(taskId, "task_id");
  requireLength("branch_name", ack.branchName, LIMITS.PATH_CHARS);
  requireLength("durable_work_dir", ack.durableWorkDir, LIMITS.PATH_CHARS);
  requireLength("error_message", ack.errorMessage, LIMITS.TEXT_CHARS);
  requireLength("failure_reason", ack.failureReason, LIMITS.NAME_CHARS);
  const given = (text: string) => storableText(text).trim() || null;
  const values = {
    branchName: given(ack.branchName),
    durableWorkDir: given(ack.durableWorkDir),
    errorMessage: given(ack.errorMessage),
    failureReason: given(ack.failureReason),
  };
  return deps.outbox.transaction(async (tx) => {
    const row = await tasks.acknowledgeCancel(tx, id, values);
    if (!row) {
      await requireTask(tx, id);
      return false;
    }
    await deps.outbox.write(tx, "task.cancelled", { task: taskRef(row) }, { workspaceId: row.workspace_id });
    return true;
  });
}

/** Any non-terminal -> cancelled (tokens revoked); a terminal task comes back unchanged. */
export async function cancelTask(deps: TaskQueueDeps, taskId: string, scope: { workspaceId?: string; issueId?: string } = {}) {
  const id = requireUuid(taskId, "task_id");
  const outcome = await deps.outbox.transaction(async (tx) => {
    const existing = await requireTask(tx, id);
    if ((scope.workspaceId && existing.workspace_id !== scope.workspaceId) || (scope.issueId && existing.issue_id !== scope.issueId)) {
      throw new NotFoundError(TASK_NOT_FOUND);
    }
    const row = await tasks.cancel(tx, id);
    if (!row) return { task: existing, transitioned: false };
    await afterCancellations(tx, deps.outbox, [row]);
    return { task: row, transitioned: true };
  });
  if (outcome.transitioned) slotFreed(deps, outcome.task);
  return outcome;
}

/** Records the resume pointer, only while dispatched or running; silently nothing otherwise. */
export async function pinSession(deps: TaskQueueDeps, taskId: string, sessionId: string, workDir: string) {
  const id = requireUuid(taskId, "task_id");
  if (!sessionId && !workDir) throw new InvalidArgumentError("session_id or work_dir required");
  requireLength("session_id", sessionId, LIMITS.PATH_CHARS);
  requireLength("work_dir", workDir, LIMITS.PATH_CHARS);
  await tasks.pinSession(deps.pool, id, storableText(sessionId) || null, storableText(workDir) || null);
}

/** Fails the runtime's in-flight tasks after its daemon restarted; retries where allowed. */
export async function recoverOrphans(deps: TaskQueueDeps, runtimeId: string) {
  const id = requireUuid(runtimeId, "runtime_id");
  const { failed, retries } = await failTasksWhere(deps, tasks.inFlightOnRuntime(id), "daemon restarted while task was in flight", "runtime_recovery");
  return { orphaned: failed.length, retried: retries.length };
}

/** Fails the tasks `where` selects through the shared pipeline, then wakes their runtimes (slots freed, retries queued). */
export async function failTasksWhere(deps: TaskQueueDeps, where: Parameters<typeof tasks.failWhere>[1], error: string, reason: string, limit?: number) {
  const outcome = await deps.outbox.transaction(async (tx) => {
    const failed = await tasks.failWhere(tx, where, error, reason, limit);
    const retries = failed.length > 0 ? await afterFailures(tx, deps.outbox, failed) : [];
    return { failed, retries };
  });
  for (const runtime of new Set(outcome.failed.map((r) => r.runtime_id))) deps.wake.notify(runtime);
  for (const retry of outcome.retries) deps.wake.notify(retry.runtime_id, retry.id);
  return outcome;
}

async function current(tx: DatabaseTransactionConnection, id: string): Promise<TaskRow> {
  return requireTask(tx, id);
}

import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";
import type { Cursor } from "../paging.js";
import { IN_FLIGHT, NON_TERMINAL, statusList, taskColumns, taskColumnsOf, taskRow, type TaskRow } from "./rows.js";

export interface NewTask {
  workspaceId: string;
  agentId: string;
  runtimeId: string;
  issueId: string | null;
  chatSessionId: string | null;
  autopilotRunId: string | null;
  triggerCommentId: string | null;
  triggerSummary: string | null;
  priority: number;
  context: Record<string, unknown> | null;
  claimContext: Record<string, unknown>;
  forceFreshSession: boolean;
  initiatorUserId: string | null;
  maxAttempts: number;
  attempt?: number;
  parentTaskId?: string | null;
  sessionId?: string | null;
  workDir?: string | null;
}

/** Inserts a queued task; null when (issue, agent) already has a pending one. */
export function insertTask(db: CommonQueryMethods, t: NewTask) {
  return db.maybeOne(sql.type(taskRow)`
    INSERT INTO taskqueue.task
      (workspace_id, agent_id, runtime_id, issue_id, chat_session_id, autopilot_run_id, trigger_comment_id,
       trigger_summary, priority, context, claim_context, force_fresh_session, initiator_user_id, max_attempts,
       attempt, parent_task_id, session_id, work_dir)
    VALUES (${t.workspaceId}, ${t.agentId}, ${t.runtimeId}, ${t.issueId}, ${t.chatSessionId}, ${t.autopilotRunId},
            ${t.triggerCommentId}, ${t.triggerSummary}, ${t.priority}, ${t.context === null ? null : sql.jsonb(t.context as never)},
            ${sql.jsonb(t.claimContext as never)}, ${t.forceFreshSession}, ${t.initiatorUserId}, ${t.maxAttempts},
            ${t.attempt ?? 1}, ${t.parentTaskId ?? null}, ${t.sessionId ?? null}, ${t.workDir ?? null})
    ON CONFLICT (issue_id, agent_id) WHERE status IN ('queued', 'dispatched') DO NOTHING
    RETURNING ${taskColumns}`);
}

export function findPending(db: CommonQueryMethods, issueId: string, agentId: string) {
  return db.maybeOne(sql.type(taskRow)`
    SELECT ${taskColumns} FROM taskqueue.task
    WHERE issue_id = ${issueId} AND agent_id = ${agentId} AND status IN ('queued', 'dispatched')`);
}

export function findTask(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(taskRow)`SELECT ${taskColumns} FROM taskqueue.task WHERE id = ${id}`);
}

/**
 * Puts a claimed task back in the queue when its answer never reached the
 * claimer: only while dispatched and never started, and only on the runtime
 * it was claimed for; its tokens and its receipt go with the claim (its
 * lease too: see migration 005). Null when nothing changed.
 */
export function releaseClaim(db: CommonQueryMethods, id: string, runtimeId: string) {
  return db.maybeOne(sql.type(z.object({ id: z.string(), runtime_id: z.string() }))`
    WITH released AS (
      UPDATE taskqueue.task SET status = 'queued', dispatched_at = NULL, delivered_comment_ids = '{}', updated_at = now()
      WHERE id = ${id} AND runtime_id = ${runtimeId} AND status = 'dispatched' AND started_at IS NULL
      RETURNING id, runtime_id),
    revoked AS (DELETE FROM taskqueue.task_token WHERE task_id IN (SELECT id FROM released))
    SELECT id, runtime_id FROM released`);
}

/** A single guarded transition: the row when it was in one of `from`, else null. */
function transition(db: CommonQueryMethods, id: string, from: readonly string[], set: ReturnType<typeof sql.fragment>) {
  return db.maybeOne(sql.type(taskRow)`
    UPDATE taskqueue.task SET ${set}, updated_at = now()
    WHERE id = ${id} AND status = ANY(${sql.array([...from], "text")})
    RETURNING ${taskColumns}`);
}

/**
 * dispatched | waiting_local_directory -> running, for many tasks in one
 * statement: the rows that were in one of those states, by id.
 */
export async function startMany(db: CommonQueryMethods, ids: readonly string[]): Promise<Map<string, TaskRow>> {
  const rows = await db.any(sql.type(taskRow)`
    UPDATE taskqueue.task SET status = 'running', started_at = now(), wait_reason = NULL, updated_at = now()
    WHERE id = ANY(${sql.array([...ids], "uuid")}) AND status IN ('dispatched', 'waiting_local_directory')
    RETURNING ${taskColumns}`);
  return new Map(rows.map((row) => [row.id, row]));
}

/**
 * dispatched -> waiting_local_directory, with a fresh prepare lease (the
 * daemon keeps extending it while it waits; inert there: only dispatched
 * tasks are re-delivered or timed out).
 */
export function markWaiting(db: CommonQueryMethods, id: string, reason: string | null, prepareLeaseMs: number) {
  return transition(
    db,
    id,
    ["dispatched"],
    sql.fragment`status = 'waiting_local_directory', wait_reason = ${reason},
                 prepare_lease_expires_at = now() + make_interval(secs => ${prepareLeaseMs / 1000})`,
  );
}

export interface CancelAck {
  branchName: string | null;
  durableWorkDir: string | null;
  errorMessage: string | null;
  failureReason: string | null;
}

/**
 * Records a cancel-ack in one statement: each value only while the task is
 * cancelled and only into an empty column (the error when it is absent or
 * empty, its reason with it and only when none is stored). The row when
 * something was written, else null.
 */
export function acknowledgeCancel(db: CommonQueryMethods, id: string, a: CancelAck) {
  const writesDir = sql.fragment`(${a.durableWorkDir}::text IS NOT NULL AND durable_work_dir IS NULL)`;
  const writesBranch = sql.fragment`(${a.branchName}::text IS NOT NULL AND branch_name IS NULL)`;
  const writesError = sql.fragment`(${a.errorMessage}::text IS NOT NULL AND coalesce(error, '') = '')`;
  return db.maybeOne(sql.type(taskRow)`
    UPDATE taskqueue.task
    SET durable_work_dir = CASE WHEN ${writesDir} THEN ${a.durableWorkDir}::text ELSE durable_work_dir END,
        branch_name = CASE WHEN ${writesBranch} THEN ${a.branchName}::text ELSE branch_name END,
        error = CASE WHEN ${writesError} THEN ${a.errorMessage}::text ELSE error END,
        failure_reason = CASE WHEN ${writesError} THEN coalesce(failure_reason, ${a.failureReason}::text) ELSE failure_reason END,
        updated_at = now()
    WHERE id = ${id} AND status = 'cancelled' AND (${writesDir} OR ${writesBranch} OR ${writesError})
    RETURNING ${taskColumns}`);
}

export function cancel(db: CommonQueryMethods, id: string) {
  return transition(db, id, NON_TERMINAL, sql.fragment`status = 'cancelled', completed_at = now(), wait_reason = NULL`);
}

/** Fails every in-flight task matching `where` in one statement; returns them. */
export function failWhere(db: CommonQueryMethods, where: ReturnType<typeof sql.fragment>, error: string, reason: string, limit = 10_000) {
  return db.any(sql.type(taskRow)`
    UPDATE taskqueue.task t
    SET status = 'failed', completed_at = now(), error = ${error}, failure_reason = ${reason}, wait_reason = NULL, updated_at = now()
    WHERE t.id IN (SELECT v.id FROM taskqueue.task v WHERE ${where} ORDER BY v.created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    RETURNING ${taskColumnsOf("t")}`);
}

export const inFlightOnRuntime = (runtimeId: string) => sql.fragment`v.runtime_id = ${runtimeId} AND v.status = ANY(${statusList(IN_FLIGHT)})`;

/** Dispatched before `cutoff` and not being prepared (no live lease). */
export const dispatchedBefore = (cutoff: Date) =>
  sql.fragment`v.status = 'dispatched' AND v.dispatched_at < ${sql.timestamp(cutoff)}
    AND (v.prepare_lease_expires_at IS NULL OR v.prepare_lease_expires_at <= now())`;
export const runningBefore = (cutoff: Date) => sql.fragment`v.status = 'running' AND v.started_at < ${sql.timestamp(cutoff)}`;
export const queuedBefore = (cutoff: Date) => sql.fragment`v.status = 'queued' AND v.created_at < ${sql.timestamp(cutoff)}`;

/**
 * Runtimes with a dispatched, never-started task whose answer became "lost"
 * within [from, to): the later of the end of its recovery window and of its
 * prepare lease fell in that span. The claim hands it out again, and the
 * runtime's daemon is told so it need not wait for its poll.
 */
export async function runtimesWithRedeliveryDue(db: CommonQueryMethods, from: Date, to: Date, recoveryWindowMs: number) {
  const due = sql.fragment`greatest(dispatched_at + make_interval(secs => ${recoveryWindowMs / 1000}), prepare_lease_expires_at)`;
  return db.anyFirst(sql.type(z.object({ runtime_id: z.string() }))`
    SELECT DISTINCT runtime_id FROM taskqueue.task
    WHERE status = 'dispatched' AND started_at IS NULL
      AND ${due} >= ${sql.timestamp(from)} AND ${due} < ${sql.timestamp(to)}`);
}

/** Cancels every non-terminal task of a runtime (it no longer exists). */
export function cancelOnRuntime(db: CommonQueryMethods, runtimeId: string) {
  return db.any(sql.type(taskRow)`
    UPDATE taskqueue.task t SET status = 'cancelled', completed_at = now(), wait_reason = NULL, updated_at = now()
    WHERE t.runtime_id = ${runtimeId} AND t.status = ANY(${statusList(NON_TERMINAL)})
    RETURNING ${taskColumnsOf("t")}`);
}

/**
 * Records the resume pointer while the task is dispatched or running, or
 * once cancelled while it has no session yet (a run cancelled before its
 * session id arrived still names it).
 */
export async function pinSession(db: CommonQueryMethods, id: string, sessionId: string | null, workDir: string | null) {
  await db.query(sql.unsafe`
    UPDATE taskqueue.task
    SET session_id = coalesce(${sessionId}, session_id), work_dir = coalesce(${workDir}, work_dir), updated_at = now()
    WHERE id = ${id} AND (status IN ('dispatched', 'running') OR (status = 'cancelled' AND session_id IS NULL))`);
}

/**
 * A task's measured size for paging: UTF-8 bytes of its variable-length
 * fields as the Task message carries them (result and context as JSON text).
 */
const taskBytesOf = (alias: string) => {
  const t = sql.identifier([alias]);
  return sql.fragment`(coalesce(octet_length(${t}.result::text), 0) + coalesce(octet_length(${t}.error), 0)
    + octet_length(${t}.claim_context::text) + coalesce(octet_length(${t}.trigger_summary), 0)
    + coalesce(octet_length(${t}.session_id), 0) + coalesce(octet_length(${t}.work_dir), 0)
    + coalesce(octet_length(${t}.wait_reason), 0) + coalesce(octet_length(${t}.failure_reason), 0)
    + coalesce(octet_length(${t}.branch_name), 0) + coalesce(octet_length(${t}.durable_work_dir), 0)
    + coalesce(octet_length(${t}.retired_session_id), 0))`;
};

const pagedTaskRow = taskRow.extend({
  /** created_at in microseconds since the epoch, exact (the page cursor's precision). */
  created_us: z.string(),
  /** Rows the page query looked at: more than it returned means more follow. */
  fetched: z.number(),
});

export type PagedTaskRow = z.infer<typeof pagedTaskRow>;

/** How big a page may get: at most `rows` tasks, and (past the first) at most `budgetBytes` counting `rowOverheadBytes` each. */
export interface TaskPageBounds {
  rows: number;
  budgetBytes: number;
  rowOverheadBytes: number;
}

/**
 * One page of a runtime's queued and dispatched tasks, by priority then age
 * (priority desc, created_at, id). Tasks are taken while their running size
 * stays within the budget (the first always); one more row than the page is
 * looked at, sizes only, to tell whether more follow.
 */
export function listPendingPage(db: CommonQueryMethods, runtimeId: string, after: Cursor<"pending"> | undefined, bounds: TaskPageBounds) {
  const afterCursor = after
    ? sql.fragment`AND (-t.priority, t.created_at, t.id)
        > (${-after.priority}, 'epoch'::timestamptz + ${after.us}::bigint * interval '1 microsecond', ${after.id}::uuid)`
    : sql.fragment``;
  return db.any(sql.type(pagedTaskRow)`
    SELECT ${taskColumnsOf("p")}, (extract(epoch FROM p.created_at) * 1000000)::bigint::text AS created_us, p.fetched::integer AS fetched
    FROM (
      SELECT s.*, count(*) OVER () AS fetched
      FROM (
        SELECT t.*, row_number() OVER w AS n, sum(${taskBytesOf("t")} + ${bounds.rowOverheadBytes}) OVER w AS running
        FROM taskqueue.task t
        WHERE t.runtime_id = ${runtimeId} AND t.status IN ('queued', 'dispatched') ${afterCursor}
        WINDOW w AS (ORDER BY t.priority DESC, t.created_at, t.id ROWS UNBOUNDED PRECEDING)
        ORDER BY t.priority DESC, t.created_at, t.id
        LIMIT ${bounds.rows + 1}
      ) s
    ) p
    WHERE p.n = 1 OR (p.n <= ${bounds.rows} AND p.running <= ${bounds.budgetBytes})
    ORDER BY p.priority DESC, p.created_at, p.id`);
}

/**
 * One page of a workspace's tasks (optionally of one issue, optionally only
 * unfinished ones), newest first (created_at desc, id desc), bounded like
 * `listPendingPage`.
 */
export function listTasksPage(
  db: CommonQueryMethods,
  filter: { workspaceId: string; issueId: string | null; activeOnly: boolean },
  after: Cursor<"tasks"> | undefined,
  bounds: TaskPageBounds,
) {
  const afterCursor = after
    ? sql.fragment`AND (t.created_at, t.id) < ('epoch'::timestamptz + ${after.us}::bigint * interval '1 microsecond', ${after.id}::uuid)`
    : sql.fragment``;
  return db.any(sql.type(pagedTaskRow)`
    SELECT ${taskColumnsOf("p")}, (extract(epoch FROM p.created_at) * 1000000)::bigint::text AS created_us, p.fetched::integer AS fetched
    FROM (
      SELECT s.*, count(*) OVER () AS fetched
      FROM (
        SELECT t.*, row_number() OVER w AS n, sum(${taskBytesOf("t")} + ${bounds.rowOverheadBytes}) OVER w AS running
        FROM taskqueue.task t
        WHERE t.workspace_id = ${filter.workspaceId}
          AND (${filter.issueId}::uuid IS NULL OR t.issue_id = ${filter.issueId})
          AND (NOT ${filter.activeOnly} OR t.status = ANY(${statusList(NON_TERMINAL)}))
          ${afterCursor}
        WINDOW w AS (ORDER BY t.created_at DESC, t.id DESC ROWS UNBOUNDED PRECEDING)
        ORDER BY t.created_at DESC, t.id DESC
        LIMIT ${bounds.rows + 1}
      ) s
    ) p
    WHERE p.n = 1 OR (p.n <= ${bounds.rows} AND p.running <= ${bounds.budgetBytes})
    ORDER BY p.created_at DESC, p.id DESC`);
}

/** Moves every task of one runtime to another (legacy merge); returns how many. */
export async function moveRuntime(db: CommonQueryMethods, fromRuntimeId: string, toRuntimeId: string) {
  const result = await db.query(sql.unsafe`
    UPDATE taskqueue.task SET runtime_id = ${toRuntimeId}, updated_at = now() WHERE runtime_id = ${fromRuntimeId}`);
  return result.rowCount;
}

export async function upsertAgentLimit(db: CommonQueryMethods, agentId: string, maxConcurrentTasks: number) {
  await db.query(sql.unsafe`
    INSERT INTO taskqueue.agent_limit (agent_id, max_concurrent_tasks) VALUES (${agentId}, ${maxConcurrentTasks})
    ON CONFLICT (agent_id) DO UPDATE SET max_concurrent_tasks = excluded.max_concurrent_tasks, updated_at = now()`);
}

export type { TaskRow };

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

const completedRow = taskRow.extend({ first_execution: z.boolean() });

/** What today's daemon adds to a terminal report (complete or fail); null: not reported. */
export interface RunOutcome {
  branchName: string | null;
  durableWorkDir: string | null;
  sessionRolloutMissing: boolean;
  retiredSessionId: string | null;
}

/**
 * The columns a terminal report writes besides its own: branch and durable
 * dir only when reported (never cleared), the rollout flag, the retired
 * session; the session itself is not kept when its rollout is missing or
 * when it is the one retired.
 */
function outcomeColumns(o: RunOutcome, sessionId: ReturnType<typeof sql.fragment>) {
  return sql.fragment`
    branch_name = coalesce(${o.branchName}, branch_name),
    durable_work_dir = coalesce(${o.durableWorkDir}, durable_work_dir),
    session_rollout_missing = ${o.sessionRolloutMissing},
    retired_session_id = coalesce(${o.retiredSessionId}, retired_session_id),
    session_id = CASE WHEN ${o.sessionRolloutMissing} THEN NULL
                      ELSE nullif(${sessionId}, ${o.retiredSessionId}::text) END`;
}

/**
 * The earlier tasks of the same agent and issue, or of the same chat
 * session, that still name `retired` as their session no longer do: a
 * retired session is nobody's resume pointer (the claim resumes from the
 * latest task with a session). A CTE after `finished`, the task just ended.
 */
function retireSession(retired: string | null) {
  return sql.fragment`
    retired AS (
      UPDATE taskqueue.task p SET session_id = NULL, updated_at = now()
      FROM finished f
      WHERE ${retired}::text IS NOT NULL AND p.id <> f.id AND p.session_id = ${retired}::text
        AND ((f.issue_id IS NOT NULL AND p.issue_id = f.issue_id AND p.agent_id = f.agent_id)
          OR (f.issue_id IS NULL AND f.chat_session_id IS NOT NULL AND p.chat_session_id = f.chat_session_id)))`;
}

/**
 * running -> completed, and in the same statement: the task's tokens are
 * revoked (whatever its state), the issue's first execution recorded, and a
 * retired session taken off the earlier tasks. No row when the task was not
 * running.
 */
export function complete(
  db: CommonQueryMethods,
  id: string,
  result: Record<string, string | boolean>,
  sessionId: string | null,
  workDir: string | null,
  outcome: RunOutcome,
) {
  return db.maybeOne(sql.type(completedRow)`
    WITH finished AS (
      UPDATE taskqueue.task
      SET status = 'completed', completed_at = now(), result = ${sql.jsonb(result)},
          work_dir = ${workDir}, ${outcomeColumns(outcome, sql.fragment`${sessionId}::text`)}, updated_at = now()
      WHERE id = ${id} AND status = 'running'
      RETURNING *),
    revoked AS (DELETE FROM taskqueue.task_token WHERE task_id = ${id}),
    first AS (
      INSERT INTO taskqueue.issue_first_execution (issue_id, task_id)
      SELECT issue_id, id FROM finished WHERE issue_id IS NOT NULL
      ON CONFLICT DO NOTHING
      RETURNING issue_id),
    ${retireSession(outcome.retiredSessionId)}
    SELECT ${taskColumnsOf("finished")}, EXISTS (SELECT 1 FROM first) AS first_execution FROM finished`);
}

/** A task's event name as the caller knows it; "" for a work item it has none of. */
export interface KnownRef {
  workspaceId: string;
  agentId: string;
  runtimeId: string;
  issueId: string;
  chatSessionId: string;
  autopilotRunId: string;
}

/** A completion of a task whose event name the caller knew beforehand (see completeMany). */
export interface KnownCompletion {
  known: KnownRef;
  result: Record<string, string | boolean>;
  sessionId: string | null;
  workDir: string | null;
  outcome: RunOutcome;
}

/**
 * In `completeMany`'s events, keyed by task id: task.completed is written
 * when its task was completed, issue.first_executed when that was also its
 * issue's first execution.
 */
export const COMPLETION_EVENT_HOLDS = sql.fragment`
  CASE e.event_type WHEN 'task.completed' THEN e.key::uuid IN (SELECT id FROM finished)
                    WHEN 'issue.first_executed' THEN e.key::uuid IN (SELECT task_id FROM first) END`;

export type CompletedRow = z.infer<typeof completedRow>;

/**
 * `complete` for many tasks whose event names the caller knew beforehand,
 * by task id, with their events in the same statement (`events`: an INSERT
 * whose rows, keyed by task id, test COMPLETED / FIRST_EXECUTION), so no
 * transaction is needed. Each task must still be running and named as its
 * `known` says, else it is left out of the answer with nothing written for
 * it but the revocation of its tokens (as for a task not running); the
 * caller then takes the path that reads the row. A session retired by one
 * completion is taken off the earlier tasks, not off the others of the
 * batch: they are written by their own reports, as if they ran after it.
 * Every column goes as an array, so the text is the same for any batch.
 */
export async function completeMany(
  db: CommonQueryMethods,
  completions: ReadonlyMap<string, KnownCompletion>,
  events: ReturnType<typeof sql.fragment>,
): Promise<Map<string, CompletedRow>> {
  const items = [...completions];
  const column = (type: string, pick: (c: KnownCompletion) => string | boolean | null) =>
    sql.array(
      items.map(([, c]) => pick(c)),
      type,
    );
  const optional = (value: string) => (value === "" ? null : value);
  const rows = await db.any(sql.type(completedRow)`
    WITH input AS (
      SELECT * FROM unnest(
        ${sql.array(
          items.map(([id]) => id),
          "uuid",
        )}, ${column("jsonb", (c) => JSON.stringify(c.result))}, ${column("text", (c) => c.sessionId)}, ${column("text", (c) => c.workDir)},
        ${column("text", (c) => c.outcome.branchName)}, ${column("text", (c) => c.outcome.durableWorkDir)},
        ${column("bool", (c) => c.outcome.sessionRolloutMissing)}, ${column("text", (c) => c.outcome.retiredSessionId)},
        ${column("uuid", (c) => c.known.workspaceId)}, ${column("uuid", (c) => c.known.agentId)}, ${column("uuid", (c) => c.known.runtimeId)},
        ${column("uuid", (c) => optional(c.known.issueId))}, ${column("uuid", (c) => optional(c.known.chatSessionId))},
        ${column("uuid", (c) => optional(c.known.autopilotRunId))}
      ) AS i(id, result, session_id, work_dir, branch_name, durable_work_dir, rollout_missing, retired_session_id,
             workspace_id, agent_id, runtime_id, issue_id, chat_session_id, autopilot_run_id)),
    finished AS (
      UPDATE taskqueue.task t
      SET status = 'completed', completed_at = now(), result = i.result, work_dir = i.work_dir,
          branch_name = coalesce(i.branch_name, t.branch_name),
          durable_work_dir = coalesce(i.durable_work_dir, t.durable_work_dir),
          session_rollout_missing = i.rollout_missing,
          retired_session_id = coalesce(i.retired_session_id, t.retired_session_id),
          session_id = CASE WHEN i.rollout_missing THEN NULL ELSE nullif(i.session_id, i.retired_session_id) END,
          updated_at = now()
      FROM input i
      WHERE t.id = i.id AND t.status = 'running'
        AND t.workspace_id = i.workspace_id AND t.agent_id = i.agent_id AND t.runtime_id = i.runtime_id
        AND t.issue_id IS NOT DISTINCT FROM i.issue_id AND t.chat_session_id IS NOT DISTINCT FROM i.chat_session_id
        AND t.autopilot_run_id IS NOT DISTINCT FROM i.autopilot_run_id
      RETURNING t.*, i.retired_session_id AS retiring),
    revoked AS (DELETE FROM taskqueue.task_token WHERE task_id IN (SELECT id FROM input)),
    first AS (
      INSERT INTO taskqueue.issue_first_execution (issue_id, task_id)
      SELECT issue_id, id FROM finished WHERE issue_id IS NOT NULL
      ON CONFLICT DO NOTHING
      RETURNING issue_id, task_id),
    retired AS (
      UPDATE taskqueue.task p SET session_id = NULL, updated_at = now()
      FROM finished f
      WHERE f.retiring IS NOT NULL AND p.session_id = f.retiring AND p.id NOT IN (SELECT id FROM input)
        AND ((f.issue_id IS NOT NULL AND p.issue_id = f.issue_id AND p.agent_id = f.agent_id)
          OR (f.issue_id IS NULL AND f.chat_session_id IS NOT NULL AND p.chat_session_id = f.chat_session_id))),
    events AS (${events})
    SELECT ${taskColumnsOf("finished")}, finished.id IN (SELECT task_id FROM first) AS first_execution FROM finished`);
  return new Map(rows.map((row) => [row.id, row]));
}

/** dispatched | running | waiting_local_directory -> failed; the resume pointer kept unless given (or not keepable). */
export function fail(
  db: CommonQueryMethods,
  id: string,
  error: string,
  reason: string,
  sessionId: string | undefined,
  workDir: string | undefined,
  outcome: RunOutcome,
) {
  return db.maybeOne(sql.type(taskRow)`
    WITH finished AS (
      UPDATE taskqueue.task
      SET status = 'failed', completed_at = now(), error = ${error}, failure_reason = ${reason}, wait_reason = NULL,
          work_dir = coalesce(${workDir ?? null}, work_dir),
          ${outcomeColumns(outcome, sql.fragment`coalesce(${sessionId ?? null}, session_id)`)}, updated_at = now()
      WHERE id = ${id} AND status = ANY(${statusList(IN_FLIGHT)})
      RETURNING *),
    ${retireSession(outcome.retiredSessionId)}
    SELECT ${taskColumnsOf("finished")} FROM finished`);
}

/** What a daemon reports after a cancellation; null: not reported (or blank). */
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

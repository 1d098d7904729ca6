import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";
import { IN_FLIGHT, statusList, taskColumnsOf, taskRow } from "./rows.js";

// A task's terminal reports: completion (one task, or many together) and failure.

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

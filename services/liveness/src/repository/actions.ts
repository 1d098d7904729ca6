import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";
import { ACTION_TIMEOUTS, type ActionKindName } from "../config.js";

const actionRow = z.object({
  id: z.string(),
  runtime_id: z.string(),
  workspace_id: z.string(),
  kind: z.enum(["update", "model_list", "local_skills", "local_skill_import"]),
  status: z.string(),
  request_json: z.string(),
  result_json: z.string().nullable(),
  error: z.string().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  run_started_at: z.date().nullable(),
});

export type ActionRow = z.infer<typeof actionRow>;

const columns = sql.fragment`
  id, runtime_id, workspace_id, kind, status, request::text AS request_json, result::text AS result_json, error,
  created_at, updated_at, run_started_at`;

export const TERMINAL = ["completed", "failed", "timeout", "conflict"];

export function insertAction(
  db: CommonQueryMethods,
  a: { id: string; runtimeId: string; workspaceId: string; kind: ActionKindName; request: Record<string, unknown>; requestedBy: string | null },
) {
  return db.one(sql.type(actionRow)`
    INSERT INTO liveness.pending_action (id, runtime_id, workspace_id, kind, request, requested_by)
    VALUES (${a.id}, ${a.runtimeId}, ${a.workspaceId}, ${a.kind}, ${sql.jsonb(a.request as never)}, ${a.requestedBy})
    RETURNING ${columns}`);
}

/** The timeout rule of one kind as SQL: pending or running for too long. */
function expired(kind: ActionKindName) {
  const t = ACTION_TIMEOUTS[kind];
  return sql.fragment`((status = 'pending' AND created_at < now() - make_interval(secs => ${t.pendingMs / 1000}))
    OR (status = 'running' AND run_started_at < now() - make_interval(secs => ${t.runningMs / 1000})))`;
}

/**
 * Applies the timeout lazily (on every read): a pending or running action past
 * its time becomes `timeout` with the kind's text. Returns the timed-out rows.
 */
export function expire(db: CommonQueryMethods, id: string, kind: ActionKindName) {
  const t = ACTION_TIMEOUTS[kind];
  return db.maybeOne(sql.type(actionRow)`
    UPDATE liveness.pending_action
    SET status = 'timeout', updated_at = now(),
        error = CASE WHEN status = 'pending' THEN ${t.pending} ELSE ${t.running} END
    WHERE id = ${id} AND ${expired(kind)}
    RETURNING ${columns}`);
}

export function findAction(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(actionRow)`SELECT ${columns} FROM liveness.pending_action WHERE id = ${id}`);
}

/** True when the runtime has an action of this kind waiting (and not yet timed out). */
export function hasPending(db: CommonQueryMethods, runtimeId: string, kind: ActionKindName) {
  const t = ACTION_TIMEOUTS[kind];
  return db.exists(sql.unsafe`
    SELECT 1 FROM liveness.pending_action
    WHERE runtime_id = ${runtimeId} AND kind = ${kind} AND status = 'pending'
      AND created_at >= now() - make_interval(secs => ${t.pendingMs / 1000})`);
}

/**
 * Pops the oldest pending actions of a kind: pending -> running in one
 * statement. Rows another beat holds are skipped, so each action goes to
 * exactly one heartbeat.
 */
export async function pop(db: CommonQueryMethods, runtimeId: string, kind: ActionKindName, limit: number) {
  const t = ACTION_TIMEOUTS[kind];
  const rows = await db.any(sql.type(actionRow)`
    UPDATE liveness.pending_action a SET status = 'running', run_started_at = now(), updated_at = now()
    WHERE a.id IN (
      SELECT p.id FROM liveness.pending_action p
      WHERE p.runtime_id = ${runtimeId} AND p.kind = ${kind} AND p.status = 'pending'
        AND p.created_at >= now() - make_interval(secs => ${t.pendingMs / 1000})
      ORDER BY p.created_at, p.id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING ${sql.fragment`a.id, a.runtime_id, a.workspace_id, a.kind, a.status, a.request::text AS request_json,
      a.result::text AS result_json, a.error, a.created_at, a.updated_at, a.run_started_at`}`);
  // UPDATE ... RETURNING does not keep the subquery's order: oldest first again.
  return [...rows].sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : 1));
}

/**
 * Popped actions of the runtime, among `ids`, back to pending: their beat's
 * answer never reached the daemon. Only rows still running and within their
 * kind's running timeout move, in one statement, so a report or a timeout
 * that got there first keeps its state. Returns the ids that moved.
 */
export function unpop(db: CommonQueryMethods, runtimeId: string, ids: readonly string[]) {
  return db.anyFirst(sql.type(z.object({ id: z.string() }))`
    UPDATE liveness.pending_action
    SET status = 'pending', run_started_at = NULL, updated_at = now()
    WHERE runtime_id = ${runtimeId} AND id = ANY(${sql.array(ids, "text")}) AND status = 'running'
      AND ${withinRunningTimeout()}
    RETURNING id`);
}

/** Running for less than its kind's running timeout (every kind, as one predicate). */
function withinRunningTimeout() {
  const rules = KINDS.map(
    (kind) => sql.fragment`(kind = ${kind} AND run_started_at >= now() - make_interval(secs => ${ACTION_TIMEOUTS[kind].runningMs / 1000}))`,
  );
  return sql.fragment`(${sql.join(rules, sql.fragment` OR `)})`;
}

/** Finishes a non-terminal action; null when it was already terminal. */
export function finish(db: CommonQueryMethods, id: string, status: string, result: string | null, error: string | null) {
  return db.maybeOne(sql.type(actionRow)`
    UPDATE liveness.pending_action
    SET status = ${status}, result = coalesce(${result}::jsonb, result), error = ${error}, updated_at = now()
    WHERE id = ${id} AND status <> ALL(${sql.array(TERMINAL, "text")})
    RETURNING ${columns}`);
}

/** Runtimes with at least one pending action (the probe index is rebuilt from it). */
export function runtimesWithPending(db: CommonQueryMethods) {
  return db.anyFirst(sql.type(z.object({ runtime_id: z.string() }))`
    SELECT DISTINCT runtime_id FROM liveness.pending_action WHERE status = 'pending'`);
}

/**
 * Deletes at most `limit` finished actions (any status but pending and
 * running) created before `cutoff`, oldest first; returns how many went.
 */
export async function deleteFinishedBefore(db: CommonQueryMethods, cutoff: Date, limit: number) {
  return (
    await db.query(sql.unsafe`
    DELETE FROM liveness.pending_action WHERE id IN (
      SELECT id FROM liveness.pending_action
      WHERE created_at < ${sql.timestamp(cutoff)} AND status <> ALL(${sql.array(["pending", "running"], "text")})
      ORDER BY created_at
      LIMIT ${limit})`)
  ).rowCount;
}

export const KINDS = Object.keys(ACTION_TIMEOUTS) as ActionKindName[];

/** Every overdue pending or running action of a kind becomes `timeout`, in one statement. */
export function expireOverdue(db: CommonQueryMethods, kind: ActionKindName) {
  const t = ACTION_TIMEOUTS[kind];
  return db.any(sql.type(actionRow)`
    UPDATE liveness.pending_action
    SET status = 'timeout', updated_at = now(),
        error = CASE WHEN status = 'pending' THEN ${t.pending} ELSE ${t.running} END
    WHERE kind = ${kind} AND ${expired(kind)}
    RETURNING ${columns}`);
}

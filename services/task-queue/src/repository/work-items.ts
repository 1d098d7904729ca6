import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";
import { NON_TERMINAL, statusList, taskColumnsOf, taskRow } from "./rows.js";

/** What the product reports about a live item. */
export interface WorkItemReport {
  kind: string;
  id: string;
  workspace_id: string;
  status: string;
  updated_at: Date;
  completed_at: Date | null;
  number: number | null;
  parent_id: string | null;
}

const workItemRow = z.object({
  kind: z.string(),
  id: z.string(),
  workspace_id: z.string().nullable(),
  status: z.string(),
  updated_at: z.date(),
  completed_at: z.date().nullable(),
  number: z.number().nullable(),
  parent_id: z.string().nullable(),
  deleted_at: z.date().nullable(),
  /** Autopilot runs: their autopilot was recorded deleted. */
  parent_deleted: z.boolean(),
});

export type WorkItemRow = z.infer<typeof workItemRow>;

/**
 * Records the newest state the product reported: older reports do not win,
 * and nothing changes an item recorded deleted.
 */
export async function upsertWorkItem(db: CommonQueryMethods, w: WorkItemReport) {
  await db.query(sql.unsafe`
    INSERT INTO taskqueue.work_item (kind, id, workspace_id, status, updated_at, completed_at, number, parent_id)
    VALUES (${w.kind}, ${w.id}, ${w.workspace_id}, ${w.status}, ${sql.timestamp(w.updated_at)},
            ${w.completed_at ? sql.timestamp(w.completed_at) : null}, ${w.number}, ${w.parent_id})
    ON CONFLICT (kind, id) DO UPDATE SET
      workspace_id = excluded.workspace_id, status = excluded.status,
      updated_at = excluded.updated_at, completed_at = excluded.completed_at,
      number = excluded.number, parent_id = excluded.parent_id
    WHERE work_item.updated_at <= excluded.updated_at AND work_item.deleted_at IS NULL`);
}

const columns = sql.fragment`
  w.kind, w.id, w.workspace_id, w.status, w.updated_at, w.completed_at, w.number, w.parent_id, w.deleted_at,
  (a.deleted_at IS NOT NULL) AS parent_deleted`;
const parentJoin = sql.fragment`LEFT JOIN taskqueue.work_item a ON w.kind = 'autopilot_run' AND a.kind = 'autopilot' AND a.id = w.parent_id`;

/** The recorded item, deleted or not; null when never recorded. */
export function findWorkItem(db: CommonQueryMethods, kind: string, id: string) {
  return db.maybeOne(sql.type(workItemRow)`
    SELECT ${columns} FROM taskqueue.work_item w ${parentJoin}
    WHERE w.kind = ${kind} AND w.id = ${id}`);
}

/** The live issues of a workspace among `ids` (each once). */
export function findLiveIssues(db: CommonQueryMethods, workspaceId: string, ids: readonly string[]) {
  return db.any(sql.type(workItemRow)`
    SELECT ${columns} FROM taskqueue.work_item w ${parentJoin}
    WHERE w.kind = 'issue' AND w.id = ANY(${sql.array([...ids], "uuid")})
      AND w.workspace_id = ${workspaceId} AND w.deleted_at IS NULL`);
}

/** The recorded items among a task's links (each id may be null), deleted or not. */
export function findLinks(db: CommonQueryMethods, links: { issueId: string | null; chatSessionId: string | null; autopilotRunId: string | null }) {
  return db.any(sql.type(workItemRow)`
    SELECT ${columns} FROM taskqueue.work_item w ${parentJoin}
    WHERE (w.kind = 'issue' AND w.id = ${links.issueId}::uuid)
       OR (w.kind = 'chat_session' AND w.id = ${links.chatSessionId}::uuid)
       OR (w.kind = 'autopilot_run' AND w.id = ${links.autopilotRunId}::uuid)`);
}

/** The live issue of a workspace with this number (the newest report when several claim it). */
export function findIssueByNumber(db: CommonQueryMethods, workspaceId: string, number: number) {
  return db.maybeOneFirst(sql.type(z.object({ id: z.string() }))`
    SELECT id FROM taskqueue.work_item
    WHERE kind = 'issue' AND workspace_id = ${workspaceId} AND number = ${number} AND deleted_at IS NULL
    ORDER BY updated_at DESC, id
    LIMIT 1`);
}

/** Whether any task of this workspace works on the issue (an issue the product never recorded). */
export async function issueHasTasks(db: CommonQueryMethods, workspaceId: string, issueId: string): Promise<boolean> {
  return db.exists(sql.unsafe`
    SELECT 1 FROM taskqueue.task WHERE issue_id = ${issueId} AND workspace_id = ${workspaceId}`);
}

/**
 * Marks the item deleted (a tombstone when it was never recorded). Returns
 * whether this call deleted it: false when it already was.
 */
export async function markDeleted(db: CommonQueryMethods, kind: string, id: string, deletedAt: Date): Promise<boolean> {
  const row = await db.maybeOne(sql.type(z.object({ id: z.string() }))`
    INSERT INTO taskqueue.work_item AS w (kind, id, workspace_id, status, updated_at, deleted_at)
    VALUES (${kind}, ${id}, NULL, '', ${sql.timestamp(deletedAt)}, ${sql.timestamp(deletedAt)})
    ON CONFLICT (kind, id) DO UPDATE SET deleted_at = excluded.deleted_at
    WHERE w.deleted_at IS NULL
    RETURNING w.id`);
  return row !== null;
}

/**
 * Cancels the unfinished tasks a deleted item leaves without a reason to
 * run, in one statement: every task of an issue or chat session; of an
 * autopilot run, or of any run of an autopilot, those without an issue.
 */
export function cancelTasksOfDeleted(db: CommonQueryMethods, kind: string, id: string) {
  const which =
    kind === "issue"
      ? sql.fragment`t.issue_id = ${id}`
      : kind === "chat_session"
        ? sql.fragment`t.chat_session_id = ${id}`
        : kind === "autopilot_run"
          ? sql.fragment`t.autopilot_run_id = ${id} AND t.issue_id IS NULL`
          : sql.fragment`t.autopilot_run_id IN (
              SELECT r.id FROM taskqueue.work_item r WHERE r.kind = 'autopilot_run' AND r.parent_id = ${id})
            AND t.issue_id IS NULL`;
  return db.any(sql.type(taskRow)`
    UPDATE taskqueue.task t SET status = 'cancelled', completed_at = now(), wait_reason = NULL, updated_at = now()
    WHERE ${which} AND t.status = ANY(${statusList(NON_TERMINAL)})
    RETURNING ${taskColumnsOf("t")}`);
}

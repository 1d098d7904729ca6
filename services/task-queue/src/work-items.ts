import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@controlplane/grpc";
import { INT32_MAX, LIMITS } from "@controlplane/config";
import type { CommonQueryMethods } from "@controlplane/db";
import { parseUuid } from "@controlplane/ids";
import type { WorkItem } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { afterCancellations } from "./cancellations.js";
import type { TaskQueueDeps } from "./deps.js";
import { requireUuid } from "./ids.js";
import * as repo from "./repository/work-items.js";
import { requireLength, storableText } from "./text.js";

const KINDS = new Set(["issue", "chat_session", "autopilot_run"]);
/** Kinds whose deletion the product records: the work items, and autopilots (their runs go with them). */
const DELETABLE = new Set([...KINDS, "autopilot"]);
/** The contract's 404 messages of the gc-checks (and of enqueue for a deleted item). */
export const NOT_FOUND: Record<string, string> = {
  issue: "issue not found",
  chat_session: "chat session not found",
  autopilot_run: "autopilot run not found",
};
const LABEL: Record<string, string> = { issue: "issue", chat_session: "chat session", autopilot_run: "autopilot run" };

/**
 * Issues, chat sessions and autopilot runs live in the product, not here; the
 * product records their state so daemons can ask whether a work dir may go,
 * and so a task's workspace is its work item's (checked at enqueue and claim).
 */
export async function recordWorkItem(deps: TaskQueueDeps, item: WorkItem | undefined): Promise<void> {
  if (!item || !KINDS.has(item.kind)) throw new InvalidArgumentError("kind must be issue, chat_session or autopilot_run");
  if (!item.status) throw new InvalidArgumentError("status is required");
  requireLength("status", item.status, LIMITS.NAME_CHARS);
  if (item.number !== undefined && item.kind !== "issue") throw new InvalidArgumentError("number is for issues only");
  if (item.number !== undefined && item.number <= 0) throw new InvalidArgumentError("number must be positive");
  if (item.autopilotId && item.kind !== "autopilot_run") throw new InvalidArgumentError("autopilot_id is for autopilot runs only");
  await repo.upsertWorkItem(deps.pool, {
    kind: item.kind,
    id: requireUuid(item.id, "id"),
    workspace_id: requireUuid(item.workspaceId, "workspace_id"),
    status: storableText(item.status),
    updated_at: item.updatedAt ?? new Date(),
    completed_at: item.completedAt ?? null,
    number: item.number ?? null,
    parent_id: item.autopilotId ? requireUuid(item.autopilotId, "autopilot_id") : null,
  });
}

/** A live recorded item; NOT_FOUND with the contract's message when it is unknown or gone. */
export async function getWorkItem(deps: TaskQueueDeps, kind: string, id: string): Promise<WorkItem> {
  if (!KINDS.has(kind)) throw new InvalidArgumentError("kind must be issue, chat_session or autopilot_run");
  const row = await repo.findWorkItem(deps.pool, kind, requireUuid(id, "id"));
  if (!row || isGone(row)) throw new NotFoundError(NOT_FOUND[kind]!);
  return workItemOf(row);
}

function workItemOf(row: repo.WorkItemRow): WorkItem {
  return {
    kind: row.kind,
    id: row.id,
    workspaceId: row.workspace_id!,
    status: row.status,
    updatedAt: row.updated_at,
    completedAt: row.completed_at ?? undefined,
    number: row.number ?? undefined,
    autopilotId: row.parent_id ?? undefined,
  };
}

/**
 * The daemon's batch disk-GC check: the live issues of the workspace among
 * the ids (at most LIMITS.GC_CHECK_ISSUE_IDS, every one a UUID, else
 * INVALID_ARGUMENT with the original's text). Unknown, deleted and foreign
 * issues are left out; the caller answers them "not found".
 */
export async function checkIssues(deps: TaskQueueDeps, workspaceId: string, issueIds: readonly string[]): Promise<WorkItem[]> {
  const workspace = requireUuid(workspaceId, "workspace_id");
  if (issueIds.length > LIMITS.GC_CHECK_ISSUE_IDS) throw new InvalidArgumentError("too many issue_ids");
  const ids = new Set(issueIds.map((id) => requireUuid(id, "issue_id")));
  if (ids.size === 0) return [];
  return (await repo.findLiveIssues(deps.pool, workspace, [...ids])).map(workItemOf);
}

/**
 * Records a deletion in the product and cancels the tasks it leaves without
 * a reason to run (see DeleteWorkItem in the proto). Repeating it changes
 * nothing more.
 */
export async function deleteWorkItem(deps: TaskQueueDeps, kind: string, id: string, deletedAt: Date | undefined): Promise<number> {
  if (!DELETABLE.has(kind)) throw new InvalidArgumentError("kind must be issue, chat_session, autopilot_run or autopilot");
  const itemId = requireUuid(id, "id");
  const cancelled = await deps.outbox.transaction(async (tx) => {
    await repo.markDeleted(tx, kind, itemId, deletedAt ?? new Date());
    const rows = await repo.cancelTasksOfDeleted(tx, kind, itemId);
    await afterCancellations(tx, deps.outbox, rows);
    return rows;
  });
  // Their slots are free: the runtimes may take other work.
  for (const runtime of new Set(cancelled.map((row) => row.runtime_id))) deps.wake.notify(runtime);
  return cancelled.length;
}

function isGone(row: repo.WorkItemRow): boolean {
  return row.deleted_at !== null || row.parent_deleted;
}

/** Links of a task about to be queued. */
export interface TaskLinks {
  issueId: string | null;
  chatSessionId: string | null;
  autopilotRunId: string | null;
}

/**
 * Enqueue's workspace check: every link the product recorded must be live
 * and in the agent's workspace. Links never recorded pass (nothing says
 * otherwise; the claim checks again).
 */
export async function requireLinksInWorkspace(db: CommonQueryMethods, links: TaskLinks, workspaceId: string): Promise<void> {
  if (!links.issueId && !links.chatSessionId && !links.autopilotRunId) return;
  const rows = await repo.findLinks(db, links);
  // In the contract's resolution order, so the first problem named is the one that decides.
  for (const kind of ["issue", "chat_session", "autopilot_run"]) {
    const row = rows.find((r) => r.kind === kind);
    if (!row) continue;
    if (isGone(row)) throw new NotFoundError(NOT_FOUND[kind]!);
    if (row.workspace_id !== workspaceId) {
      throw new FailedPreconditionError(`${LABEL[kind]} ${row.id} belongs to workspace ${row.workspace_id}, not to the agent's workspace ${workspaceId}`);
    }
  }
}

/**
 * An issue of the workspace named by identifier ("ABC-42") or UUID, as the
 * original's issue routes find it: the identifier first (by number, the
 * prefix not checked), then the UUID. NOT_FOUND "issue not found" otherwise.
 */
export async function resolveIssue(deps: TaskQueueDeps, workspaceId: string, ref: string): Promise<string> {
  const workspace = requireUuid(workspaceId, "workspace_id");
  const notFound = new NotFoundError(NOT_FOUND.issue!);
  if (ref.length > LIMITS.NAME_CHARS) throw notFound;
  const number = identifierNumber(ref);
  if (number !== null) {
    const id = await repo.findIssueByNumber(deps.pool, workspace, number);
    if (id) return id;
  }
  const issueId = parseUuid(ref);
  if (!issueId) throw notFound;
  const row = await repo.findWorkItem(deps.pool, "issue", issueId);
  if (row) {
    if (isGone(row) || row.workspace_id !== workspace) throw notFound;
    return issueId;
  }
  // Never recorded: known here only through its tasks.
  if (await repo.issueHasTasks(deps.pool, workspace, issueId)) return issueId;
  throw notFound;
}

/**
 * The number of an identifier as the original read it: the digits after the
 * last "-", which must not be the first or last character; the value as Go
 * computed it (an int64 that wraps, then truncated to int32); not positive
 * means "not an identifier". Null when it is not one.
 */
export function identifierNumber(ref: string): number | null {
  const dash = ref.lastIndexOf("-");
  if (dash <= 0 || dash >= ref.length - 1) return null;
  let value = 0n;
  for (const char of ref.slice(dash + 1)) {
    if (char < "0" || char > "9") return null;
    value = BigInt.asIntN(64, value * 10n + BigInt(char.charCodeAt(0) - 48));
  }
  if (value <= 0n) return null;
  const number = Number(BigInt.asIntN(32, value));
  // A wrapped value no issue can have (numbers are positive int32s).
  return number > 0 && number <= INT32_MAX ? number : null;
}

import { InvalidArgumentError, NotFoundError } from "@controlplane/grpc";
import type { WorkItem } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { requireUuid } from "./ids.js";
import * as repo from "./repository/work-items.js";

const KINDS = new Set(["issue", "chat_session", "autopilot_run"]);
const NOT_FOUND: Record<string, string> = {
  issue: "issue not found",
  chat_session: "chat session not found",
  autopilot_run: "autopilot run not found",
};

/**
 * Issues, chat sessions and autopilot runs live in the product, not here; the
 * product records their state so daemons can ask whether a work dir may go.
 */
export async function recordWorkItem(deps: TaskQueueDeps, item: WorkItem | undefined): Promise<void> {
  if (!item || !KINDS.has(item.kind)) throw new InvalidArgumentError("kind must be issue, chat_session or autopilot_run");
  if (!item.status) throw new InvalidArgumentError("status is required");
  await repo.upsertWorkItem(deps.pool, {
    kind: item.kind,
    id: requireUuid(item.id, "id"),
    workspace_id: requireUuid(item.workspaceId, "workspace_id"),
    status: item.status,
    updated_at: item.updatedAt ?? new Date(),
    completed_at: item.completedAt ?? null,
  });
}

export async function getWorkItem(deps: TaskQueueDeps, kind: string, id: string): Promise<WorkItem> {
  if (!KINDS.has(kind)) throw new InvalidArgumentError("kind must be issue, chat_session or autopilot_run");
  const row = await repo.findWorkItem(deps.pool, kind, requireUuid(id, "id"));
  if (!row) throw new NotFoundError(NOT_FOUND[kind]!);
  return {
    kind: row.kind,
    id: row.id,
    workspaceId: row.workspace_id,
    status: row.status,
    updatedAt: row.updated_at,
    completedAt: row.completed_at ?? undefined,
  };
}

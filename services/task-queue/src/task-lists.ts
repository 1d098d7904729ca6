import type { ListPendingTasksResponse, ListTasksResponse } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { requireUuid } from "./ids.js";
import { decodePageToken, encodePageToken, nextPageToken, PAGE_BYTES, pageRows, TASK_ROW_OVERHEAD } from "./paging.js";
import * as tasks from "./repository/tasks.js";
import { taskToProto } from "./task-shape.js";

/** What a caller may say about the page it wants. */
export interface PageRequest {
  pageSize?: number;
  pageToken?: string;
}

/** The bounds of a task page of `rows` rows at most: the shared byte budget, a task's framing counted on top of its text. */
function taskPageBounds(rows: number): tasks.TaskPageBounds {
  return { rows, budgetBytes: PAGE_BYTES, rowOverheadBytes: TASK_ROW_OVERHEAD };
}

/** One page of a runtime's queued and dispatched tasks, by priority then age. */
export async function listPendingTasks(deps: TaskQueueDeps, runtimeId: string, page: PageRequest): Promise<ListPendingTasksResponse> {
  const id = requireUuid(runtimeId, "runtime_id");
  const bounds = taskPageBounds(pageRows(page.pageSize));
  const after = decodePageToken("pending", page.pageToken);
  const rows = await tasks.listPendingPage(deps.pool, id, after, bounds);
  return {
    tasks: rows.map(taskToProto),
    nextPageToken: nextPageToken(rows, (row) => encodePageToken<"pending">({ k: "p", priority: row.priority, us: row.created_us, id: row.id })),
  };
}

/** One page of a workspace's tasks (of one issue, or only unfinished ones, when asked), newest first. */
export async function listTasks(
  deps: TaskQueueDeps,
  filter: { workspaceId: string; issueId?: string; activeOnly: boolean },
  page: PageRequest,
): Promise<ListTasksResponse> {
  const workspaceId = requireUuid(filter.workspaceId, "workspace_id");
  const issueId = filter.issueId === undefined ? null : requireUuid(filter.issueId, "issue_id");
  const bounds = taskPageBounds(pageRows(page.pageSize));
  const after = decodePageToken("tasks", page.pageToken);
  const rows = await tasks.listTasksPage(deps.pool, { workspaceId, issueId, activeOnly: filter.activeOnly }, after, bounds);
  return {
    tasks: rows.map(taskToProto),
    nextPageToken: nextPageToken(rows, (row) => encodePageToken<"tasks">({ k: "t", us: row.created_us, id: row.id })),
  };
}

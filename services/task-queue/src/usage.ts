import type { Usage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { requireTask, requireUuid } from "./ids.js";
import * as usage from "./repository/usage.js";

/** Replaces the counts per (task, provider, model); one bad entry is logged and skipped. */
export async function reportUsage(deps: TaskQueueDeps, taskId: string, entries: Usage[]): Promise<void> {
  const task = await requireTask(deps.pool, taskId);
  for (const entry of entries) {
    try {
      await usage.upsertUsage(deps.pool, task.id, entry);
    } catch (error) {
      deps.log.warn({ err: error, task_id: task.id, model: entry.model }, "usage entry skipped");
    }
  }
}

export async function issueUsage(deps: TaskQueueDeps, workspaceId: string, issueId: string) {
  const totals = await usage.issueUsage(deps.pool, requireUuid(workspaceId, "workspace_id"), requireUuid(issueId, "issue_id"));
  return {
    totalInputTokens: totals.total_input_tokens,
    totalOutputTokens: totals.total_output_tokens,
    totalCacheReadTokens: totals.total_cache_read_tokens,
    totalCacheWriteTokens: totals.total_cache_write_tokens,
    taskCount: totals.task_count,
  };
}

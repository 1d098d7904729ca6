import type { TaskRef } from "@controlplane/proto/events/v1/events";
import { TaskContext, type Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskRow } from "./repository/rows.js";

/** chat, autopilot, quick_create (no issue), comment (issue + trigger comment) or direct. */
export function kindOf(row: Pick<TaskRow, "chat_session_id" | "autopilot_run_id" | "issue_id" | "trigger_comment_id" | "context">): string {
  if (row.chat_session_id) return "chat";
  if (row.autopilot_run_id && !row.issue_id) return "autopilot";
  if (!row.issue_id && row.context?.type === "quick_create") return "quick_create";
  if (row.issue_id && row.trigger_comment_id) return "comment";
  return "direct";
}

export function taskToProto(row: TaskRow): Task {
  return {
    id: row.id,
    agentId: row.agent_id,
    runtimeId: row.runtime_id,
    workspaceId: row.workspace_id,
    issueId: row.issue_id ?? undefined,
    chatSessionId: row.chat_session_id ?? undefined,
    autopilotRunId: row.autopilot_run_id ?? undefined,
    triggerCommentId: row.trigger_comment_id ?? undefined,
    status: row.status,
    priority: row.priority,
    dispatchedAt: row.dispatched_at ?? undefined,
    prepareLeaseExpiresAt: row.prepare_lease_expires_at ?? undefined,
    deliveredCommentIds: row.delivered_comment_ids,
    startedAt: row.started_at ?? undefined,
    completedAt: row.completed_at ?? undefined,
    resultJson: row.result_json ?? undefined,
    error: row.error ?? undefined,
    failureReason: row.failure_reason ?? undefined,
    sessionId: row.session_id ?? undefined,
    workDir: row.work_dir ?? undefined,
    waitReason: row.wait_reason ?? undefined,
    forceFreshSession: row.force_fresh_session,
    initiatorUserId: row.initiator_user_id ?? undefined,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    parentTaskId: row.parent_task_id ?? undefined,
    triggerSummary: row.trigger_summary ?? undefined,
    kind: kindOf(row),
    context: TaskContext.fromJSON(row.claim_context),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    branchName: row.branch_name ?? undefined,
    durableWorkDir: row.durable_work_dir ?? undefined,
    sessionRolloutMissing: row.session_rollout_missing,
    retiredSessionId: row.retired_session_id ?? undefined,
  };
}

/** How task events name a task. */
export function taskRef(row: TaskRow): TaskRef {
  return {
    taskId: row.id,
    agentId: row.agent_id,
    runtimeId: row.runtime_id,
    issueId: row.issue_id ?? "",
    chatSessionId: row.chat_session_id ?? "",
    autopilotRunId: row.autopilot_run_id ?? "",
  };
}

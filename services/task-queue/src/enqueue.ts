import { FailedPreconditionError, hasCode, InvalidArgumentError, NotFoundError, status } from "@controlplane/grpc";
import { TaskContext, type EnqueueTaskRequest, type EnqueueTaskResponse } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { optionalUuid, requireUuid } from "./ids.js";
import * as tasks from "./repository/tasks.js";
import { taskRef, taskToProto } from "./task-shape.js";
import { requireLinksInWorkspace } from "./work-items.js";

/**
 * Queues a task for an agent on the agent's runtime. The agent is read fresh
 * from the registry: it must exist in the workspace and not be archived. One
 * pending task per (agent, issue): a second enqueue returns the pending one.
 * The issue, chat session or autopilot run, when the product recorded it,
 * must be live and in the agent's workspace; the agent or its runtime must
 * have an owner for the task token to act for.
 * Runtimes waiting in a long-poll are woken once the task is committed.
 */
export async function enqueueTask(deps: TaskQueueDeps, req: EnqueueTaskRequest): Promise<EnqueueTaskResponse> {
  const agentId = requireUuid(req.agentId, "agent_id");
  const workspaceId = optionalUuid(req.workspaceId, "workspace_id");
  const issueId = optionalUuid(req.issueId, "issue_id");
  const chatSessionId = optionalUuid(req.chatSessionId, "chat_session_id");
  const autopilotRunId = optionalUuid(req.autopilotRunId, "autopilot_run_id");
  const triggerCommentId = optionalUuid(req.triggerCommentId, "trigger_comment_id");
  const initiatorUserId = optionalUuid(req.initiatorUserId, "initiator_user_id");
  if (req.maxAttempts < 0) throw new InvalidArgumentError("max_attempts must not be negative");

  const { agent } = await deps.registry.getAgent({ agentId }).catch((error: unknown) => {
    if (hasCode(error, status.NOT_FOUND)) throw new NotFoundError("agent not found");
    throw error;
  });
  if (!agent || (workspaceId !== null && agent.workspaceId !== workspaceId)) throw new NotFoundError("agent not found");
  if (agent.archivedAt) throw new FailedPreconditionError("agent is archived");
  if (!agent.runtimeId) throw new FailedPreconditionError("agent has no runtime");
  if (!agent.ownerId) await requireRuntimeOwner(deps, agent.runtimeId);

  const context = req.context ?? TaskContext.fromPartial({});
  const quickCreate = !issueId && !chatSessionId && !autopilotRunId && context.quickCreate;
  const result = await deps.outbox.transaction(async (tx) => {
    await requireLinksInWorkspace(tx, { issueId, chatSessionId, autopilotRunId }, agent.workspaceId);
    await tasks.upsertAgentLimit(tx, agent.id, agent.maxConcurrentTasks);
    const row = await tasks.insertTask(tx, {
      workspaceId: agent.workspaceId,
      agentId: agent.id,
      runtimeId: agent.runtimeId,
      issueId,
      chatSessionId,
      autopilotRunId,
      triggerCommentId,
      triggerSummary: req.triggerSummary ?? null,
      priority: req.priority,
      context: quickCreate ? { type: "quick_create", workspace_id: agent.workspaceId, ...(snakeQuickCreate(context.quickCreate!) as object) } : null,
      claimContext: TaskContext.toJSON(context) as Record<string, unknown>,
      forceFreshSession: req.forceFreshSession,
      initiatorUserId,
      maxAttempts: req.maxAttempts || deps.config.DEFAULT_MAX_ATTEMPTS,
    });
    if (!row) return { row: await tasks.findPending(tx, issueId!, agent.id), deduplicated: true };
    await deps.outbox.write(
      tx,
      "task.queued",
      { task: taskRef(row), priority: row.priority, attempt: row.attempt },
      {
        workspaceId: row.workspace_id,
        actorId: initiatorUserId ?? undefined,
      },
    );
    return { row, deduplicated: false };
  });
  if (!result.row) throw new FailedPreconditionError("a pending task for this issue finished while enqueueing; try again");
  if (!result.deduplicated) deps.wake.notify(result.row.runtime_id, result.row.id);
  return { task: taskToProto(result.row), deduplicated: result.deduplicated };
}

/**
 * The task token acts for the runtime's owner, else for the agent's (a
 * runtime registered with a daemon token has none). With neither, the claim
 * could only cancel the task: refuse it now, saying what to fix.
 */
async function requireRuntimeOwner(deps: TaskQueueDeps, runtimeId: string): Promise<void> {
  const runtime = await deps.reads.runtimes.get(runtimeId).catch((error: unknown) => {
    if (hasCode(error, status.NOT_FOUND)) throw new FailedPreconditionError("the agent's runtime no longer exists");
    throw error;
  });
  if (!runtime.ownerId) {
    throw new FailedPreconditionError(
      "agent has no owner and its runtime has none: nobody to act for; set the agent's owner or register the runtime with a user's token",
    );
  }
}

/** The stored quick-create payload uses the contract's snake_case keys. */
function snakeQuickCreate(q: NonNullable<TaskContext["quickCreate"]>) {
  return {
    prompt: q.prompt,
    requester_id: q.requesterId,
    attachment_ids: q.attachmentIds,
    ...(q.projectId ? { project_id: q.projectId } : {}),
    ...(q.squadId ? { squad_id: q.squadId } : {}),
    ...(q.parentIssueId ? { parent_issue_id: q.parentIssueId } : {}),
  };
}

import type { Agent } from "@controlplane/proto/registry/v1/registry";
import type { ClaimedTask, Task, TaskMessage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { ClientEra } from "./wire/capabilities.js";
import { goAny, GoMap, goMap, RawJson, rfc3339, rfc3339Nano } from "./wire/go-json.js";

/** Keys whose value is empty are left out, as Go's omitempty does. */
function omitEmpty(entries: Array<[string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    if (value === undefined || value === null || value === "" || value === 0 || value === false) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    out[key] = value;
  }
  return out;
}

const time = (date: Date | undefined) => (date ? rfc3339(date) : null);
const raw = (json: string | undefined) => (json === undefined || json === "" ? undefined : new RawJson(json));
/** Stored JSON the original decoded into `any` before writing it (objects become maps: sorted keys). */
const decoded = (json: string | undefined) => (json === undefined || json === "" ? undefined : goAny(json));

/**
 * The task object of every task answer, in the contract's field order (a Go
 * struct). Claim-only keys come from `claim` and are left out otherwise.
 * `result` is decoded into `any` as the original did, so its keys are sorted.
 *
 * For today's daemon (`era`), the keys its server added (contract 13.0,
 * 13.9): `durable_work_dir`, `relative_durable_work_dir` and `branch_name`
 * when set, `delivered_comment_ids` always ([] when none), and on a claim
 * `prior_session_resume_unavailable` when true. The seed-era daemon gets the
 * seed's object, byte for byte.
 */
export function taskJson(task: Task, claim?: ClaimedTask, era: ClientEra = "seed"): Record<string, unknown> {
  const today = (value: unknown) => (era === "today" ? value : undefined);
  const ctx = task.context;
  const quick = ctx?.quickCreate;
  const claimOnly = (value: unknown) => (claim ? value : undefined);
  const workspaceId = claim?.workspaceId ?? task.workspaceId;
  const head = {
    id: task.id,
    agent_id: task.agentId,
    runtime_id: task.runtimeId,
    issue_id: task.issueId ?? "",
    workspace_id: workspaceId,
  };
  const claimHead = omitEmpty([
    ["workspace_context", claimOnly(claim?.workspaceContext)],
    ["thread_name", claimOnly(ctx?.threadName || quick?.prompt)],
  ]);
  const state = {
    status: task.status,
    priority: task.priority,
    dispatched_at: time(task.dispatchedAt),
    started_at: time(task.startedAt),
    completed_at: time(task.completedAt),
    result: decoded(task.resultJson) ?? null,
    error: task.error ?? null,
  };
  const initiatorFromTask = task.initiatorUserId ? { type: "member", id: task.initiatorUserId } : undefined;
  const middle = omitEmpty([["failure_reason", task.failureReason]]);
  const counts = { attempt: task.attempt, max_attempts: task.maxAttempts };
  const afterCounts = omitEmpty([
    ["parent_task_id", task.parentTaskId],
    ["agent", claimOnly(claim?.agent ? agentJson(claim.agent) : undefined)],
    ["repos", claimOnly(raw(claim?.reposJson))],
    ["project_id", claimOnly(ctx?.projectId ?? quick?.projectId)],
    ["project_title", claimOnly(ctx?.projectTitle)],
    ["project_resources", claimOnly(raw(ctx?.projectResourcesJson))],
  ]);
  const created = { created_at: rfc3339(task.createdAt ?? new Date(0)) };
  const tail = omitEmpty([
    ["prior_session_id", claimOnly(claim?.priorSessionId)],
    ["prior_work_dir", claimOnly(claim?.priorWorkDir)],
    ["prior_session_resume_unavailable", today(claimOnly(claim?.priorSessionResumeUnavailable))],
    ["work_dir", task.workDir],
    ["relative_work_dir", task.workDir ? relativeWorkDir(task.workDir, workspaceId, task.id) : undefined],
    ["durable_work_dir", today(task.durableWorkDir)],
    ["relative_durable_work_dir", today(task.durableWorkDir ? relativeWorkDir(task.durableWorkDir, workspaceId, task.id) : undefined)],
    ["branch_name", today(task.branchName)],
    ["trigger_comment_id", task.triggerCommentId],
  ]);
  // Always there for today's daemon, even empty (a receipt; absent means "an older server").
  const receipt = era === "today" ? { delivered_comment_ids: task.deliveredCommentIds ?? [] } : {};
  const afterReceipt = omitEmpty([
    ["trigger_thread_id", claimOnly(ctx?.triggerThreadId)],
    ["trigger_comment_content", claimOnly(ctx?.triggerCommentContent)],
    ["trigger_summary", task.triggerSummary],
    ["trigger_author_type", claimOnly(ctx?.triggerAuthorType)],
    ["trigger_author_name", claimOnly(ctx?.triggerAuthorName)],
    ["new_comment_count", claimOnly(ctx?.newCommentCount)],
    ["new_comments_since", claimOnly(ctx?.newCommentsSince ? rfc3339(ctx.newCommentsSince) : undefined)],
    ["chat_session_id", task.chatSessionId],
    ["chat_message", claimOnly(ctx?.chatMessage)],
    ["chat_message_attachments", claimOnly(raw(ctx?.chatMessageAttachmentsJson))],
    ["autopilot_run_id", task.autopilotRunId],
    ["autopilot_id", claimOnly(ctx?.autopilotId)],
    ["autopilot_title", claimOnly(ctx?.autopilotTitle)],
    ["autopilot_description", claimOnly(ctx?.autopilotDescription)],
    ["autopilot_source", claimOnly(ctx?.autopilotSource)],
    ["autopilot_trigger_payload", claimOnly(raw(ctx?.autopilotTriggerPayloadJson))],
    ["quick_create_prompt", claimOnly(quick?.prompt)],
    ["quick_create_attachment_ids", claimOnly(quick?.attachmentIds)],
    ["squad_id", claimOnly(ctx?.squadId ?? quick?.squadId)],
    ["squad_name", claimOnly(ctx?.squadName)],
    ["parent_issue_id", claimOnly(ctx?.parentIssueId ?? quick?.parentIssueId)],
    ["parent_issue_identifier", claimOnly(ctx?.parentIssueIdentifier)],
    ["requesting_user_name", claimOnly(ctx?.requestingUserName)],
    ["requesting_user_profile_description", claimOnly(ctx?.requestingUserProfileDescription)],
    ["initiator_type", claimOnly(ctx?.initiatorType ?? initiatorFromTask?.type)],
    ["initiator_id", claimOnly(ctx?.initiatorId ?? initiatorFromTask?.id)],
    ["initiator_name", claimOnly(ctx?.initiatorName)],
    ["initiator_email", claimOnly(ctx?.initiatorEmail)],
  ]);
  const kind = { kind: task.kind };
  const token = omitEmpty([["auth_token", claimOnly(claim?.authToken)]]);
  return { ...head, ...claimHead, ...state, ...middle, ...counts, ...afterCounts, ...created, ...tail, ...receipt, ...afterReceipt, ...kind, ...token };
}

/**
 * The agent inside a claim answer; empty optional fields left out, except
 * `skills`, always there (the agent's, then the built-in ones; [] when none).
 */
export function agentJson(agent: Agent): Record<string, unknown> {
  const env = Object.keys(agent.customEnv);
  const runtimeConfig = agent.runtimeConfigJson.trim();
  return {
    id: agent.id,
    name: agent.name,
    instructions: agent.instructions,
    skills: agent.skills.map((s) => ({
      id: s.id,
      name: s.name,
      ...(s.description ? { description: s.description } : {}),
      content: s.content,
      ...(s.files.length > 0 ? { files: s.files.map((f) => ({ path: f.path, content: f.content })) } : {}),
    })),
    ...omitEmpty([
      ["custom_env", env.length > 0 ? goMap(agent.customEnv) : undefined],
      ["custom_args", agent.customArgs],
      ["mcp_config", raw(agent.mcpConfigJson)],
      ["model", agent.model],
      ["thinking_level", agent.thinkingLevel],
      ["runtime_config", runtimeConfig === "{}" || runtimeConfig === "null" ? undefined : raw(runtimeConfig)],
    ]),
  };
}

/**
 * A transcript message as GET …/messages answers it: the original's struct,
 * with `input` a Go map (keys sorted at every depth; an empty one left out).
 */
export function messageJson(message: TaskMessage): Record<string, unknown> {
  const input = decoded(message.inputJson);
  return {
    task_id: message.taskId,
    ...omitEmpty([["issue_id", message.issueId]]),
    seq: message.seq,
    type: message.type,
    ...omitEmpty([
      ["tool", message.tool],
      ["content", message.content],
      ["input", input instanceof GoMap && Object.keys(input.entries).length > 0 ? input : undefined],
      ["output", message.output],
      ["created_at", message.createdAt ? rfc3339Nano(message.createdAt) : undefined],
    ]),
  };
}

/**
 * A display form of a work dir that names no user: the tail from
 * "<workspace>/<task id prefix>" when present, else the part of a home path
 * after the user name, else the last path element.
 */
export function relativeWorkDir(workDir: string, workspaceId: string, taskId: string): string {
  const path = workDir.replaceAll("\\", "/");
  const marker = `${workspaceId}/${taskId.replaceAll("-", "").slice(0, 8)}`;
  const at = path.indexOf(marker);
  if (at >= 0) return path.slice(at);
  const underHome = /^(?:[a-z]:)?\/(?:users|home)\/[^/]+\/(.+)$/i.exec(path)?.[1];
  if (underHome !== undefined) return underHome;
  const parts = path.split("/").filter((part) => part !== "");
  return parts.at(-1) ?? "";
}

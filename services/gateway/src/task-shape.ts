import type { Agent } from "@controlplane/proto/registry/v1/registry";
import type { ClaimedTask, Task, TaskMessage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { ClientEra } from "./wire/capabilities.js";
import { goAny, GoMap, goMap, RawJson, rfc3339, rfc3339Nano } from "./wire/go-json.js";

/** Go's omitempty: an empty value's key is left out. */
function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === "" || value === 0 || value === false || (Array.isArray(value) && value.length === 0);
}

/** Sets `key` unless `value` is empty. */
function setIfPresent(out: Record<string, unknown>, key: string, value: unknown): void {
  if (!isEmpty(value)) out[key] = value;
}

/** Keys whose value is empty are left out, as Go's omitempty does. */
function omitEmpty(entries: Array<[string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) setIfPresent(out, key, value);
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
  // Built key by key, in the contract's order: this runs for every claim,
  // start and completion, and building it from omitEmpty lists and spreads
  // cost about 20 us a task.
  const today = era === "today";
  const ctx = task.context;
  const quick = ctx?.quickCreate;
  const workspaceId = claim?.workspaceId ?? task.workspaceId;
  const out: Record<string, unknown> = {
    id: task.id,
    agent_id: task.agentId,
    runtime_id: task.runtimeId,
    issue_id: task.issueId ?? "",
    workspace_id: workspaceId,
  };
  if (claim) {
    setIfPresent(out, "workspace_context", claim.workspaceContext);
    setIfPresent(out, "thread_name", ctx?.threadName || quick?.prompt);
  }
  out.status = task.status;
  out.priority = task.priority;
  out.dispatched_at = time(task.dispatchedAt);
  out.started_at = time(task.startedAt);
  out.completed_at = time(task.completedAt);
  out.result = decoded(task.resultJson) ?? null;
  out.error = task.error ?? null;
  setIfPresent(out, "failure_reason", task.failureReason);
  out.attempt = task.attempt;
  out.max_attempts = task.maxAttempts;
  setIfPresent(out, "parent_task_id", task.parentTaskId);
  if (claim) {
    setIfPresent(out, "agent", claim.agent ? agentJson(claim.agent) : undefined);
    setIfPresent(out, "repos", raw(claim.reposJson));
    setIfPresent(out, "project_id", ctx?.projectId ?? quick?.projectId);
    setIfPresent(out, "project_title", ctx?.projectTitle);
    setIfPresent(out, "project_resources", raw(ctx?.projectResourcesJson));
  }
  out.created_at = rfc3339(task.createdAt ?? new Date(0));
  if (claim) {
    setIfPresent(out, "prior_session_id", claim.priorSessionId);
    setIfPresent(out, "prior_work_dir", claim.priorWorkDir);
    if (today) setIfPresent(out, "prior_session_resume_unavailable", claim.priorSessionResumeUnavailable);
  }
  setIfPresent(out, "work_dir", task.workDir);
  setIfPresent(out, "relative_work_dir", task.workDir ? relativeWorkDir(task.workDir, workspaceId, task.id) : undefined);
  if (today) {
    setIfPresent(out, "durable_work_dir", task.durableWorkDir);
    setIfPresent(out, "relative_durable_work_dir", task.durableWorkDir ? relativeWorkDir(task.durableWorkDir, workspaceId, task.id) : undefined);
    setIfPresent(out, "branch_name", task.branchName);
  }
  setIfPresent(out, "trigger_comment_id", task.triggerCommentId);
  // Always there for today's daemon, even empty (a receipt; absent means "an older server").
  if (today) out.delivered_comment_ids = task.deliveredCommentIds ?? [];
  if (claim) {
    setIfPresent(out, "trigger_thread_id", ctx?.triggerThreadId);
    setIfPresent(out, "trigger_comment_content", ctx?.triggerCommentContent);
  }
  setIfPresent(out, "trigger_summary", task.triggerSummary);
  if (claim) {
    setIfPresent(out, "trigger_author_type", ctx?.triggerAuthorType);
    setIfPresent(out, "trigger_author_name", ctx?.triggerAuthorName);
    setIfPresent(out, "new_comment_count", ctx?.newCommentCount);
    setIfPresent(out, "new_comments_since", ctx?.newCommentsSince ? rfc3339(ctx.newCommentsSince) : undefined);
  }
  setIfPresent(out, "chat_session_id", task.chatSessionId);
  if (claim) {
    setIfPresent(out, "chat_message", ctx?.chatMessage);
    setIfPresent(out, "chat_message_attachments", raw(ctx?.chatMessageAttachmentsJson));
  }
  setIfPresent(out, "autopilot_run_id", task.autopilotRunId);
  if (claim) {
    const initiatorFromTask = task.initiatorUserId ? { type: "member", id: task.initiatorUserId } : undefined;
    setIfPresent(out, "autopilot_id", ctx?.autopilotId);
    setIfPresent(out, "autopilot_title", ctx?.autopilotTitle);
    setIfPresent(out, "autopilot_description", ctx?.autopilotDescription);
    setIfPresent(out, "autopilot_source", ctx?.autopilotSource);
    setIfPresent(out, "autopilot_trigger_payload", raw(ctx?.autopilotTriggerPayloadJson));
    setIfPresent(out, "quick_create_prompt", quick?.prompt);
    setIfPresent(out, "quick_create_attachment_ids", quick?.attachmentIds);
    setIfPresent(out, "squad_id", ctx?.squadId ?? quick?.squadId);
    setIfPresent(out, "squad_name", ctx?.squadName);
    setIfPresent(out, "parent_issue_id", ctx?.parentIssueId ?? quick?.parentIssueId);
    setIfPresent(out, "parent_issue_identifier", ctx?.parentIssueIdentifier);
    setIfPresent(out, "requesting_user_name", ctx?.requestingUserName);
    setIfPresent(out, "requesting_user_profile_description", ctx?.requestingUserProfileDescription);
    setIfPresent(out, "initiator_type", ctx?.initiatorType ?? initiatorFromTask?.type);
    setIfPresent(out, "initiator_id", ctx?.initiatorId ?? initiatorFromTask?.id);
    setIfPresent(out, "initiator_name", ctx?.initiatorName);
    setIfPresent(out, "initiator_email", ctx?.initiatorEmail);
  }
  out.kind = task.kind;
  if (claim) setIfPresent(out, "auth_token", claim.authToken);
  return out;
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

import type { FastifyReply } from "fastify";
import { hasCode, status } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import { authenticateUser, requireMemberByHeader, requireRole, workspaceLister, type Caller } from "../auth/checks.js";
import type { GatewayClients } from "../clients.js";
import { messageJson, taskJson } from "../task-shape.js";
import { call, HttpError, httpErrorFromGrpc, required } from "../wire/errors.js";
import { sendJson, sendJsonWithRaw } from "../wire/reply.js";
import { goMap } from "../wire/go-json.js";
import { joinedValue } from "../wire/query.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";
import { parseSince } from "./daemon-tasks.js";
import { listAllMessages, listAllTasks } from "../paging.js";
import type { Task } from "@controlplane/proto/taskqueue/v1/taskqueue";

/** User-facing task routes (T1–T6): header-scoped workspace, member access. */
export function registerUserTaskRoutes({ router }: RouteContext): void {
  router.add("GET", "/api/issues/:issueId/active-task", listActiveIssueTasks);
  router.add("POST", "/api/issues/:issueId/tasks/:taskId/cancel", cancelIssueTask);
  router.add("GET", "/api/issues/:issueId/task-runs", listIssueTaskRuns);
  router.add("GET", "/api/issues/:issueId/usage", getIssueUsage);
  router.add("GET", "/api/tasks/:taskId/messages", listTaskMessages);
  router.add("POST", "/api/tasks/:taskId/cancel", cancelTask);
}

/** The caller and the workspace the request is scoped to (header-scoped middleware). */
async function scope(request: RequestWith, { clients, auth }: RouteServices): Promise<{ caller: Caller; workspaceId: string }> {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMemberByHeader(request, caller, auth, workspaceLister(clients));
  return { caller, workspaceId };
}

/** T1: active tasks of an issue, newest first. */
async function listActiveIssueTasks(request: RequestWith<"issueId">, reply: FastifyReply, services: RouteServices) {
  const { clients } = services;
  const { workspaceId } = await scope(request, services);
  const issueId = await requireIssue(clients, workspaceId, request.params.issueId);
  const tasks = await listAllTasks(clients, { workspaceId, issueId, activeOnly: true }, { maxTasks: 1000 }).catch((): Task[] => []);
  return sendJsonWithRaw(reply, 200, { tasks: tasks.map((t) => taskJson(t)) });
}

/** T2: cancel a task of this issue. */
async function cancelIssueTask(request: RequestWith<"issueId" | "taskId">, reply: FastifyReply, services: RouteServices) {
  const { clients } = services;
  const { workspaceId } = await scope(request, services);
  const issueId = await requireIssue(clients, workspaceId, request.params.issueId);
  const taskId = parseUuid(request.params.taskId);
  if (!taskId) throw new HttpError(400, "invalid task id");
  const { task } = await call(clients.tasks.cancelTask({ taskId, workspaceId, issueId }), "failed to cancel task");
  return sendJsonWithRaw(reply, 200, taskJson(required(task, "the task")));
}

/** T3: every task of the issue, newest first. */
async function listIssueTaskRuns(request: RequestWith<"issueId">, reply: FastifyReply, services: RouteServices) {
  const { clients } = services;
  const { workspaceId } = await scope(request, services);
  const issueId = await requireIssue(clients, workspaceId, request.params.issueId);
  const tasks = await call(listAllTasks(clients, { workspaceId, issueId, activeOnly: false }, { maxTasks: 1000 }), "failed to list tasks");
  return sendJsonWithRaw(
    reply,
    200,
    tasks.map((t) => taskJson(t)),
  );
}

/** T4: token totals of the issue's tasks. */
async function getIssueUsage(request: RequestWith<"issueId">, reply: FastifyReply, services: RouteServices) {
  const { clients } = services;
  const { workspaceId } = await scope(request, services);
  const issueId = await requireIssue(clients, workspaceId, request.params.issueId);
  const usage = await call(clients.tasks.getIssueUsage({ workspaceId, issueId }), "failed to get issue usage");
  // A Go map in the original: keys sorted (task_count first).
  return sendJson(
    reply,
    200,
    goMap({
      total_input_tokens: usage.totalInputTokens,
      total_output_tokens: usage.totalOutputTokens,
      total_cache_read_tokens: usage.totalCacheReadTokens,
      total_cache_write_tokens: usage.totalCacheWriteTokens,
      task_count: usage.taskCount,
    }),
  );
}

/** T5: a task's messages, for a member of its workspace. */
async function listTaskMessages(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const { clients } = services;
  const { workspaceId } = await scope(request, services);
  const taskId = parseUuid(request.params.taskId);
  if (!taskId) throw new HttpError(400, "invalid task_id");
  await taskInWorkspace(clients, taskId, workspaceId);
  const since = parseSince(joinedValue(request.query.since));
  const messages = await call(listAllMessages(clients, { taskId, since }), "failed to list task messages");
  return sendJsonWithRaw(reply, 200, messages.map(messageJson));
}

/** T6: cancel by task id, if the caller may act on the task's agent. */
async function cancelTask(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const { clients, auth } = services;
  const { caller, workspaceId } = await scope(request, services);
  const taskId = parseUuid(request.params.taskId);
  if (!taskId) throw new HttpError(400, "invalid task id");
  const task = await taskInWorkspace(clients, taskId, workspaceId);
  await requireTaskAccess(clients, auth, caller, workspaceId, task);
  const { task: cancelled } = await call(clients.tasks.cancelTask({ taskId, workspaceId }), "failed to cancel task");
  return sendJsonWithRaw(reply, 200, taskJson(required(cancelled, "the task")));
}

/**
 * The issue an issue route names, by UUID or identifier ("ABC-42"), within
 * the request's workspace; 404 "issue not found" otherwise.
 */
async function requireIssue(clients: GatewayClients, workspaceId: string, raw: string): Promise<string> {
  try {
    return (await clients.tasks.resolveIssue({ workspaceId, issueRef: raw })).issueId;
  } catch (error) {
    if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, "issue not found");
    throw httpErrorFromGrpc(error, "failed to load issue");
  }
}

async function taskInWorkspace(clients: GatewayClients, taskId: string, workspaceId: string) {
  try {
    const { task } = await clients.tasks.getTask({ taskId });
    if (task?.workspaceId === workspaceId) return task;
  } catch (error) {
    if (!hasCode(error, status.NOT_FOUND)) throw httpErrorFromGrpc(error, "failed to load task");
  }
  throw new HttpError(404, "task not found");
}

/**
 * Chat tasks: only whoever started them. Others: the agent must be visible to
 * the caller (not private, or theirs, or they are owner/admin, or the caller
 * is an agent acting through a task token).
 */
async function requireTaskAccess(
  clients: GatewayClients,
  auth: Parameters<typeof requireRole>[2],
  caller: Caller,
  workspaceId: string,
  task: { chatSessionId?: string; initiatorUserId?: string; agentId: string },
) {
  if (task.chatSessionId) {
    if (task.initiatorUserId && task.initiatorUserId !== caller.userId) throw new HttpError(403, "not your task");
    return;
  }
  if (caller.kind === "task_token") return;
  const { agent: answered } = await call(clients.registry.getAgent({ agentId: task.agentId }), "failed to load agent");
  const agent = required(answered, "the agent");
  if (agent.visibility !== "private" || agent.ownerId === caller.userId) return;
  const role = await requireRole(caller, workspaceId, auth);
  if (role !== "owner" && role !== "admin") throw new HttpError(403, "you do not have access to this agent");
}

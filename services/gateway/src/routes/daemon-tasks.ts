import type { FastifyReply } from "fastify";
import { z } from "zod";
import { INT32_MAX, INT32_MIN, LIMITS } from "@controlplane/config";
import type { Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { authenticateDaemon, cachedDaemonCaller } from "../auth/checks.js";
import { listAllMessages } from "../paging.js";
import { messageJson, taskJson } from "../task-shape.js";
import { bodySchema, bool, decodeBody, int32, int64, jsonObject, path, str, text } from "../wire/body.js";
import { clientEra } from "../wire/capabilities.js";
import { call, HttpError, required } from "../wire/errors.js";
import { goMap, rfc3339Nano } from "../wire/go-json.js";
import { joinedValue } from "../wire/query.js";
import { sendJson, sendJsonWithRaw, sendNoContent } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

const WAIT_BODY = bodySchema({ reason: text(LIMITS.SUMMARY_CHARS) });
const PROGRESS_BODY = bodySchema({ summary: text(LIMITS.SUMMARY_CHARS), step: int32(), total: int32() });
/** A path or id of a terminal report: NUL removed, as today's server does (a report is never refused for it). */
const reportPath = () => text(LIMITS.PATH_CHARS);
/** What today's daemon adds to complete and fail (contract 13.9); the seed-era daemon sends only branch_name, on complete. */
const RUN_REPORT = {
  branch_name: reportPath(),
  durable_work_dir: reportPath(),
  session_rollout_missing: bool(),
  retired_session_id: reportPath(),
};
const COMPLETE_BODY = bodySchema({
  pr_url: reportPath(),
  output: text(LIMITS.TEXT_CHARS),
  session_id: reportPath(),
  work_dir: reportPath(),
  ...RUN_REPORT,
});
const FAIL_BODY = bodySchema({
  error: text(LIMITS.TEXT_CHARS),
  session_id: reportPath(),
  work_dir: reportPath(),
  failure_reason: text(LIMITS.NAME_CHARS),
  ...RUN_REPORT,
});
const SESSION_BODY = bodySchema({ session_id: path(), work_dir: path() });
const USAGE_ENTRY = z
  .object({
    provider: str(),
    model: str(),
    input_tokens: int64(),
    output_tokens: int64(),
    cache_read_tokens: int64(),
    cache_write_tokens: int64(),
    cost_usd_ticks: int64(),
  })
  .passthrough();
const USAGE_BODY = bodySchema({ usage: z.array(USAGE_ENTRY).max(LIMITS.USAGE_ENTRIES).nullish() });
const MESSAGE = z
  .object({
    seq: z.number().int().min(INT32_MIN).max(INT32_MAX),
    type: str(),
    tool: str(),
    content: text(LIMITS.TEXT_CHARS),
    input: jsonObject(),
    output: text(LIMITS.TEXT_CHARS),
  })
  .passthrough();
const MESSAGES_BODY = bodySchema({ messages: z.array(MESSAGE).max(LIMITS.MESSAGES_PER_BATCH).nullish() });

/** Task-scoped daemon routes of the task queue (D13–D21, D25, D27). */
export function registerDaemonTaskRoutes({ router }: RouteContext): void {
  router.add("GET", "/api/daemon/tasks/:taskId/status", taskStatus);
  router.add("POST", "/api/daemon/tasks/:taskId/start", startTask);
  router.add("POST", "/api/daemon/tasks/:taskId/wait-local-directory", waitLocalDirectory);
  router.add("POST", "/api/daemon/tasks/:taskId/progress", reportProgress);
  router.add("POST", "/api/daemon/tasks/:taskId/complete", completeTask);
  router.add("POST", "/api/daemon/tasks/:taskId/fail", failTask);
  router.add("POST", "/api/daemon/tasks/:taskId/usage", reportUsage);
  router.add("POST", "/api/daemon/tasks/:taskId/messages", appendMessages);
  router.add("GET", "/api/daemon/tasks/:taskId/messages", listMessages);
  router.add("GET", "/api/daemon/tasks/:taskId/gc-check", taskGcCheck);
  router.add("POST", "/api/daemon/tasks/:taskId/session", pinSession);
}

/** Daemon auth, then T with the task's current row (routes that answer from it). */
async function daemonTask(request: RequestWith<"taskId">, { auth, resources }: RouteServices): Promise<Task> {
  const caller = await authenticateDaemon(request, auth);
  return resources.task(caller, request.params.taskId);
}

/** Daemon auth, then T by access alone (routes that act on the task: the service checks it exists). */
async function daemonTaskAccess(request: RequestWith<"taskId">, { auth, resources }: RouteServices): Promise<string> {
  // Starts and completions nearly all find their credential and task cached: those are checked without waiting.
  const caller = cachedDaemonCaller(request, auth) ?? (await authenticateDaemon(request, auth));
  return resources.knownTaskAccess(caller, request.params.taskId) ?? resources.taskAccess(caller, request.params.taskId);
}

/** D13 */
async function taskStatus(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const task = await daemonTask(request, services);
  return sendJson(reply, 200, { status: task.status });
}

/** D14 */
async function startTask(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const taskId = await daemonTaskAccess(request, services);
  const { task: started } = await call(services.clients.starts.submit({ taskId }), "failed to start task");
  return sendJsonWithRaw(reply, 200, taskJson(required(started, "the task")));
}

/** D15: the body is read only when one was sent. */
async function waitLocalDirectory(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const taskId = await daemonTaskAccess(request, services);
  const sent = Number(request.headers["content-length"] ?? 0) > 0;
  const body = sent ? decodeBody(request.body, WAIT_BODY) : {};
  const { task: waiting } = await call(services.clients.tasks.waitLocalDirectory({ taskId, reason: body.reason ?? "" }), "failed to mark task waiting");
  return sendJsonWithRaw(reply, 200, taskJson(required(waiting, "the task"), undefined, clientEra(request)));
}

/** D16: the body is decoded before the task is looked up. */
async function reportProgress(request: RequestWith<"taskId">, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const body = decodeBody(request.body, PROGRESS_BODY);
  const taskId = await resources.taskAccess(caller, request.params.taskId);
  await call(clients.tasks.reportProgress({ taskId, summary: body.summary ?? "", step: body.step ?? 0, total: body.total ?? 0 }), "failed to report progress");
  return sendJson(reply, 200, { status: "ok" });
}

/**
 * D17: idempotent; a task not running comes back unchanged with 200.
 * A failure underneath answers 5xx (never 4xx), so the daemon retries.
 */
async function completeTask(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const taskId = await daemonTaskAccess(request, services);
  const era = clientEra(request);
  const body = decodeBody(request.body, COMPLETE_BODY);
  const { task: done } = await call(
    services.clients.completions.submit({
      taskId,
      prUrl: body.pr_url ?? "",
      output: body.output ?? "",
      sessionId: body.session_id ?? "",
      workDir: body.work_dir ?? "",
      ...(era === "today" ? runReport(body) : { sessionRolloutMissing: false }),
    }),
    "failed to complete task",
  );
  return sendJsonWithRaw(reply, 200, taskJson(required(done, "the task"), undefined, era));
}

/** D18: idempotent like complete, and 5xx like it. */
async function failTask(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const taskId = await daemonTaskAccess(request, services);
  const era = clientEra(request);
  const body = decodeBody(request.body, FAIL_BODY);
  const { task: failed } = await call(
    services.clients.tasks.failTask({
      taskId,
      error: body.error ?? "",
      sessionId: body.session_id,
      workDir: body.work_dir,
      failureReason: body.failure_reason ?? "",
      ...(era === "today" ? runReport(body) : { sessionRolloutMissing: false }),
    }),
    "failed to fail task",
  );
  return sendJsonWithRaw(reply, 200, taskJson(required(failed, "the task"), undefined, era));
}

/** D19 */
async function reportUsage(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const taskId = await daemonTaskAccess(request, services);
  const body = decodeBody(request.body, USAGE_BODY);
  await call(
    services.clients.tasks.reportUsage({
      taskId,
      usage: (body.usage ?? []).map((u) => ({
        provider: u.provider ?? "",
        model: u.model ?? "",
        inputTokens: u.input_tokens ?? 0,
        outputTokens: u.output_tokens ?? 0,
        cacheReadTokens: u.cache_read_tokens ?? 0,
        cacheWriteTokens: u.cache_write_tokens ?? 0,
        costUsdTicks: u.cost_usd_ticks,
      })),
    }),
    "failed to record usage",
  );
  return sendJson(reply, 200, { status: "ok" });
}

/** D20: decode, an empty batch answers ok before any lookup, then T. */
async function appendMessages(request: RequestWith<"taskId">, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const body = decodeBody(request.body, MESSAGES_BODY);
  const batch = body.messages ?? [];
  if (batch.length === 0) return sendJson(reply, 200, { status: "ok" });
  const taskId = await resources.taskAccess(caller, request.params.taskId);
  await call(
    clients.tasks.appendMessages({
      taskId,
      messages: batch.map((m) => ({
        taskId,
        seq: m.seq,
        type: m.type ?? "",
        tool: m.tool,
        content: m.content,
        inputJson: m.input ? JSON.stringify(m.input) : undefined,
        output: m.output,
      })),
    }),
    "failed to persist task message",
  );
  return sendJson(reply, 200, { status: "ok" });
}

/** D21 */
async function listMessages(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const task = await daemonTask(request, services);
  const since = parseSince(joinedValue(request.query.since));
  const messages = await call(listAllMessages(services.clients, { taskId: task.id, since }), "failed to list task messages");
  return sendJsonWithRaw(reply, 200, messages.map(messageJson));
}

/** D25 (gc-check answers are Go maps: keys sorted) */
async function taskGcCheck(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const task = await daemonTask(request, services);
  return sendJson(reply, 200, goMap({ status: task.status, completed_at: rfc3339Nano(task.completedAt) }));
}

/** D27: 204 without a body. */
async function pinSession(request: RequestWith<"taskId">, reply: FastifyReply, services: RouteServices) {
  const taskId = await daemonTaskAccess(request, services);
  const body = decodeBody(request.body, SESSION_BODY);
  if (!body.session_id && !body.work_dir) throw new HttpError(400, "session_id or work_dir required");
  await call(services.clients.tasks.pinSession({ taskId, sessionId: body.session_id ?? "", workDir: body.work_dir ?? "" }), "pin session failed");
  return sendNoContent(reply);
}

/**
 * Today's fields of a terminal report. Only today's daemon's are passed on:
 * the seed-era daemon sends branch_name on complete too, which its server
 * ignored, so its result keeps the seed's four keys (and its answers their bytes).
 */
function runReport(body: { branch_name?: string; durable_work_dir?: string; session_rollout_missing?: boolean; retired_session_id?: string }) {
  return {
    branchName: body.branch_name,
    durableWorkDir: body.durable_work_dir,
    sessionRolloutMissing: body.session_rollout_missing ?? false,
    retiredSessionId: body.retired_session_id,
  };
}

/** Bounds of Go's int64, which the original parsed `since` into. */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * `since` as a decimal int64 (negatives allowed), as the original parsed it;
 * 400 otherwise. Seqs are int32, so a value past either end of that range
 * is clamped to it: the answer (every message, or none) is the same.
 */
export function parseSince(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[+-]?\d{1,20}$/.test(raw)) throw new HttpError(400, "invalid since parameter");
  const value = BigInt(raw);
  if (value < INT64_MIN || value > INT64_MAX) throw new HttpError(400, "invalid since parameter");
  if (value > BigInt(INT32_MAX)) return INT32_MAX;
  if (value < BigInt(INT32_MIN)) return INT32_MIN - 1;
  return Number(value);
}

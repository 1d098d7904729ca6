import { z } from "zod";
import { CLAIM_ANSWER_SLACK_MS, CLAIM_LONG_POLL_MAX_MS, GATEWAY_GRPC_DEADLINE_MS, INT32_MAX, INT32_MIN, LIMITS } from "@controlplane/config";
import { currentScope, hasCode, runOutsideScope, status } from "@controlplane/grpc";
import type { GatewayClients } from "../clients.js";
import { listAllMessages, listAllPendingTasks } from "../paging.js";
import { parseUuid } from "@controlplane/ids";
import { authenticateDaemon, requireDaemonWorkspace } from "../auth/checks.js";
import type { Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { RouteHandler } from "../router.js";
import { messageJson, taskJson } from "../task-shape.js";
import { bodySchema, bool, decodeBody, int32, int64, jsonObject, path, str, text } from "../wire/body.js";
import { clientEra } from "../wire/capabilities.js";
import { call, HttpError, httpErrorFromGrpc } from "../wire/errors.js";
import { goMap, rfc3339Nano } from "../wire/go-json.js";
import { sendJson, sendJsonWithRaw, sendNoContent } from "../wire/reply.js";
import type { Params, RouteContext } from "./context.js";


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

/** Runtime- and task-scoped daemon routes of the task queue (D7, D8, D13–D21, D25–D27). */
export function registerDaemonTaskRoutes({ router, clients, auth, resources, shutdown }: RouteContext): void {
  const runtimeRoute = (path: string) => `/api/daemon/runtimes/:runtimeId${path}`;
  const taskRoute = (path: string) => `/api/daemon/tasks/:taskId${path}`;

  // D7. Opt-in long-poll: ?wait=<seconds> (or X-Claim-Wait); without it the answer is immediate.
  // The task queue answers null for a runtime that is offline or silent, 409
  // when the task's agent is gone (the task failed), and always with `agent`.
  router.add("POST", runtimeRoute("/tasks/claim"), async function claimForRuntime(request, reply) {
    const caller = await authenticateDaemon(request, auth);
    const runtime = await resources.runtime(caller, (request.params as Params<"runtimeId">).runtimeId);
    const waitMs = claimWaitMs(request.query as Record<string, string | undefined>, request.headers["x-claim-wait"]);
    const claimed = await claimOrNothingOnShutdown(clients, runtime.id, waitMs, shutdown);
    if (!claimed) return sendJsonWithRaw(reply, 200, { task: null });
    const task = claimed.task!;
    if (reply.raw.destroyed || currentScope()?.signal?.aborted) {
      // The daemon hung up after the claim: give the task back instead of
      // leaving it dispatched to nobody until the recovery window.
      await releaseUndelivered(clients, task.id, runtime.id);
      return reply;
    }
    resources.rememberTask(task.id, claimed.workspaceId);
    return sendJsonWithRaw(reply, 200, { task: taskJson(task, claimed, clientEra(request)) });
  });

  // D8: a bare array of queued and dispatched tasks.
  router.add("GET", runtimeRoute("/tasks/pending"), async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const runtime = await resources.runtime(caller, (request.params as Params<"runtimeId">).runtimeId);
    const tasks = await call(listAllPendingTasks(clients, { runtimeId: runtime.id }), "failed to list pending tasks");
    return sendJsonWithRaw(reply, 200, tasks.map((task) => taskJson({ ...task, workspaceId: runtime.workspaceId })));
  });

  // D26
  router.add("POST", runtimeRoute("/recover-orphans"), async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const runtime = await resources.runtime(caller, (request.params as Params<"runtimeId">).runtimeId);
    const result = await call(clients.tasks.recoverOrphans({ runtimeId: runtime.id }), "recover orphans failed");
    return sendJson(reply, 200, { orphaned: result.orphaned, retried: result.retried });
  });

  /** Routes that answer from the task's current row. */
  const withTask = (handler: (task: Task, ...args: Parameters<RouteHandler>) => Promise<unknown>): RouteHandler =>
    async (request, reply, services) => {
      const caller = await authenticateDaemon(request, auth);
      const task = await resources.task(caller, (request.params as Params<"taskId">).taskId);
      return handler(task, request, reply, services);
    };
  /** Routes that act on the task: access is enough, the service checks existence. */
  const onTask = (handler: (taskId: string, ...args: Parameters<RouteHandler>) => Promise<unknown>): RouteHandler =>
    async (request, reply, services) => {
      const caller = await authenticateDaemon(request, auth);
      const taskId = await resources.taskAccess(caller, (request.params as Params<"taskId">).taskId);
      return handler(taskId, request, reply, services);
    };

  // D13
  router.add("GET", taskRoute("/status"), withTask(async (task, _request, reply) => sendJson(reply, 200, { status: task.status })));

  // D14
  router.add("POST", taskRoute("/start"), onTask(async (taskId, _request, reply) => {
    const { task: started } = await call(clients.tasks.startTask({ taskId }), "failed to start task");
    return sendJsonWithRaw(reply, 200, taskJson(started!));
  }));

  // D15: the body is read only when one was sent.
  router.add("POST", taskRoute("/wait-local-directory"), onTask(async (taskId, request, reply) => {
    const sent = Number(request.headers["content-length"] ?? 0) > 0;
    const body = sent ? decodeBody(request.body, WAIT_BODY) : {};
    const { task: waiting } = await call(
      clients.tasks.waitLocalDirectory({ taskId, reason: body.reason ?? "" }),
      "failed to mark task waiting",
    );
    return sendJsonWithRaw(reply, 200, taskJson(waiting!, undefined, clientEra(request)));
  }));

  // D16: the body is decoded before the task is looked up.
  router.add("POST", taskRoute("/progress"), async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const body = decodeBody(request.body, PROGRESS_BODY);
    const taskId = await resources.taskAccess(caller, (request.params as Params<"taskId">).taskId);
    await call(
      clients.tasks.reportProgress({ taskId, summary: body.summary ?? "", step: body.step ?? 0, total: body.total ?? 0 }),
      "failed to report progress",
    );
    return sendJson(reply, 200, { status: "ok" });
  });

  // D17: idempotent; a task not running comes back unchanged with 200.
  // A failure underneath answers 5xx (never 4xx), so the daemon retries.
  router.add("POST", taskRoute("/complete"), onTask(async (taskId, request, reply) => {
    const era = clientEra(request);
    const body = decodeBody(request.body, COMPLETE_BODY);
    const { task: done } = await call(
      clients.tasks.completeTask({
        taskId,
        prUrl: body.pr_url ?? "",
        output: body.output ?? "",
        sessionId: body.session_id ?? "",
        workDir: body.work_dir ?? "",
        ...(era === "today" ? runReport(body) : { sessionRolloutMissing: false }),
      }),
      "failed to complete task",
    );
    return sendJsonWithRaw(reply, 200, taskJson(done!, undefined, era));
  }));

  // D18: idempotent like complete, and 5xx like it.
  router.add("POST", taskRoute("/fail"), onTask(async (taskId, request, reply) => {
    const era = clientEra(request);
    const body = decodeBody(request.body, FAIL_BODY);
    const { task: failed } = await call(
      clients.tasks.failTask({
        taskId,
        error: body.error ?? "",
        sessionId: body.session_id,
        workDir: body.work_dir,
        failureReason: body.failure_reason ?? "",
        ...(era === "today" ? runReport(body) : { sessionRolloutMissing: false }),
      }),
      "failed to fail task",
    );
    return sendJsonWithRaw(reply, 200, taskJson(failed!, undefined, era));
  }));

  // D19
  router.add("POST", taskRoute("/usage"), onTask(async (taskId, request, reply) => {
    const body = decodeBody(request.body, USAGE_BODY);
    await call(
      clients.tasks.reportUsage({
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
  }));

  // D20: decode, an empty batch answers ok before any lookup, then T.
  router.add("POST", taskRoute("/messages"), async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const body = decodeBody(request.body, MESSAGES_BODY);
    const batch = body.messages ?? [];
    if (batch.length === 0) return sendJson(reply, 200, { status: "ok" });
    const taskId = await resources.taskAccess(caller, (request.params as Params<"taskId">).taskId);
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
  });

  // D21
  router.add("GET", taskRoute("/messages"), withTask(async (task, request, reply) => {
    const since = parseSince((request.query as Record<string, string | undefined>).since);
    const messages = await call(listAllMessages(clients, { taskId: task.id, since }), "failed to list task messages");
    return sendJsonWithRaw(reply, 200, messages.map(messageJson));
  }));

  // D25 (gc-check answers are Go maps: keys sorted)
  router.add("GET", taskRoute("/gc-check"), withTask(async (task, _request, reply) =>
    sendJson(reply, 200, goMap({ status: task.status, completed_at: rfc3339Nano(task.completedAt) })),
  ));

  // D27: 204 without a body.
  router.add("POST", taskRoute("/session"), onTask(async (taskId, request, reply) => {
    const body = decodeBody(request.body, SESSION_BODY);
    if (!body.session_id && !body.work_dir) throw new HttpError(400, "session_id or work_dir required");
    await call(
      clients.tasks.pinSession({ taskId, sessionId: body.session_id ?? "", workDir: body.work_dir ?? "" }),
      "pin session failed",
    );
    return sendNoContent(reply);
  }));

  // D22–D24: work items the product recorded; W on their workspace.
  const gcCheck = (kind: string, param: string, invalid: string, field: "updated_at" | "completed_at"): RouteHandler =>
    async (request, reply) => {
      const caller = await authenticateDaemon(request, auth);
      const id = parseUuid((request.params as Record<string, string>)[param] ?? "");
      if (!id) throw new HttpError(400, invalid);
      const { item } = await call(clients.tasks.getWorkItem({ kind, id }), `failed to load ${kind.replace("_", " ")}`);
      await requireDaemonWorkspace(caller, item!.workspaceId, auth);
      const when = field === "updated_at" ? item!.updatedAt : item!.completedAt;
      return sendJson(reply, 200, goMap({ status: item!.status, [field]: rfc3339Nano(when) }));
    };
  router.add("GET", "/api/daemon/issues/:issueId/gc-check", gcCheck("issue", "issueId", "invalid issue_id", "updated_at"));
  router.add("GET", "/api/daemon/chat-sessions/:sessionId/gc-check", gcCheck("chat_session", "sessionId", "invalid session_id", "updated_at"));
  router.add("GET", "/api/daemon/autopilot-runs/:runId/gc-check", gcCheck("autopilot_run", "runId", "invalid run_id", "completed_at"));
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

/** Seconds from ?wait= or X-Claim-Wait, capped at the long-poll hold; absent or malformed means no wait. */
function claimWaitMs(query: Record<string, string | undefined>, header: string | string[] | undefined): number {
  const raw = query.wait ?? (typeof header === "string" ? header : undefined);
  if (raw === undefined || !/^\d{1,6}$/.test(raw)) return 0;
  return Math.min(Number(raw) * 1000, CLAIM_LONG_POLL_MAX_MS);
}

/**
 * The claim call: its deadline is the hold plus the answer's slack (below the
 * front proxy's claim timeout and the daemon's 30 s, even when the task queue
 * was restarting), it is cancelled with the request, and a gateway shutting
 * down ends it with "nothing for you" so the daemon asks another replica.
 */
async function claimOrNothingOnShutdown(clients: GatewayClients, runtimeId: string, waitMs: number, shutdown: AbortSignal) {
  const deadlineMs = waitMs > 0 ? waitMs + CLAIM_ANSWER_SLACK_MS : GATEWAY_GRPC_DEADLINE_MS;
  try {
    const { claimed } = await clients.tasks.claimTask({ runtimeId, waitMs }, { deadlineMs, signal: shutdown });
    return claimed;
  } catch (error) {
    if (shutdown.aborted && hasCode(error, status.CANCELLED)) return undefined;
    throw httpErrorFromGrpc(error, "failed to claim task");
  }
}

/** Gives back a task whose claim answer could not be written; outside the request's (cancelled) scope. */
async function releaseUndelivered(clients: GatewayClients, taskId: string, runtimeId: string): Promise<void> {
  await runOutsideScope(() => clients.tasks.releaseClaim({ taskId, runtimeId })).catch(() => undefined);
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

import { z } from "zod";
import { parseUuid } from "@controlplane/ids";
import { authenticateDaemon, requireDaemonWorkspace } from "../auth/checks.js";
import type { Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { RouteHandler } from "../router.js";
import { messageJson, taskJson } from "../task-shape.js";
import { bodySchema, decodeBody, int, str } from "../wire/body.js";
import { call, HttpError } from "../wire/errors.js";
import { rfc3339Nano } from "../wire/go-json.js";
import { sendJson, sendJsonWithRaw, sendNoContent } from "../wire/reply.js";
import type { Params, RouteContext } from "./context.js";

/** Longest wait a claim may ask for, in seconds (the service caps it again). */
const MAX_WAIT_SECONDS = 60;
/** Time a claim call may take beyond its wait before the gateway gives up. */
const CLAIM_DEADLINE_SLACK_MS = 10_000;

const WAIT_BODY = bodySchema({ reason: str() });
const PROGRESS_BODY = bodySchema({ summary: str(), step: int(), total: int() });
const COMPLETE_BODY = bodySchema({ pr_url: str(), output: str(), session_id: str(), work_dir: str() });
const FAIL_BODY = bodySchema({ error: str(), session_id: str(), work_dir: str(), failure_reason: str() });
const SESSION_BODY = bodySchema({ session_id: str(), work_dir: str() });

/** Runtime- and task-scoped daemon routes of the task queue (D7, D8, D13–D21, D25–D27). */
export function registerDaemonTaskRoutes({ router, clients, auth, resources }: RouteContext): void {
  const runtimeRoute = (path: string) => `/api/daemon/runtimes/:runtimeId${path}`;
  const taskRoute = (path: string) => `/api/daemon/tasks/:taskId${path}`;

  // D7. Opt-in long-poll: ?wait=<seconds> (or X-Claim-Wait); without it the answer is immediate.
  router.add("POST", runtimeRoute("/tasks/claim"), async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const runtime = await resources.runtime(caller, (request.params as Params<"runtimeId">).runtimeId);
    const waitMs = claimWaitMs(request.query as Record<string, string | undefined>, request.headers["x-claim-wait"]);
    const { claimed } = await call(
      clients.tasks.claimTask({ runtimeId: runtime.id, waitMs }, { deadlineMs: waitMs + CLAIM_DEADLINE_SLACK_MS }),
      "failed to claim task",
    );
    if (claimed) resources.rememberTask(claimed.task!.id, claimed.workspaceId);
    return sendJsonWithRaw(reply, 200, { task: claimed ? taskJson(claimed.task!, claimed) : null });
  });

  // D8: a bare array of queued and dispatched tasks.
  router.add("GET", runtimeRoute("/tasks/pending"), async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const runtime = await resources.runtime(caller, (request.params as Params<"runtimeId">).runtimeId);
    const { tasks } = await call(clients.tasks.listPendingTasks({ runtimeId: runtime.id }), "failed to list pending tasks");
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
    async (request, reply) => {
      const caller = await authenticateDaemon(request, auth);
      const task = await resources.task(caller, (request.params as Params<"taskId">).taskId);
      return handler(task, request, reply);
    };
  /** Routes that act on the task: access is enough, the service checks existence. */
  const onTask = (handler: (taskId: string, ...args: Parameters<RouteHandler>) => Promise<unknown>): RouteHandler =>
    async (request, reply) => {
      const caller = await authenticateDaemon(request, auth);
      const taskId = await resources.taskAccess(caller, (request.params as Params<"taskId">).taskId);
      return handler(taskId, request, reply);
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
    return sendJsonWithRaw(reply, 200, taskJson(waiting!));
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
  router.add("POST", taskRoute("/complete"), onTask(async (taskId, request, reply) => {
    const body = decodeBody(request.body, COMPLETE_BODY);
    const { task: done } = await call(
      clients.tasks.completeTask({
        taskId,
        prUrl: body.pr_url ?? "",
        output: body.output ?? "",
        sessionId: body.session_id ?? "",
        workDir: body.work_dir ?? "",
      }),
      "failed to complete task",
    );
    return sendJsonWithRaw(reply, 200, taskJson(done!));
  }));

  // D18: idempotent like complete.
  router.add("POST", taskRoute("/fail"), onTask(async (taskId, request, reply) => {
    const body = decodeBody(request.body, FAIL_BODY);
    const { task: failed } = await call(
      clients.tasks.failTask({
        taskId,
        error: body.error ?? "",
        sessionId: body.session_id,
        workDir: body.work_dir,
        failureReason: body.failure_reason ?? "",
      }),
      "failed to fail task",
    );
    return sendJsonWithRaw(reply, 200, taskJson(failed!));
  }));

  // D19
  const usageEntry = z.object({
    provider: str(),
    model: str(),
    input_tokens: int(),
    output_tokens: int(),
    cache_read_tokens: int(),
    cache_write_tokens: int(),
  });
  const usageBody = bodySchema({ usage: z.array(usageEntry.passthrough()).nullish() });
  router.add("POST", taskRoute("/usage"), onTask(async (taskId, request, reply) => {
    const body = decodeBody(request.body, usageBody);
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
        })),
      }),
      "failed to record usage",
    );
    return sendJson(reply, 200, { status: "ok" });
  }));

  // D20: decode, an empty batch answers ok before any lookup, then T.
  const message = z.object({
    seq: z.number().int(),
    type: str(),
    tool: str(),
    content: str(),
    input: z.record(z.unknown()).nullish(),
    output: str(),
  });
  const messagesBody = bodySchema({ messages: z.array(message.passthrough()).nullish() });
  router.add("POST", taskRoute("/messages"), async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const body = decodeBody(request.body, messagesBody);
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
    const { messages } = await call(clients.tasks.listMessages({ taskId: task.id, since }), "failed to list task messages");
    return sendJsonWithRaw(reply, 200, messages.map(messageJson));
  }));

  // D25
  router.add("GET", taskRoute("/gc-check"), withTask(async (task, _request, reply) =>
    sendJson(reply, 200, { status: task.status, completed_at: rfc3339Nano(task.completedAt) }),
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
      return sendJson(reply, 200, { status: item!.status, [field]: rfc3339Nano(when) });
    };
  router.add("GET", "/api/daemon/issues/:issueId/gc-check", gcCheck("issue", "issueId", "invalid issue_id", "updated_at"));
  router.add("GET", "/api/daemon/chat-sessions/:sessionId/gc-check", gcCheck("chat_session", "sessionId", "invalid session_id", "updated_at"));
  router.add("GET", "/api/daemon/autopilot-runs/:runId/gc-check", gcCheck("autopilot_run", "runId", "invalid run_id", "completed_at"));
}

/** Seconds from ?wait= or X-Claim-Wait; absent or malformed means no wait. */
function claimWaitMs(query: Record<string, string | undefined>, header: string | string[] | undefined): number {
  const raw = query.wait ?? (typeof header === "string" ? header : undefined);
  if (raw === undefined || !/^\d{1,6}$/.test(raw)) return 0;
  return Math.min(Number(raw), MAX_WAIT_SECONDS) * 1000;
}

/** `since` as a decimal integer (negatives allowed); 400 otherwise. */
export function parseSince(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[+-]?\d{1,18}$/.test(raw)) throw new HttpError(400, "invalid since parameter");
  return Number(raw);
}

import type { FastifyReply } from "fastify";
import { CLAIM_ANSWER_SLACK_MS, CLAIM_LONG_POLL_MAX_MS } from "@controlplane/config";
import { currentScope, hasCode, runOutsideScope, status } from "@controlplane/grpc";
import { authenticateDaemon, cachedDaemonCaller } from "../auth/checks.js";
import type { GatewayClients } from "../clients.js";
import { listAllPendingTasks } from "../paging.js";
import { taskJson } from "../task-shape.js";
import { clientEra } from "../wire/capabilities.js";
import { call, httpErrorFromGrpc, required } from "../wire/errors.js";
import { joinedValue, type Query } from "../wire/query.js";
import { sendJson, sendJsonWithRaw } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/** Runtime-scoped daemon routes of the task queue (D7, D8, D26). */
export function registerDaemonRuntimeTaskRoutes({ router }: RouteContext): void {
  router.add("POST", "/api/daemon/runtimes/:runtimeId/tasks/claim", claimForRuntime);
  router.add("GET", "/api/daemon/runtimes/:runtimeId/tasks/pending", listPendingTasks);
  router.add("POST", "/api/daemon/runtimes/:runtimeId/recover-orphans", recoverOrphans);
}

/**
 * D7. Opt-in long-poll: ?wait=<seconds> (or X-Claim-Wait); without it the answer is immediate.
 * The task queue answers null for a runtime that is offline or silent, 409
 * when the task's agent is gone (the task failed), and always with `agent`.
 */
async function claimForRuntime(request: RequestWith<"runtimeId">, reply: FastifyReply, { clients, auth, resources, shutdown }: RouteServices) {
  // A polling daemon's credential and runtime are nearly always cached: those are checked without waiting.
  const caller = cachedDaemonCaller(request, auth) ?? (await authenticateDaemon(request, auth));
  const runtime = resources.knownRuntime(caller, request.params.runtimeId) ?? (await resources.runtime(caller, request.params.runtimeId));
  const waitMs = claimWaitMs(request.query, request.headers["x-claim-wait"]);
  const claimed = await claimOrNothingOnShutdown(clients, runtime.id, waitMs, shutdown);
  if (!claimed) return sendJsonWithRaw(reply, 200, { task: null });
  const task = required(claimed.task, "the claimed task");
  if (reply.raw.destroyed || currentScope()?.signal?.aborted) {
    // The daemon hung up after the claim: give the task back instead of
    // leaving it dispatched to nobody until the recovery window.
    await releaseUndelivered(clients, task.id, runtime.id);
    return reply;
  }
  resources.rememberTask(task.id, claimed.workspaceId);
  return sendJsonWithRaw(reply, 200, { task: taskJson(task, claimed, clientEra(request)) });
}

/** D8: a bare array of queued and dispatched tasks. */
async function listPendingTasks(request: RequestWith<"runtimeId">, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const runtime = await resources.runtime(caller, request.params.runtimeId);
  const tasks = await call(listAllPendingTasks(clients, { runtimeId: runtime.id }), "failed to list pending tasks");
  return sendJsonWithRaw(
    reply,
    200,
    tasks.map((task) => taskJson({ ...task, workspaceId: runtime.workspaceId })),
  );
}

/** D26 */
async function recoverOrphans(request: RequestWith<"runtimeId">, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const runtime = await resources.runtime(caller, request.params.runtimeId);
  const result = await call(clients.tasks.recoverOrphans({ runtimeId: runtime.id }), "recover orphans failed");
  return sendJson(reply, 200, { orphaned: result.orphaned, retried: result.retried });
}

/** Seconds from ?wait= or X-Claim-Wait, capped at the long-poll hold; absent or malformed means no wait. */
function claimWaitMs(query: Query, header: string | string[] | undefined): number {
  const raw = joinedValue(query.wait) ?? (typeof header === "string" ? header : undefined);
  if (raw === undefined || !/^\d{1,6}$/.test(raw)) return 0;
  return Math.min(Number(raw) * 1000, CLAIM_LONG_POLL_MAX_MS);
}

/**
 * The claim call: its deadline is the hold plus the answer's slack (below the
 * front proxy's claim timeout and the daemon's 30 s, even when the task queue
 * was restarting), it is cancelled with the request, and a gateway shutting
 * down ends a held one with "nothing for you" so the daemon asks another
 * replica. An immediate claim finishes as any request does while the
 * gateway drains (and spares every claim of a polling fleet the combined
 * signal).
 */
async function claimOrNothingOnShutdown(clients: GatewayClients, runtimeId: string, waitMs: number, shutdown: AbortSignal) {
  const held = waitMs > 0;
  try {
    // An immediate claim shares a call with the others of a busy moment; a held one waits alone.
    const { claimed } = held
      ? await clients.tasks.claimTask({ runtimeId, waitMs }, { deadlineMs: waitMs + CLAIM_ANSWER_SLACK_MS, signal: shutdown })
      : await clients.claims.submit(runtimeId);
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

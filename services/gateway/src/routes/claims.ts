import type { FastifyReply } from "fastify";
import { LIMITS } from "@controlplane/config";
import { currentScope } from "@controlplane/grpc";
import { authenticateDaemon } from "../auth/checks.js";
import { batchClaimAnswer, claimBatch, releaseUndelivered } from "../batch-claim.js";
import { taskJson } from "../task-shape.js";
import { clientEra } from "../wire/capabilities.js";
import { call, HttpError, required } from "../wire/errors.js";
import { sendJsonWithRaw } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/**
 * Today's daemon's claim routes (contract §13.2, §13.4): the batch claim
 * N2 and its alias, and the prepare lease N3. Each answers from one task
 * queue call (ClaimTasks, ExtendPrepareLease), the rules living there.
 */
export function registerClaimRoutes({ router }: RouteContext): void {
  router.add("POST", "/api/daemon/tasks/claim", claimForDaemon, { bodyLimit: LIMITS.SMALL_BODY_BYTES });
  router.add("POST", "/api/daemon/claim", claimForDaemon, { bodyLimit: LIMITS.SMALL_BODY_BYTES });
  router.add("POST", "/api/daemon/runtimes/:runtimeId/tasks/:taskId/prepare-lease", extendPrepareLease, { bodyLimit: LIMITS.SMALL_BODY_BYTES });
}

/**
 * N2 (and N2′, which the daemon never calls). Never 404: a 404 here is
 * what makes the daemon fall back to per-runtime claims.
 */
async function claimForDaemon(request: RequestWith, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const claimed = await claimBatch({ clients, auth, resources }, caller, request.body);
  if (reply.raw.destroyed || currentScope()?.signal?.aborted) {
    // The daemon hung up after the claim (its deadline is 5 s): give the tasks back.
    await releaseUndelivered(clients, claimed);
    return reply;
  }
  // Only today's daemon calls this route: its task shape, receipt included.
  return sendJsonWithRaw(reply, 200, batchClaimAnswer(claimed));
}

/** N3: R, then T, then the task must be the runtime's. No body is read. */
async function extendPrepareLease(request: RequestWith<"runtimeId" | "taskId">, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const { params } = request;
  const runtime = await resources.runtime(caller, params.runtimeId);
  const task = await resources.task(caller, params.taskId);
  // As the original compared: the task's runtime id against the path's, as sent.
  if (task.workspaceId !== runtime.workspaceId || task.runtimeId !== params.runtimeId) throw new HttpError(404, "task not found");
  const { task: leased } = await call(clients.tasks.extendPrepareLease({ runtimeId: runtime.id, taskId: task.id }), "failed to extend task prepare lease");
  return sendJsonWithRaw(reply, 200, taskJson(required(leased, "the task"), undefined, clientEra(request)));
}

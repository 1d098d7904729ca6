import { z } from "zod";
import { LIMITS } from "@controlplane/config";
import { currentScope, runOutsideScope } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import type { ClaimedTask } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { authenticateDaemon, type Caller } from "../auth/checks.js";
import type { GatewayClients } from "../clients.js";
import type { RouteHandler } from "../router.js";
import { taskJson } from "../task-shape.js";
import { decodeBody } from "../wire/body.js";
import { clientEra } from "../wire/capabilities.js";
import { call, HttpError, httpErrorFromGrpc } from "../wire/errors.js";
import { sendJsonWithRaw } from "../wire/reply.js";
import type { Params, RouteContext } from "./context.js";

/** Most tasks one batch claim hands out; a larger max_tasks is lowered to it (contract §13.2 step 6). */
export const BATCH_CLAIM_MAX_TASKS = 32;
/** Go's int, which the original decoded max_tasks into: a number outside it does not decode. */
const INT64_BOUND = 2 ** 63;

/**
 * `{daemon_id, runtime_ids, max_tasks}` as the original's decoder read it:
 * unknown keys ignored, a null leaves the zero value, a non-integer
 * max_tasks or a non-string id fails the decode (a null id reads as "",
 * which is then skipped as unparseable). Bounded like every body here.
 */
const BATCH_CLAIM_BODY = z
  .object({
    daemon_id: z.string().max(LIMITS.NAME_CHARS).nullish(),
    runtime_ids: z.array(z.string().max(LIMITS.NAME_CHARS).nullable()).max(LIMITS.RUNTIMES_PER_SOCKET).nullish(),
    max_tasks: z.number().int().gt(-INT64_BOUND).lt(INT64_BOUND).nullish(),
  })
  .passthrough();

/**
 * Today's daemon's claim routes (contract §13.2, §13.4): the batch claim
 * N2 and its alias, and the prepare lease N3. Each answers from one task
 * queue call (ClaimTasks, ExtendPrepareLease), the rules living there.
 */
export function registerClaimRoutes({ router, clients, auth, resources }: RouteContext): void {
  // N2 (and N2′, which the daemon never calls). Never 404: a 404 here is
  // what makes the daemon fall back to per-runtime claims.
  const batchClaim: RouteHandler = async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const body = decodeBody(request.body, BATCH_CLAIM_BODY);
    const daemonId = body.daemon_id ?? "";
    if (daemonId === "") throw new HttpError(400, "daemon_id is required");
    if (caller.kind === "daemon_token" && caller.daemonId !== daemonId) throw new HttpError(403, "daemon_id does not match token");
    const asked = body.max_tasks ?? 0;
    if (asked < 0) throw new HttpError(400, "max_tasks must not be negative");
    if (asked === 0) return sendJsonWithRaw(reply, 200, { tasks: [] });
    const maxTasks = Math.min(asked, BATCH_CLAIM_MAX_TASKS);

    const ids = [...new Set((body.runtime_ids ?? []).map((raw) => parseUuid(raw ?? "")).filter((id): id is string => id !== null))];
    if (ids.length === 0) return sendJsonWithRaw(reply, 200, { tasks: [] });
    const runtimeIds = await accessibleRuntimes(caller, ids);
    if (runtimeIds.length === 0) return sendJsonWithRaw(reply, 200, { tasks: [] });

    let claimed: ClaimedTask[];
    try {
      ({ claimed } = await clients.tasks.claimTasks({ daemonId, runtimeIds, maxTasks }));
    } catch (error) {
      const mapped = httpErrorFromGrpc(error, "failed to claim tasks");
      // Nothing on this route answers 404 (the daemon would stop asking).
      throw mapped.statusCode === 404 ? new HttpError(500, `failed to claim tasks: ${mapped.message}`, "handler", { cause: error }) : mapped;
    }
    claimed = claimed.slice(0, maxTasks);
    if (reply.raw.destroyed || currentScope()?.signal?.aborted) {
      // The daemon hung up after the claim (its deadline is 5 s): give the tasks back.
      await releaseUndelivered(clients, claimed);
      return reply;
    }
    for (const c of claimed) resources.rememberTask(c.task!.id, c.workspaceId);
    // Only today's daemon calls this route: its task shape, receipt included.
    return sendJsonWithRaw(reply, 200, { tasks: claimed.map((c) => taskJson(c.task!, c, "today")) });
  };
  router.add("POST", "/api/daemon/tasks/claim", batchClaim, { bodyLimit: LIMITS.SMALL_BODY_BYTES });
  router.add("POST", "/api/daemon/claim", batchClaim, { bodyLimit: LIMITS.SMALL_BODY_BYTES });

  /**
   * The runtimes among `ids` (canonical, distinct) the caller may claim for,
   * in the order given. A runtime that does not exist, or is in a workspace
   * the caller cannot reach (a daemon token: another workspace; a user: not
   * a member), is skipped without an answer of its own.
   */
  async function accessibleRuntimes(caller: Caller, ids: string[]): Promise<string[]> {
    const workspaces = await Promise.all(ids.map((id) => resources.runtimeWorkspace(id, "failed to load runtimes")));
    const allowed = await Promise.all(
      workspaces.map(async (workspaceId) => {
        if (workspaceId === undefined) return false;
        if (caller.kind === "daemon_token") return caller.workspaceId === workspaceId;
        if (!caller.userId) return false;
        return (await auth.roleOf(caller.userId, workspaceId, "failed to load runtimes", "handler")) !== null;
      }),
    );
    return ids.filter((_, i) => allowed[i]);
  }

  // N3: R, then T, then the task must be the runtime's. No body is read.
  router.add(
    "POST",
    "/api/daemon/runtimes/:runtimeId/tasks/:taskId/prepare-lease",
    async (request, reply) => {
      const caller = await authenticateDaemon(request, auth);
      const params = request.params as Params<"runtimeId" | "taskId">;
      const runtime = await resources.runtime(caller, params.runtimeId);
      const task = await resources.task(caller, params.taskId);
      // As the original compared: the task's runtime id against the path's, as sent.
      if (task.workspaceId !== runtime.workspaceId || task.runtimeId !== params.runtimeId) throw new HttpError(404, "task not found");
      const { task: leased } = await call(
        clients.tasks.extendPrepareLease({ runtimeId: runtime.id, taskId: task.id }),
        "failed to extend task prepare lease",
      );
      return sendJsonWithRaw(reply, 200, taskJson(leased!, undefined, clientEra(request)));
    },
    { bodyLimit: LIMITS.SMALL_BODY_BYTES },
  );
}

/** Gives back tasks whose claim answer could not be written; outside the request's (cancelled) scope. */
async function releaseUndelivered(clients: GatewayClients, claimed: ClaimedTask[]): Promise<void> {
  await runOutsideScope(() =>
    Promise.all(claimed.map((c) => clients.tasks.releaseClaim({ taskId: c.task!.id, runtimeId: c.task!.runtimeId }).catch(() => undefined))),
  );
}

import { z } from "zod";
import { LIMITS } from "@controlplane/config";
import { runOutsideScope } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import type { ClaimedTask, Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { Authenticator, Caller } from "./auth/authenticator.js";
import type { Resources } from "./auth/resources.js";
import type { GatewayClients } from "./clients.js";
import { taskJson } from "./task-shape.js";
import { decodeBody } from "./wire/body.js";
import { HttpError, httpErrorFromGrpc, required } from "./wire/errors.js";

/** A claimed task as the task queue always answers it: with its task. */
export type Claim = ClaimedTask & { task: Task };

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

export interface BatchClaimDeps {
  clients: GatewayClients;
  auth: Authenticator;
  resources: Resources;
}

/**
 * The batch claim (contract §13.2), for the HTTP route N2 and the daemon
 * socket's `tasks.claim` alike: the checks in the contract's order (each an
 * HttpError with its status and text), the silent per-runtime filter, then
 * one ClaimTasks call. Never a 404: a 404 is what makes the daemon fall back
 * to per-runtime claims. At most max_tasks tasks come back.
 */
export async function claimBatch(deps: BatchClaimDeps, caller: Caller, rawBody: unknown, options: { deadlineMs?: number } = {}): Promise<Claim[]> {
  const body = decodeBody(rawBody, BATCH_CLAIM_BODY);
  const daemonId = body.daemon_id ?? "";
  if (daemonId === "") throw new HttpError(400, "daemon_id is required");
  if (caller.kind === "daemon_token" && caller.daemonId !== daemonId) throw new HttpError(403, "daemon_id does not match token");
  const asked = body.max_tasks ?? 0;
  if (asked < 0) throw new HttpError(400, "max_tasks must not be negative");
  if (asked === 0) return [];
  const maxTasks = Math.min(asked, BATCH_CLAIM_MAX_TASKS);

  const ids = [...new Set((body.runtime_ids ?? []).map((raw) => parseUuid(raw ?? "")).filter((id): id is string => id !== null))];
  if (ids.length === 0) return [];
  const runtimeIds = await accessibleRuntimes(deps, caller, ids);
  if (runtimeIds.length === 0) return [];

  let claimed: ClaimedTask[];
  try {
    ({ claimed } = await deps.clients.tasks.claimTasks({ daemonId, runtimeIds, maxTasks }, options));
  } catch (error) {
    const mapped = httpErrorFromGrpc(error, "failed to claim tasks");
    throw mapped.statusCode === 404 ? new HttpError(500, `failed to claim tasks: ${mapped.message}`, "handler", { cause: error }) : mapped;
  }
  const claims = claimed.slice(0, maxTasks).map((c): Claim => ({ ...c, task: required(c.task, "the claimed task") }));
  for (const c of claims) deps.resources.rememberTask(c.task.id, c.workspaceId);
  return claims;
}

/** N2's answer: today's task shape, receipt included (only today's daemon calls it). */
export function batchClaimAnswer(claimed: Claim[]) {
  return { tasks: claimed.map((c) => taskJson(c.task, c, "today")) };
}

/**
 * The runtimes among `ids` (canonical, distinct) the caller may claim for,
 * in the order given. A runtime that does not exist, or is in a workspace
 * the caller cannot reach (a daemon token: another workspace; a user: not
 * a member), is skipped without an answer of its own.
 */
async function accessibleRuntimes({ auth, resources }: BatchClaimDeps, caller: Caller, ids: string[]): Promise<string[]> {
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

/** Gives back tasks whose claim answer could not be delivered; outside the caller's (cancelled) scope. */
export async function releaseUndelivered(clients: GatewayClients, claimed: Claim[]): Promise<void> {
  await runOutsideScope(() =>
    Promise.all(claimed.map((c) => clients.tasks.releaseClaim({ taskId: c.task.id, runtimeId: c.task.runtimeId }).catch(() => undefined))),
  );
}

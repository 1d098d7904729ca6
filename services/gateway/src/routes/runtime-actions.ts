import type { FastifyReply } from "fastify";
import { LIMITS } from "@controlplane/config";
import { hasCode, status } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import { ActionKind, type Action, type EnqueueActionRequest } from "@controlplane/proto/liveness/v1/liveness";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import { authenticateUser, type Caller } from "../auth/checks.js";
import { bodySchema, bool, decodeBody, str, text } from "../wire/body.js";
import { HttpError, httpErrorFromGrpc, required } from "../wire/errors.js";
import { sendJson } from "../wire/reply.js";
import { localSkillImportJson, localSkillListJson, modelListJson, updateJson } from "../action-shape.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/**
 * User routes of a runtime (§6.2): a workspace member asks the runtime's
 * daemon for an update, its model list, its local skills or a skill import,
 * and reads each request back. The request is a pending action of the
 * liveness service, handed to the daemon on its next heartbeat.
 *
 * Access, as the original's handlers checked it (every error by the handler
 * writer, after the user Auth middleware):
 * - a runtime id that is not a UUID: 400 `invalid runtime_id`;
 * - no such runtime, or the caller not a member of its workspace: 404
 *   `runtime not found` (a foreign runtime looks absent);
 * - local skills and imports: the runtime's owner only, else 403
 *   `insufficient permissions`.
 */
const RUNTIME = "/api/runtimes/:runtimeId";

const RUNTIME_NOT_FOUND = "runtime not found";
const RUNTIME_OFFLINE = "runtime is offline";
const UPDATE_NOT_FOUND = "update not found";
const REQUEST_NOT_FOUND = "request not found";

const UPDATE_BODY = bodySchema({ target_version: str() });
const IMPORT_BODY = bodySchema({
  skill_key: str(),
  name: str(),
  description: text(LIMITS.DESCRIPTION_CHARS),
  action: str(),
  target_skill_id: str(),
  supports_conflict: bool(),
});

type Access = "member" | "owner";

export function registerRuntimeActionRoutes({ router }: RouteContext): void {
  router.add("POST", `${RUNTIME}/update`, initiateUpdate);
  router.add("GET", `${RUNTIME}/update/:updateId`, getUpdate);
  router.add("POST", `${RUNTIME}/models`, initiateListModels);
  router.add("GET", `${RUNTIME}/models/:requestId`, getModelListRequest);
  router.add("POST", `${RUNTIME}/local-skills`, initiateListLocalSkills);
  router.add("GET", `${RUNTIME}/local-skills/:requestId`, getLocalSkillListRequest);
  router.add("POST", `${RUNTIME}/local-skills/import`, initiateImportLocalSkill);
  router.add("GET", `${RUNTIME}/local-skills/import/:requestId`, getLocalSkillImportRequest);
}

/** POST update: any member; the runtime need not be online. */
async function initiateUpdate(request: RequestWith<"runtimeId">, reply: FastifyReply, services: RouteServices) {
  const { caller, runtime } = await authorizedRuntime(request, "member", services);
  const body = decodeBody(request.body, UPDATE_BODY);
  if (!body.target_version) throw new HttpError(400, "target_version is required");
  const action = await enqueue(
    services,
    { runtimeId: runtime.id, kind: ActionKind.ACTION_KIND_UPDATE, targetVersion: body.target_version, requestedBy: caller.userId },
    "failed to enqueue update request",
  );
  return sendJson(reply, 200, updateJson(action));
}

async function getUpdate(request: RequestWith<"runtimeId" | "updateId">, reply: FastifyReply, services: RouteServices) {
  const { runtime } = await authorizedRuntime(request, "member", services);
  const action = await ownAction(services, runtime, request.params.updateId, ActionKind.ACTION_KIND_UPDATE, UPDATE_NOT_FOUND, "failed to load update");
  return sendJson(reply, 200, updateJson(action));
}

/** POST models: any member; an offline runtime answers 503. */
async function initiateListModels(request: RequestWith<"runtimeId">, reply: FastifyReply, services: RouteServices) {
  const { caller, runtime } = await authorizedRuntime(request, "member", services);
  const action = await enqueue(
    services,
    { runtimeId: runtime.id, kind: ActionKind.ACTION_KIND_MODEL_LIST, requestedBy: caller.userId },
    "failed to enqueue model list request",
  );
  return sendJson(reply, 200, modelListJson(action));
}

/**
 * The original read a model list by id alone (Appendix B, quirk 12); here it
 * is checked like the other reads: a member, and the runtime's own request.
 */
async function getModelListRequest(request: RequestWith<"runtimeId" | "requestId">, reply: FastifyReply, services: RouteServices) {
  const { runtime } = await authorizedRuntime(request, "member", services);
  const action = await ownAction(services, runtime, request.params.requestId, ActionKind.ACTION_KIND_MODEL_LIST, REQUEST_NOT_FOUND, "failed to load request");
  return sendJson(reply, 200, modelListJson(action));
}

/** POST local-skills: the runtime's owner; an offline runtime answers 503. */
async function initiateListLocalSkills(request: RequestWith<"runtimeId">, reply: FastifyReply, services: RouteServices) {
  const { caller, runtime } = await authorizedRuntime(request, "owner", services);
  const action = await enqueue(
    services,
    { runtimeId: runtime.id, kind: ActionKind.ACTION_KIND_LOCAL_SKILLS, requestedBy: caller.userId },
    "failed to enqueue local skills request",
  );
  return sendJson(reply, 200, localSkillListJson(action));
}

async function getLocalSkillListRequest(request: RequestWith<"runtimeId" | "requestId">, reply: FastifyReply, services: RouteServices) {
  const { runtime } = await authorizedRuntime(request, "owner", services);
  const action = await ownAction(services, runtime, request.params.requestId, ActionKind.ACTION_KIND_LOCAL_SKILLS, REQUEST_NOT_FOUND, "failed to load request");
  return sendJson(reply, 200, localSkillListJson(action));
}

/**
 * POST local-skills/import: the runtime's owner. The original checked the
 * runtime is online before reading the body, so a malformed body for an
 * offline runtime answers 503 too; skill_key, action and target_skill_id
 * are checked after that, by liveness, in the original's order.
 */
async function initiateImportLocalSkill(request: RequestWith<"runtimeId">, reply: FastifyReply, services: RouteServices) {
  const { caller, runtime } = await authorizedRuntime(request, "owner", services);
  const body = await decodeImportBody(request.body, runtime.id, services);
  const action = await enqueue(
    services,
    {
      runtimeId: runtime.id,
      kind: ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT,
      skillKey: body.skill_key ?? "",
      // Blank overrides are no overrides.
      name: body.name?.trim() || undefined,
      description: body.description?.trim() || undefined,
      importAction: body.action ?? "",
      targetSkillId: body.target_skill_id?.trim(),
      supportsConflict: body.supports_conflict ?? false,
      requestedBy: caller.userId,
    },
    "failed to enqueue local skill import",
  );
  return sendJson(reply, 200, localSkillImportJson(action));
}

async function getLocalSkillImportRequest(request: RequestWith<"runtimeId" | "requestId">, reply: FastifyReply, services: RouteServices) {
  const { runtime } = await authorizedRuntime(request, "owner", services);
  const action = await ownAction(
    services,
    runtime,
    request.params.requestId,
    ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT,
    REQUEST_NOT_FOUND,
    "failed to load request",
  );
  return sendJson(reply, 200, localSkillImportJson(action));
}

/**
 * The runtime named in the path, if the caller may act on it. The row is
 * read fresh (not cached): its owner changes when another member registers it.
 */
async function authorizedRuntime(
  request: RequestWith<"runtimeId">,
  access: Access,
  { clients, auth }: RouteServices,
): Promise<{ caller: Caller; runtime: Runtime }> {
  const caller = await authenticateUser(request, auth);
  const runtimeId = parseUuid(request.params.runtimeId);
  if (!runtimeId) throw new HttpError(400, "invalid runtime_id");
  const answer = await clients.registry.getRuntime({ runtimeId }).catch((error: unknown) => {
    // Only a real absence is a 404; an outage is the route's 5xx.
    if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, RUNTIME_NOT_FOUND);
    throw httpErrorFromGrpc(error, "failed to load runtime");
  });
  const runtime = required(answer.runtime, "the runtime");
  if (!caller.userId) throw new HttpError(401, "user not authenticated");
  const role = await auth.roleOf(caller.userId, runtime.workspaceId, "failed to check workspace access", "handler");
  if (!role) throw new HttpError(404, RUNTIME_NOT_FOUND);
  if (access === "owner" && (!runtime.ownerId || runtime.ownerId !== (parseUuid(caller.userId) ?? caller.userId))) {
    throw new HttpError(403, "insufficient permissions");
  }
  return { caller, runtime };
}

/** Queues an action; liveness refuses an offline runtime (503) and a second update in flight (409). */
async function enqueue(
  { clients }: RouteServices,
  request: Pick<EnqueueActionRequest, "runtimeId" | "kind"> & Partial<EnqueueActionRequest>,
  failure: string,
): Promise<Action> {
  const answer = await clients.liveness
    .enqueueAction({ targetVersion: "", skillKey: "", importAction: "", supportsConflict: false, ...request })
    .catch((error: unknown) => {
      if (isOffline(error)) throw new HttpError(503, RUNTIME_OFFLINE, "handler", { cause: error });
      throw httpErrorFromGrpc(error, failure);
    });
  return required(answer.action, "the queued action");
}

/** The runtime's action of `kind` with this id (timeouts applied), or the route's 404. */
async function ownAction({ clients }: RouteServices, runtime: Runtime, actionId: string, kind: ActionKind, notFound: string, failure: string): Promise<Action> {
  const answer = await clients.liveness.getAction({ actionId }).catch((error: unknown) => {
    if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, notFound);
    throw httpErrorFromGrpc(error, failure);
  });
  const action = required(answer.action, "the action");
  if (action.runtimeId !== runtime.id || action.kind !== kind) throw new HttpError(404, notFound);
  return action;
}

/** The import body; one that does not decode answers 503 instead when the runtime is offline (the original's order). */
async function decodeImportBody(raw: unknown, runtimeId: string, services: RouteServices) {
  try {
    return decodeBody(raw, IMPORT_BODY);
  } catch (error) {
    if (await isRuntimeOffline(services, runtimeId)) throw new HttpError(503, RUNTIME_OFFLINE);
    throw error;
  }
}

/** Liveness's view (the one the enqueue itself goes by); unknown when it cannot say. */
async function isRuntimeOffline({ clients }: RouteServices, runtimeId: string): Promise<boolean> {
  try {
    return (await clients.liveness.getRuntimeLiveness({ runtimeId })).status !== "online";
  } catch {
    return false;
  }
}

/** Liveness's refusal of an offline runtime (an outage of liveness itself is also UNAVAILABLE, with other details). */
function isOffline(error: unknown): boolean {
  return hasCode(error, status.UNAVAILABLE) && error.details === RUNTIME_OFFLINE;
}

import type { FastifyReply, FastifyRequest } from "fastify";
import { LIMITS } from "@controlplane/config";
import { hasCode, status } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import { ActionKind, type Action, type EnqueueActionRequest } from "@controlplane/proto/liveness/v1/liveness";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import { authenticateUser, type Caller } from "../auth/checks.js";
import { bodySchema, bool, decodeBody, str, text } from "../wire/body.js";
import { HttpError, httpErrorFromGrpc } from "../wire/errors.js";
import { rfc3339Nano } from "../wire/go-json.js";
import { sendJson } from "../wire/reply.js";
import type { Params, RouteContext } from "./context.js";

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

export function registerRuntimeActionRoutes({ router, clients, auth }: RouteContext): void {
  /**
   * The runtime named in the path, if the caller may act on it. The row is
   * read fresh (not cached): its owner changes when another member registers it.
   */
  async function authorizedRuntime(request: FastifyRequest, access: Access): Promise<{ caller: Caller; runtime: Runtime }> {
    const caller = await authenticateUser(request, auth);
    const runtimeId = parseUuid((request.params as Params<"runtimeId">).runtimeId);
    if (!runtimeId) throw new HttpError(400, "invalid runtime_id");
    let runtime: Runtime;
    try {
      runtime = (await clients.registry.getRuntime({ runtimeId })).runtime!;
    } catch (error) {
      // Only a real absence is a 404; an outage is the route's 5xx.
      if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, RUNTIME_NOT_FOUND);
      throw httpErrorFromGrpc(error, "failed to load runtime");
    }
    if (!caller.userId) throw new HttpError(401, "user not authenticated");
    const role = await auth.roleOf(caller.userId, runtime.workspaceId, "failed to check workspace access", "handler");
    if (!role) throw new HttpError(404, RUNTIME_NOT_FOUND);
    if (access === "owner" && (!runtime.ownerId || runtime.ownerId !== (parseUuid(caller.userId) ?? caller.userId))) {
      throw new HttpError(403, "insufficient permissions");
    }
    return { caller, runtime };
  }

  /** Queues an action; liveness refuses an offline runtime (503) and a second update in flight (409). */
  async function enqueue(request: Pick<EnqueueActionRequest, "runtimeId" | "kind"> & Partial<EnqueueActionRequest>, failure: string): Promise<Action> {
    try {
      const { action } = await clients.liveness.enqueueAction({
        targetVersion: "",
        skillKey: "",
        importAction: "",
        supportsConflict: false,
        ...request,
      });
      return action!;
    } catch (error) {
      if (isOffline(error)) throw new HttpError(503, RUNTIME_OFFLINE, "handler", { cause: error });
      throw httpErrorFromGrpc(error, failure);
    }
  }

  /** The runtime's action of `kind` with this id (timeouts applied), or the route's 404. */
  async function ownAction(runtime: Runtime, actionId: string, kind: ActionKind, notFound: string, failure: string): Promise<Action> {
    let action: Action;
    try {
      action = (await clients.liveness.getAction({ actionId })).action!;
    } catch (error) {
      if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, notFound);
      throw httpErrorFromGrpc(error, failure);
    }
    if (action.runtimeId !== runtime.id || action.kind !== kind) throw new HttpError(404, notFound);
    return action;
  }

  // POST update: any member; the runtime need not be online.
  async function initiateUpdate(request: FastifyRequest, reply: FastifyReply) {
    const { caller, runtime } = await authorizedRuntime(request, "member");
    const body = decodeBody(request.body, UPDATE_BODY);
    if (!body.target_version) throw new HttpError(400, "target_version is required");
    const action = await enqueue(
      { runtimeId: runtime.id, kind: ActionKind.ACTION_KIND_UPDATE, targetVersion: body.target_version, requestedBy: caller.userId },
      "failed to enqueue update request",
    );
    return sendJson(reply, 200, updateJson(action));
  }

  async function getUpdate(request: FastifyRequest, reply: FastifyReply) {
    const { runtime } = await authorizedRuntime(request, "member");
    const { updateId } = request.params as Params<"updateId">;
    const action = await ownAction(runtime, updateId, ActionKind.ACTION_KIND_UPDATE, UPDATE_NOT_FOUND, "failed to load update");
    return sendJson(reply, 200, updateJson(action));
  }

  // POST models: any member; an offline runtime answers 503.
  async function initiateListModels(request: FastifyRequest, reply: FastifyReply) {
    const { caller, runtime } = await authorizedRuntime(request, "member");
    const action = await enqueue(
      { runtimeId: runtime.id, kind: ActionKind.ACTION_KIND_MODEL_LIST, requestedBy: caller.userId },
      "failed to enqueue model list request",
    );
    return sendJson(reply, 200, modelListJson(action));
  }

  // The original read a model list by id alone (Appendix B, quirk 12); here it
  // is checked like the other reads: a member, and the runtime's own request.
  async function getModelListRequest(request: FastifyRequest, reply: FastifyReply) {
    const { runtime } = await authorizedRuntime(request, "member");
    const { requestId } = request.params as Params<"requestId">;
    const action = await ownAction(runtime, requestId, ActionKind.ACTION_KIND_MODEL_LIST, REQUEST_NOT_FOUND, "failed to load request");
    return sendJson(reply, 200, modelListJson(action));
  }

  // POST local-skills: the runtime's owner; an offline runtime answers 503.
  async function initiateListLocalSkills(request: FastifyRequest, reply: FastifyReply) {
    const { caller, runtime } = await authorizedRuntime(request, "owner");
    const action = await enqueue(
      { runtimeId: runtime.id, kind: ActionKind.ACTION_KIND_LOCAL_SKILLS, requestedBy: caller.userId },
      "failed to enqueue local skills request",
    );
    return sendJson(reply, 200, localSkillListJson(action));
  }

  async function getLocalSkillListRequest(request: FastifyRequest, reply: FastifyReply) {
    const { runtime } = await authorizedRuntime(request, "owner");
    const { requestId } = request.params as Params<"requestId">;
    const action = await ownAction(runtime, requestId, ActionKind.ACTION_KIND_LOCAL_SKILLS, REQUEST_NOT_FOUND, "failed to load request");
    return sendJson(reply, 200, localSkillListJson(action));
  }

  /**
   * POST local-skills/import: the runtime's owner. The original checked the
   * runtime is online before reading the body, so a malformed body for an
   * offline runtime answers 503 too; skill_key, action and target_skill_id
   * are checked after that, by liveness, in the original's order.
   */
  async function initiateImportLocalSkill(request: FastifyRequest, reply: FastifyReply) {
    const { caller, runtime } = await authorizedRuntime(request, "owner");
    let body;
    try {
      body = decodeBody(request.body, IMPORT_BODY);
    } catch (error) {
      if (await isRuntimeOffline(runtime.id)) throw new HttpError(503, RUNTIME_OFFLINE);
      throw error;
    }
    const action = await enqueue(
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

  async function getLocalSkillImportRequest(request: FastifyRequest, reply: FastifyReply) {
    const { runtime } = await authorizedRuntime(request, "owner");
    const { requestId } = request.params as Params<"requestId">;
    const action = await ownAction(runtime, requestId, ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, REQUEST_NOT_FOUND, "failed to load request");
    return sendJson(reply, 200, localSkillImportJson(action));
  }

  /** Liveness's view (the one the enqueue itself goes by); unknown when it cannot say. */
  async function isRuntimeOffline(runtimeId: string): Promise<boolean> {
    try {
      return (await clients.liveness.getRuntimeLiveness({ runtimeId })).status !== "online";
    } catch {
      return false;
    }
  }

  router.add("POST", `${RUNTIME}/update`, initiateUpdate);
  router.add("GET", `${RUNTIME}/update/:updateId`, getUpdate);
  router.add("POST", `${RUNTIME}/models`, initiateListModels);
  router.add("GET", `${RUNTIME}/models/:requestId`, getModelListRequest);
  router.add("POST", `${RUNTIME}/local-skills`, initiateListLocalSkills);
  router.add("GET", `${RUNTIME}/local-skills/:requestId`, getLocalSkillListRequest);
  router.add("POST", `${RUNTIME}/local-skills/import`, initiateImportLocalSkill);
  router.add("GET", `${RUNTIME}/local-skills/import/:requestId`, getLocalSkillImportRequest);
}

/** Liveness's refusal of an offline runtime (an outage of liveness itself is also UNAVAILABLE, with other details). */
function isOffline(error: unknown): boolean {
  return hasCode(error, status.UNAVAILABLE) && error.details === RUNTIME_OFFLINE;
}

// ---------------------------------------------------------------------------
// Answer shapes: the original's Go structs, fields in declaration order,
// `omitempty` ones left out when empty; times are Go time values (RFC 3339
// with the fraction).
// ---------------------------------------------------------------------------

type Json = Record<string, unknown>;

function object(raw: string | undefined): Json {
  if (!raw) return {};
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : {};
  } catch {
    return {};
  }
}

const string = (value: unknown): string => (typeof value === "string" ? value : "");
const objects = (value: unknown): Json[] =>
  Array.isArray(value) ? value.map((v) => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {})) : [];
/** `"key":value` only when the value is not Go's empty value for it. */
const omitEmpty = (key: string, value: string | boolean | number | unknown[] | Json | undefined): Json =>
  value === undefined || value === "" || value === false || value === 0 || (Array.isArray(value) && value.length === 0) ? {} : { [key]: value };

function times(action: Action) {
  return { created_at: rfc3339Nano(action.createdAt), updated_at: rfc3339Nano(action.updatedAt) };
}

/** UpdateRequest: {id, runtime_id, status, target_version, output?, error?, created_at, updated_at}. */
export function updateJson(action: Action) {
  const request = object(action.requestJson);
  const result = object(action.resultJson);
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    status: action.status,
    target_version: string(request.target_version),
    ...omitEmpty("output", string(result.output)),
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}

/** ModelListRequest: {id, runtime_id, status, models?, supported, error?, created_at, updated_at}. */
export function modelListJson(action: Action) {
  const result = object(action.resultJson);
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    status: action.status,
    ...omitEmpty("models", objects(result.models).map(modelEntryJson)),
    supported: typeof result.supported === "boolean" ? result.supported : true,
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}

/** ModelEntry: {id, label, provider?, default?, thinking?: {supported_levels, default_level?}}. */
function modelEntryJson(model: Json) {
  const thinking = typeof model.thinking === "object" && model.thinking !== null && !Array.isArray(model.thinking) ? (model.thinking as Json) : undefined;
  return {
    id: string(model.id),
    label: string(model.label),
    ...omitEmpty("provider", string(model.provider)),
    ...omitEmpty("default", model.default === true),
    ...(thinking
      ? {
          thinking: {
            // A nil slice in Go: null, not [].
            supported_levels: Array.isArray(thinking.supported_levels)
              ? objects(thinking.supported_levels).map((level) => ({
                  value: string(level.value),
                  label: string(level.label),
                  ...omitEmpty("description", string(level.description)),
                }))
              : null,
            ...omitEmpty("default_level", string(thinking.default_level)),
          },
        }
      : {}),
  };
}

/** RuntimeLocalSkillListRequest: {id, runtime_id, status, skills?, supported, error?, created_at, updated_at}. */
export function localSkillListJson(action: Action) {
  const result = object(action.resultJson);
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    status: action.status,
    ...omitEmpty(
      "skills",
      objects(result.skills).map((skill) => ({
        key: string(skill.key),
        name: string(skill.name),
        ...omitEmpty("description", string(skill.description)),
        source_path: string(skill.source_path),
        provider: string(skill.provider),
        file_count: Number.isSafeInteger(skill.file_count) ? skill.file_count : 0,
      })),
    ),
    supported: typeof result.supported === "boolean" ? result.supported : true,
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}

/**
 * RuntimeLocalSkillImportRequest: {id, runtime_id, skill_key, name?,
 * description?, action?, target_skill_id?, supports_conflict?, status,
 * skill?, conflict?, error?, created_at, updated_at}. `skill` is the bundle
 * the daemon returned (turning it into a workspace skill is the product's).
 */
export function localSkillImportJson(action: Action) {
  const request = object(action.requestJson);
  const result = object(action.resultJson);
  const skill = typeof result.skill === "object" && result.skill !== null && !Array.isArray(result.skill) ? (result.skill as Json) : undefined;
  const conflict = typeof result.conflict === "object" && result.conflict !== null ? (result.conflict as Json) : undefined;
  return {
    id: action.id,
    runtime_id: action.runtimeId,
    skill_key: string(request.skill_key),
    // Pointers in Go: present whenever set, even if empty.
    ...(typeof request.name === "string" ? { name: request.name } : {}),
    ...(typeof request.description === "string" ? { description: request.description } : {}),
    ...omitEmpty("action", string(request.action)),
    ...omitEmpty("target_skill_id", string(request.target_skill_id)),
    ...omitEmpty("supports_conflict", request.supports_conflict === true),
    status: action.status,
    ...(skill
      ? {
          skill: {
            name: string(skill.name),
            description: string(skill.description),
            content: string(skill.content),
            source_path: string(skill.source_path),
            provider: string(skill.provider),
            ...omitEmpty("files", objects(skill.files).map((file) => ({ path: string(file.path), content: string(file.content) }))),
          },
        }
      : {}),
    ...(conflict
      ? {
          conflict: {
            existing_skill_id: string(conflict.existing_skill_id),
            ...omitEmpty("existing_created_by", string(conflict.existing_created_by)),
            can_overwrite: conflict.can_overwrite === true,
          },
        }
      : {}),
    ...omitEmpty("error", action.error),
    ...times(action),
  };
}

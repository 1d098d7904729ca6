import type { FastifyReply } from "fastify";
import type { z } from "zod";
import { hasCode, status } from "@controlplane/grpc";
import { ActionKind, HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import { authenticateDaemon, cachedDaemonCaller } from "../auth/checks.js";
import { deliversNothing, heartbeatAnswerJson } from "../shapes.js";
import { LIMITS } from "@controlplane/config";
import { bodySchema, bool, decodeBody, ESCAPED_SURROGATE, jsonArray, jsonObject, parseFirstValue, str, text } from "../wire/body.js";
import { call, HttpError, httpErrorFromGrpc, required } from "../wire/errors.js";
import { goJson } from "../wire/go-json.js";
import { sendEncodedJson, sendJson } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

export const HEARTBEAT_BODY = bodySchema({ runtime_id: str(), supports_batch_import: bool() });

/** What a beat's body says. */
interface Beat {
  runtime_id?: string;
  supports_batch_import?: boolean;
}

/**
 * Decodes a beat's body as decodeBody(HEARTBEAT_BODY) does. A fleet sends
 * thousands a second, nearly all a plain object with a short runtime_id and
 * at most the boolean flag: those are checked here directly, with the same
 * outcome as the schema's, and the schema (a sizeable share of a beat's CPU)
 * sees only the rest: a wrong type, a bound passed, a NUL, an escaped
 * surrogate, whose errors it words.
 */
export function decodeBeat(raw: unknown): Beat {
  if (typeof raw === "string" && !ESCAPED_SURROGATE.test(raw)) {
    const value = parseFlat(raw) ?? parseFirstValue(raw);
    if (isPlainBeat(value)) return { runtime_id: value.runtime_id ?? undefined, supports_batch_import: value.supports_batch_import ?? undefined };
  }
  return decodeBody(raw, HEARTBEAT_BODY);
}

/**
 * A body with no object or array inside its first one (every beat a daemon
 * sends), parsed whole by JSON.parse; undefined for anything else, which
 * parseFirstValue reads. Where both parse, they agree: a text that is one
 * JSON value is its own first value.
 */
function parseFlat(raw: string): unknown {
  if (raw.includes("[") || raw.indexOf("{", raw.indexOf("{") + 1) >= 0) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** A JSON object whose two fields (when present) pass HEARTBEAT_BODY's checks. */
function isPlainBeat(value: unknown): value is { runtime_id?: string | null; supports_batch_import?: boolean | null } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const { runtime_id: id, supports_batch_import: flag } = value as Record<string, unknown>;
  const idOk = id == null || (typeof id === "string" && id.length <= LIMITS.NAME_CHARS && !id.includes("\u0000"));
  return idOk && (flag == null || typeof flag === "boolean");
}

/** The heartbeat (D3) and the pending-action result routes (D9–D12). */
export function registerHeartbeatRoutes({ router }: RouteContext): void {
  router.add("POST", "/api/daemon/heartbeat", heartbeat);
  router.add("POST", "/api/daemon/runtimes/:runtimeId/update/:updateId/result", updateResult);
  router.add("POST", "/api/daemon/runtimes/:runtimeId/models/:requestId/result", modelListResult);
  router.add("POST", "/api/daemon/runtimes/:runtimeId/local-skills/:requestId/result", localSkillsResult);
  router.add("POST", "/api/daemon/runtimes/:runtimeId/local-skills/import/:requestId/result", localSkillImportResult);
}

/** The answer to a beat that delivers no action (nearly every one): the same bytes each time, encoded once. */
const NOTHING_DELIVERED = Buffer.from(goJson(heartbeatAnswerJson(HeartbeatResponse.fromPartial({}))));

/** D3 */
async function heartbeat(request: RequestWith, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  // A fleet's beats nearly all find their credential and runtime cached: those are checked without waiting.
  const caller = cachedDaemonCaller(request, auth) ?? (await authenticateDaemon(request, auth));
  const body = decodeBeat(request.body);
  if (!body.runtime_id) throw new HttpError(400, "runtime_id is required");
  const runtimeId = resources.knownRuntimeAccess(caller, body.runtime_id) ?? (await resources.runtimeAccess(caller, body.runtime_id));
  let beat: HeartbeatResponse;
  try {
    beat = await clients.heartbeats.submit({ runtimeId, supportsBatchImport: body.supports_batch_import ?? false });
  } catch (error) {
    // Only a runtime that truly does not exist answers 404: the daemon re-registers on it.
    if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, "runtime not found");
    throw httpErrorFromGrpc(error, "heartbeat failed");
  }
  return deliversNothing(beat) ? sendEncodedJson(reply, 200, NOTHING_DELIVERED) : sendJson(reply, 200, heartbeatAnswerJson(beat));
}

/** What a result route (D9–D12) accepts and stores for its kind of action. */
interface ActionResultRoute {
  kind: ActionKind;
  notFound: string;
  body: ReturnType<typeof bodySchema>;
  /** The kind's own result fields, as the JSON stored with the action (undefined: none). */
  toResult: (body: Record<string, unknown>) => string | undefined;
}

/** Every result body has these; each kind adds its own fields. */
function resultBody(shape: z.ZodRawShape): ReturnType<typeof bodySchema> {
  return bodySchema({ status: str(), output: text(LIMITS.TEXT_CHARS), error: text(LIMITS.TEXT_CHARS), ...shape });
}

// D10 and D11 keep what either daemon sends: today's adds models[].service_tiers
// (inside the model list as sent) and `fallback` (a stand-in list, stored as
// a completed one) to D10, skills[].root, `mcp_servers` and `mcp_supported`
// (absent: false) to D11. The seed-era daemon sends none of them, and its
// stored results are unchanged.
const UPDATE: ActionResultRoute = {
  kind: ActionKind.ACTION_KIND_UPDATE,
  notFound: "update not found",
  body: resultBody({}),
  toResult: () => undefined,
};
const MODEL_LIST: ActionResultRoute = {
  kind: ActionKind.ACTION_KIND_MODEL_LIST,
  notFound: "request not found",
  body: resultBody({ models: jsonArray(), supported: bool(), fallback: bool() }),
  toResult: (b) => JSON.stringify({ models: b.models ?? [], supported: b.supported ?? true, ...(b.fallback === true ? { fallback: true } : {}) }),
};
const LOCAL_SKILLS: ActionResultRoute = {
  kind: ActionKind.ACTION_KIND_LOCAL_SKILLS,
  notFound: "request not found",
  body: resultBody({ skills: jsonArray(), supported: bool(), mcp_servers: jsonArray(), mcp_supported: bool() }),
  toResult: (b) =>
    JSON.stringify({
      skills: b.skills ?? [],
      supported: b.supported ?? true,
      ...(b.mcp_servers !== undefined || b.mcp_supported !== undefined ? { mcp_servers: b.mcp_servers ?? [], mcp_supported: b.mcp_supported ?? false } : {}),
    }),
};
const LOCAL_SKILL_IMPORT: ActionResultRoute = {
  kind: ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT,
  notFound: "request not found",
  body: resultBody({ skill: jsonObject() }),
  toResult: (b) => (b.skill ? JSON.stringify({ skill: b.skill }) : undefined),
};

/** D9 */
async function updateResult(request: RequestWith<"runtimeId" | "updateId">, reply: FastifyReply, services: RouteServices) {
  return reportResult(UPDATE, request.params.updateId, request, reply, services);
}

/** D10 */
async function modelListResult(request: RequestWith<"runtimeId" | "requestId">, reply: FastifyReply, services: RouteServices) {
  return reportResult(MODEL_LIST, request.params.requestId, request, reply, services);
}

/** D11 */
async function localSkillsResult(request: RequestWith<"runtimeId" | "requestId">, reply: FastifyReply, services: RouteServices) {
  return reportResult(LOCAL_SKILLS, request.params.requestId, request, reply, services);
}

/** D12 */
async function localSkillImportResult(request: RequestWith<"runtimeId" | "requestId">, reply: FastifyReply, services: RouteServices) {
  return reportResult(LOCAL_SKILL_IMPORT, request.params.requestId, request, reply, services);
}

/**
 * R, then the action must exist for this runtime (path compared as sent);
 * a terminal action answers ok before the body is even read.
 */
async function reportResult(
  route: ActionResultRoute,
  actionId: string,
  request: RequestWith<"runtimeId">,
  reply: FastifyReply,
  { clients, auth, resources }: RouteServices,
) {
  const caller = await authenticateDaemon(request, auth);
  const { runtimeId } = request.params;
  await resources.runtime(caller, runtimeId);
  const answer = await clients.liveness.getAction({ actionId }).catch((error: unknown) => {
    if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, route.notFound);
    throw httpErrorFromGrpc(error, `failed to load ${route.kind === ActionKind.ACTION_KIND_UPDATE ? "update" : "request"}`);
  });
  const action = required(answer.action, "an action");
  if (action.runtimeId !== runtimeId || action.kind !== route.kind) throw new HttpError(404, route.notFound);
  if (["completed", "failed", "timeout", "conflict"].includes(action.status)) return sendJson(reply, 200, { status: "ok" });
  const body = decodeBody(request.body, route.body) as Record<string, unknown> & {
    status?: string;
    output?: string;
    error?: string;
  };
  await call(
    clients.liveness.reportActionResult({
      runtimeId,
      actionId,
      kind: route.kind,
      status: body.status ?? "",
      output: body.output,
      error: body.error,
      resultJson: route.toResult(body),
    }),
    "failed to persist completion",
  );
  return sendJson(reply, 200, { status: "ok" });
}

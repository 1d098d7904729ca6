import type { FastifyReply } from "fastify";
import { parseUuid } from "@controlplane/ids";
import { authenticateDaemon, authenticateUser, requireDaemonWorkspace, requireMember } from "../auth/checks.js";
import { daemonProfileListJson, profileJson } from "../shapes.js";
import { LIMITS } from "@controlplane/config";
import { bodySchema, bool, decodeBody, str, strArray, text } from "../wire/body.js";
import { call, HttpError, required } from "../wire/errors.js";
import { sendJson, sendNoContent } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

const WRITERS = ["owner", "admin"] as const;
const BASE = "/api/workspaces/:workspaceId/runtime-profiles";

const CREATE_BODY = bodySchema({
  display_name: str(),
  protocol_family: str(),
  command_name: str(),
  description: text(LIMITS.DESCRIPTION_CHARS),
  fixed_args: strArray(LIMITS.FIXED_ARGS, LIMITS.PATH_CHARS),
  visibility: str(),
  enabled: bool(),
});
/** protocol_family is not read: an update ignores it. */
const UPDATE_BODY = bodySchema({
  display_name: str(),
  command_name: str(),
  description: text(LIMITS.DESCRIPTION_CHARS),
  fixed_args: strArray(LIMITS.FIXED_ARGS, LIMITS.PATH_CHARS),
  visibility: str(),
  enabled: bool(),
});

/** Runtime profiles: the daemon's list (D6) and the user CRUD (P1–P6). */
export function registerProfileRoutes({ router }: RouteContext): void {
  router.add("GET", "/api/daemon/workspaces/:workspaceId/runtime-profiles", listDaemonProfiles);
  router.add("GET", BASE, listProfiles);
  router.add("GET", `${BASE}/:profileId`, getProfile);
  router.add("POST", BASE, createProfile);
  router.add("PATCH", `${BASE}/:profileId`, updateProfile);
  router.add("PUT", `${BASE}/:profileId`, updateProfile);
  router.add("DELETE", `${BASE}/:profileId`, deleteProfile);
}

/** D6: enabled profiles only; the daemon matches them against its PATH. */
async function listDaemonProfiles(request: RequestWith<"workspaceId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const { workspaceId } = request.params;
  await requireDaemonWorkspace(caller, workspaceId, auth);
  const id = parseUuid(workspaceId);
  if (!id) throw new HttpError(400, "invalid workspace id");
  const { profiles } = await call(clients.profiles.listProfiles({ workspaceId: id, enabledOnly: true }), "failed to list runtime profiles");
  return sendJson(reply, 200, daemonProfileListJson(workspaceId, profiles));
}

/** P1 */
async function listProfiles(request: RequestWith<"workspaceId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMember(caller, request.params.workspaceId, auth);
  const { profiles } = await call(clients.profiles.listProfiles({ workspaceId, enabledOnly: false }), "failed to list runtime profiles");
  return sendJson(reply, 200, { runtime_profiles: profiles.map(profileJson) });
}

/** P2 */
async function getProfile(request: RequestWith<"workspaceId" | "profileId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMember(caller, request.params.workspaceId, auth);
  const profileId = requireProfileId(request.params.profileId);
  const { profile } = await call(clients.profiles.getProfile({ workspaceId, profileId }), "failed to get runtime profile");
  return sendJson(reply, 200, profileJson(required(profile, "a profile")));
}

/** P3 */
async function createProfile(request: RequestWith<"workspaceId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMember(caller, request.params.workspaceId, auth, WRITERS);
  const body = decodeBody(request.body, CREATE_BODY);
  const { profile } = await call(
    clients.profiles.createProfile({
      workspaceId,
      displayName: body.display_name ?? "",
      protocolFamily: body.protocol_family ?? "",
      commandName: body.command_name ?? "",
      description: body.description,
      fixedArgs: body.fixed_args ?? [],
      visibility: body.visibility ?? "",
      enabled: body.enabled,
      createdBy: caller.userId,
    }),
    "failed to create runtime profile",
  );
  return sendJson(reply, 201, profileJson(required(profile, "a profile")));
}

/** P4 and P5: identical partial updates; protocol_family is ignored. */
async function updateProfile(request: RequestWith<"workspaceId" | "profileId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMember(caller, request.params.workspaceId, auth, WRITERS);
  const profileId = requireProfileId(request.params.profileId);
  const body = decodeBody(request.body, UPDATE_BODY);
  const { profile } = await call(
    clients.profiles.updateProfile({
      workspaceId,
      profileId,
      displayName: body.display_name,
      commandName: body.command_name,
      description: body.description,
      fixedArgs: body.fixed_args === undefined ? undefined : { values: body.fixed_args },
      visibility: body.visibility,
      enabled: body.enabled,
      actorId: caller.userId,
    }),
    "failed to update runtime profile",
  );
  return sendJson(reply, 200, profileJson(required(profile, "a profile")));
}

/** P6 */
async function deleteProfile(request: RequestWith<"workspaceId" | "profileId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMember(caller, request.params.workspaceId, auth, WRITERS);
  const profileId = requireProfileId(request.params.profileId);
  await call(clients.profiles.deleteProfile({ workspaceId, profileId, actorId: caller.userId }), "failed to delete runtime profile");
  return sendNoContent(reply);
}

function requireProfileId(raw: string): string {
  const id = parseUuid(raw);
  if (!id) throw new HttpError(400, "invalid profile id");
  return id;
}

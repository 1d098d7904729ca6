import { parseUuid } from "@controlplane/ids";
import { authenticateDaemon, authenticateUser, requireDaemonWorkspace, requireMember } from "../auth/checks.js";
import { daemonProfileListJson, profileJson } from "../shapes.js";
import { LIMITS } from "@controlplane/config";
import { bodySchema, bool, decodeBody, str, strArray, text } from "../wire/body.js";
import { call, HttpError } from "../wire/errors.js";
import { sendJson, sendNoContent } from "../wire/reply.js";
import type { RouteHandler } from "../router.js";
import type { Params, RouteContext } from "./context.js";

const WRITERS = ["owner", "admin"] as const;
const BASE = "/api/workspaces/:workspaceId/runtime-profiles";

/** Runtime profiles: the daemon's list (D6) and the user CRUD (P1–P6). */
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

export function registerProfileRoutes({ router, clients, auth }: RouteContext): void {
  // D6: enabled profiles only; the daemon matches them against its PATH.
  router.add("GET", "/api/daemon/workspaces/:workspaceId/runtime-profiles", async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const { workspaceId } = request.params as Params<"workspaceId">;
    await requireDaemonWorkspace(caller, workspaceId, auth);
    const id = parseUuid(workspaceId);
    if (!id) throw new HttpError(400, "invalid workspace id");
    const { profiles } = await call(clients.profiles.listProfiles({ workspaceId: id, enabledOnly: true }), "failed to list runtime profiles");
    return sendJson(reply, 200, daemonProfileListJson(workspaceId, profiles));
  });

  // P1
  router.add("GET", BASE, async (request, reply) => {
    const caller = await authenticateUser(request, auth);
    const workspaceId = await requireMember(caller, (request.params as Params<"workspaceId">).workspaceId, auth);
    const { profiles } = await call(clients.profiles.listProfiles({ workspaceId, enabledOnly: false }), "failed to list runtime profiles");
    return sendJson(reply, 200, { runtime_profiles: profiles.map(profileJson) });
  });

  // P2
  router.add("GET", `${BASE}/:profileId`, async (request, reply) => {
    const caller = await authenticateUser(request, auth);
    const params = request.params as Params<"workspaceId" | "profileId">;
    const workspaceId = await requireMember(caller, params.workspaceId, auth);
    const profileId = requireProfileId(params.profileId);
    const { profile } = await call(clients.profiles.getProfile({ workspaceId, profileId }), "failed to get runtime profile");
    return sendJson(reply, 200, profileJson(profile!));
  });

  // P3
  router.add("POST", BASE, async (request, reply) => {
    const caller = await authenticateUser(request, auth);
    const workspaceId = await requireMember(caller, (request.params as Params<"workspaceId">).workspaceId, auth, WRITERS);
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
    return sendJson(reply, 201, profileJson(profile!));
  });

  // P4 and P5: identical partial updates; protocol_family is ignored.
  const update: RouteHandler = async (request, reply) => {
    const caller = await authenticateUser(request, auth);
    const params = request.params as Params<"workspaceId" | "profileId">;
    const workspaceId = await requireMember(caller, params.workspaceId, auth, WRITERS);
    const profileId = requireProfileId(params.profileId);
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
    return sendJson(reply, 200, profileJson(profile!));
  };
  router.add("PATCH", `${BASE}/:profileId`, update);
  router.add("PUT", `${BASE}/:profileId`, update);

  // P6
  router.add("DELETE", `${BASE}/:profileId`, async (request, reply) => {
    const caller = await authenticateUser(request, auth);
    const params = request.params as Params<"workspaceId" | "profileId">;
    const workspaceId = await requireMember(caller, params.workspaceId, auth, WRITERS);
    const profileId = requireProfileId(params.profileId);
    await call(clients.profiles.deleteProfile({ workspaceId, profileId, actorId: caller.userId }), "failed to delete runtime profile");
    return sendNoContent(reply);
  });
}

function requireProfileId(raw: string): string {
  const id = parseUuid(raw);
  if (!id) throw new HttpError(400, "invalid profile id");
  return id;
}

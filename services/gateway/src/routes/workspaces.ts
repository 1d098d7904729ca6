import { createHash } from "node:crypto";
import type { FastifyReply } from "fastify";
import { TOKEN_PREFIX } from "@controlplane/auth";
import { authenticateDaemon, authenticateUser, requireDaemonWorkspace, type Caller } from "../auth/checks.js";
import { repoJson, workspaceJson } from "../shapes.js";
import { call, HttpError } from "../wire/errors.js";
import { goMarshal, RawJson, rfc3339 } from "../wire/go-json.js";
import { sendJson, sendJsonWithRaw } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/**
 * Workspace reads daemons make: repos (D5), the daemon's workspace list
 * (N1), the caller's workspaces (U1) and PAT renewal (U2).
 */
export function registerWorkspaceRoutes({ router }: RouteContext): void {
  router.add("GET", "/api/daemon/workspaces", listDaemonWorkspaces);
  router.add("GET", "/api/daemon/workspaces/:workspaceId/repos", getWorkspaceRepos);
  router.add("GET", "/api/workspaces", listWorkspaces);
  router.add("POST", "/api/tokens/current/renew", renewCurrentToken);
}

/**
 * N1: today's daemon lists its workspaces here (and falls back to U1 only
 * on a 404). A user gets every membership, a daemon token its one
 * workspace, as a bare [{id, name}] ordered by id, with a weak ETag over
 * the compact JSON: an If-None-Match equal to it byte for byte is a 304
 * with no body.
 */
async function listDaemonWorkspaces(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const { workspaces } = await call(clients.identity.listDaemonWorkspaces({ caller: daemonWorkspacesCaller(caller) }), "failed to list daemon workspaces");
  const list = workspaces.map((w) => ({ id: w.id, name: w.name }));
  const etag = `W/"${createHash("sha256").update(goMarshal(list)).digest("hex")}"`;
  reply.header("cache-control", "private, no-cache").header("etag", etag);
  if (request.headers["if-none-match"] === etag) return reply.code(304).send();
  return sendJson(reply, 200, list);
}

/** D5 */
async function getWorkspaceRepos(request: RequestWith<"workspaceId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const { workspaceId } = request.params;
  await requireDaemonWorkspace(caller, workspaceId, auth);
  const result = await call(clients.identity.getWorkspaceRepos({ workspaceId }), "failed to load workspace");
  return sendJsonWithRaw(reply, 200, {
    workspace_id: workspaceId,
    repos: result.repos.map(repoJson),
    repos_version: result.reposVersion,
    settings: new RawJson(result.settingsJson || "{}"),
  });
}

/** U1: a bare array of the caller's workspaces. */
async function listWorkspaces(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  if (!caller.userId) throw new HttpError(401, "user not authenticated");
  const { workspaces } = await call(clients.identity.listWorkspaces({ userId: caller.userId }), "failed to list workspaces");
  return sendJsonWithRaw(reply, 200, workspaces.map(workspaceJson));
}

/** U2: renew the presented PAT when it is close to expiry. */
async function renewCurrentToken(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  if (!caller.token.startsWith(TOKEN_PREFIX.personalAccess)) {
    throw new HttpError(400, "only personal access tokens can be renewed");
  }
  const result = await call(clients.identity.renewPersonalAccessToken({ token: caller.token, userId: caller.userId ?? "" }), "failed to renew token");
  return sendJson(reply, 200, { expires_at: result.expiresAt ? rfc3339(result.expiresAt) : "", renewed: result.renewed });
}

/** Who N1 lists for: the user of a PAT or JWT, else the daemon token's workspace (401 when it has none). */
function daemonWorkspacesCaller(caller: Caller): { $case: "userId"; value: string } | { $case: "workspaceId"; value: string } {
  if (caller.kind !== "daemon_token" && caller.userId) return { $case: "userId", value: caller.userId };
  if (!caller.workspaceId) throw new HttpError(401, "daemon workspace identity required");
  return { $case: "workspaceId", value: caller.workspaceId };
}

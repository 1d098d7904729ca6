import type { FastifyRequest } from "fastify";
import { TOKEN_PREFIX } from "@controlplane/auth";
import { parseUuid } from "@controlplane/ids";
import type { GatewayClients } from "../clients.js";
import { HttpError } from "../wire/errors.js";
import { joinedValue, type Query } from "../wire/query.js";
import type { Authenticator, Caller, Role } from "./authenticator.js";

export type { Caller };

/**
 * DaemonAuth: every /api/daemon route. Accepts daemon tokens, PATs and JWTs;
 * errors are written by the middleware writer (no trailing newline).
 */
export async function authenticateDaemon(request: FastifyRequest, auth: Authenticator): Promise<Caller> {
  const header = request.headers.authorization;
  if (!header) throw new HttpError(401, "missing authorization header", "middleware");
  if (!header.startsWith("Bearer ")) throw new HttpError(401, "invalid authorization format", "middleware");
  return auth.resolve(header.slice("Bearer ".length), "middleware");
}

/**
 * authenticateDaemon's caller when the credential is cached, without
 * waiting: the hottest routes save a promise and a turn per check.
 * Undefined: call authenticateDaemon, which also words every refusal.
 */
export function cachedDaemonCaller(request: FastifyRequest, auth: Authenticator): Caller | undefined {
  const header = request.headers.authorization;
  if (header === undefined || !header.startsWith("Bearer ")) return undefined;
  return auth.cachedCaller(header.slice("Bearer ".length));
}

/**
 * The user Auth middleware: PATs and JWTs only (a daemon token is not a user
 * credential and fails like any other non-JWT). Errors are text/plain.
 */
export async function authenticateUser(request: FastifyRequest, auth: Authenticator): Promise<Caller> {
  const header = request.headers.authorization ?? "";
  const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
  if (!token) throw new HttpError(401, "missing authorization", "auth");
  if (token.startsWith(TOKEN_PREFIX.daemon)) throw new HttpError(401, "invalid token", "auth");
  if (token.startsWith(TOKEN_PREFIX.task)) return auth.resolveTaskToken(token, "auth");
  return auth.resolve(token, "auth");
}

/**
 * W: may this daemon-route caller touch `workspaceId`? A daemon token reaches
 * exactly its workspace (compared as sent); a user must be a member. Anything
 * else answers 404 "not found", so ids cannot be probed across workspaces.
 */
export async function requireDaemonWorkspace(caller: Caller, workspaceId: string, auth: Authenticator): Promise<void> {
  if (!workspaceId) throw new HttpError(404, "not found");
  if (caller.kind === "daemon_token") {
    if (caller.workspaceId !== workspaceId) throw new HttpError(404, "not found");
    return;
  }
  if (!caller.userId) throw new HttpError(401, "user not authenticated");
  const role = await auth.roleOf(caller.userId, workspaceId, "failed to check workspace access", "handler");
  if (!role) throw new HttpError(404, "not found");
}

/** True when requireDaemonWorkspace would let the caller in, known without waiting; false: call it. */
export function knownDaemonWorkspace(caller: Caller, workspaceId: string, auth: Authenticator): boolean {
  if (!workspaceId) return false;
  if (caller.kind === "daemon_token") return caller.workspaceId === workspaceId;
  return caller.userId !== undefined && auth.cachedRole(caller.userId, workspaceId) !== undefined;
}

/**
 * The path-scoped workspace middleware of user routes: the caller must be a
 * member, and for writes hold one of `roles`. Returns the canonical id.
 */
export async function requireMember(caller: Caller, rawWorkspaceId: string, auth: Authenticator, roles?: readonly Role[]): Promise<string> {
  if (!caller.userId) throw new HttpError(401, "user not authenticated", "middleware");
  const workspaceId = parseUuid(rawWorkspaceId);
  if (!workspaceId) throw new HttpError(400, "invalid workspace_id", "middleware");
  await requireRole(caller, workspaceId, auth, roles);
  return workspaceId;
}

/** The caller's workspaces, where requireMemberByHeader looks up a workspace named by slug. */
export function workspaceLister(clients: GatewayClients): (userId: string) => Promise<Array<{ id: string; slug: string }>> {
  return async (userId: string) => (await clients.identity.listWorkspaces({ userId })).workspaces;
}

/**
 * The header-scoped workspace middleware (issue and task routes): the
 * workspace comes from the task token, else ?workspace_slug, X-Workspace-Slug,
 * ?workspace_id, X-Workspace-ID, in that order; then membership and role.
 */
export async function requireMemberByHeader(
  request: FastifyRequest<{ Querystring: Query }>,
  caller: Caller,
  auth: Authenticator,
  listSlugs: (userId: string) => Promise<Array<{ id: string; slug: string }>>,
  roles?: readonly Role[],
): Promise<string> {
  const query = request.query;
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  if (!caller.userId) throw new HttpError(401, "user not authenticated", "middleware");
  const slug = joinedValue(query.workspace_slug) || header("x-workspace-slug");
  let raw: string | undefined;
  if (slug) {
    const match = (await listSlugs(caller.userId)).find((w) => w.slug === slug);
    if (!match) throw new HttpError(404, "workspace not found", "middleware");
    raw = match.id;
  }
  raw ??= joinedValue(query.workspace_id) || header("x-workspace-id");
  // A task token pins the request to its own workspace; naming another is refused below.
  if (caller.kind === "task_token") raw ??= caller.workspaceId;
  if (raw === undefined) throw new HttpError(400, "workspace_id or workspace_slug is required", "middleware");
  const workspaceId = parseUuid(raw);
  if (!workspaceId) throw new HttpError(400, "invalid workspace_id", "middleware");
  await requireRole(caller, workspaceId, auth, roles);
  return workspaceId;
}

async function requireRole(caller: Caller, workspaceId: string, auth: Authenticator, roles?: readonly Role[]): Promise<Role> {
  if (caller.kind === "task_token" && caller.workspaceId !== workspaceId) {
    throw new HttpError(403, "task token is bound to a different workspace", "middleware");
  }
  // Every caller has checked this already; the check keeps the type honest.
  if (!caller.userId) throw new HttpError(401, "user not authenticated", "middleware");
  const role = await auth.roleOf(caller.userId, workspaceId, "failed to check workspace access", "middleware");
  if (!role) throw new HttpError(404, "workspace not found", "middleware");
  if (roles && !roles.includes(role)) throw new HttpError(403, "insufficient permissions", "middleware");
  return role;
}

export { requireRole };

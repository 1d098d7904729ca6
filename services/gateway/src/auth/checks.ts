import type { FastifyRequest } from "fastify";
import { TOKEN_PREFIX } from "@controlplane/auth";
import { parseUuid } from "@controlplane/ids";
import { HttpError } from "../wire/errors.js";
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
 * The user Auth middleware: PATs and JWTs only (a daemon token is not a user
 * credential and fails like any other non-JWT). Errors are text/plain.
 */
export async function authenticateUser(request: FastifyRequest, auth: Authenticator): Promise<Caller> {
  const header = request.headers.authorization ?? "";
  const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
  if (!token) throw new HttpError(401, "missing authorization", "auth");
  if (token.startsWith(TOKEN_PREFIX.daemon)) throw new HttpError(401, "invalid token", "auth");
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

/**
 * The path-scoped workspace middleware of user routes: the caller must be a
 * member, and for writes hold one of `roles`. Returns the canonical id.
 */
export async function requireMember(
  caller: Caller,
  rawWorkspaceId: string,
  auth: Authenticator,
  roles?: readonly Role[],
): Promise<string> {
  if (!caller.userId) throw new HttpError(401, "user not authenticated", "middleware");
  const workspaceId = parseUuid(rawWorkspaceId);
  if (!workspaceId) throw new HttpError(400, "invalid workspace_id", "middleware");
  const role = await auth.roleOf(caller.userId, workspaceId, "failed to check workspace access", "middleware");
  if (!role) throw new HttpError(404, "workspace not found", "middleware");
  if (roles && !roles.includes(role)) throw new HttpError(403, "insufficient permissions", "middleware");
  return workspaceId;
}

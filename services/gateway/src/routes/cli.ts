import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { User } from "@controlplane/proto/registry/v1/identity";
import { authenticateUser, requireMember, requireMemberByHeader, workspaceLister } from "../auth/checks.js";
import { runtimeJson, workspaceJson } from "../shapes.js";
import { bodySchema, decodeBody, str } from "../wire/body.js";
import { call, HttpError, required } from "../wire/errors.js";
import { RawJson, rfc3339, rfc3339OrNull } from "../wire/go-json.js";
import { sendJson, sendJsonWithRaw } from "../wire/reply.js";
import { firstValue } from "../wire/query.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/**
 * Longest lifetime a CLI token may ask for: 100 years (the original took any
 * day count and overflowed past ~290 years; ours answers 400 past this).
 */
export const MAX_TOKEN_DAYS = 36_500;
const DAY_SECONDS = 86_400;

const TOKEN_BODY = bodySchema({
  name: str(),
  // Absent, null, zero or negative: the token never expires.
  expires_in_days: z.number().int().min(Number.MIN_SAFE_INTEGER).max(MAX_TOKEN_DAYS).nullish(),
});

/**
 * The user routes a daemon host's CLI needs (§13.11), behind the user Auth
 * middleware: `multica login` (POST /api/tokens, then GET /api/me), `auth
 * status` and the `daemon restart` preflight (GET /api/me), `runtime list`
 * (GET /api/runtimes) and `repo …` (GET /api/workspaces/{id}). Answers are
 * the original's structs, fields in declaration order.
 */
export function registerCliRoutes({ router }: RouteContext): void {
  router.add("GET", "/api/me", getMe);
  router.add("POST", "/api/tokens", createToken);
  router.add("GET", "/api/runtimes", listRuntimes);
  router.add("GET", "/api/workspaces/:workspaceId", getWorkspace);
}

/**
 * The caller as a user. Users live in the product: the answer is what it
 * recorded (RecordUser), else what the credential tells (the user id and a
 * JWT's email claim, the rest empty). 404 `user not found` only for a user
 * id that is not a UUID.
 */
async function getMe(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  if (!caller.userId) throw new HttpError(401, "user not authenticated");
  const { user } = await call(clients.identity.getUser({ userId: caller.userId, emailClaim: caller.email }), "failed to get user");
  return sendJsonWithRaw(reply, 200, userJson(required(user, "a user")));
}

/** A personal access token for the caller, shown once (201). A task token may not mint one. */
async function createToken(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  if (!caller.userId) throw new HttpError(401, "user not authenticated");
  if (caller.kind === "task_token") throw new HttpError(403, "a task token cannot create personal access tokens");
  const body = decodeBody(request.body, TOKEN_BODY);
  if (!body.name) throw new HttpError(400, "name is required");
  const days = body.expires_in_days ?? 0;
  const issued = await call(
    clients.identity.issuePersonalAccessToken({ userId: caller.userId, name: body.name, ttlSeconds: days > 0 ? days * DAY_SECONDS : 0 }),
    "failed to create token",
  );
  const info = required(issued.info, "the token's info");
  return sendJson(reply, 201, {
    id: info.id,
    name: info.name,
    token_prefix: info.prefix,
    expires_at: rfc3339OrNull(info.expiresAt),
    // A new token was never used.
    last_used_at: null,
    created_at: rfc3339(info.createdAt ?? new Date(0)),
    token: issued.token,
  });
}

/**
 * The workspace's runtimes, oldest first, in today's runtime shape; with
 * ?owner=me only the caller's. The workspace comes from the header-scoped
 * middleware (the CLI sends X-Workspace-ID).
 */
async function listRuntimes(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMemberByHeader(request, caller, auth, workspaceLister(clients));
  const owner = firstValue(request.query.owner);
  const ownerId = owner === "me" ? caller.userId : undefined;
  const { runtimes } = await call(clients.registry.listRuntimes({ workspaceId, ownerId }), "failed to list runtimes");
  return sendJsonWithRaw(
    reply,
    200,
    runtimes.map((runtime) => runtimeJson(runtime, { withCustomName: true })),
  );
}

/** One workspace the caller is a member of, as in GET /api/workspaces. */
async function getWorkspace(request: RequestWith<"workspaceId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateUser(request, auth);
  const workspaceId = await requireMember(caller, request.params.workspaceId, auth);
  const { workspace } = await call(clients.identity.getWorkspace({ workspaceId }), "failed to get workspace");
  return sendJsonWithRaw(reply, 200, workspaceJson(required(workspace, "a workspace")));
}

/**
 * The original's UserResponse: nullable strings as null, the questionnaire
 * as stored JSON ({} by default), times RFC 3339 ("" for a user the product
 * never recorded: nothing here knows when it was created).
 */
export function userJson(user: User) {
  return {
    id: user.id,
    name: user.name,
    email: user.email,
    avatar_url: user.avatarUrl ?? null,
    language: user.language ?? null,
    timezone: user.timezone ?? null,
    onboarded_at: rfc3339OrNull(user.onboardedAt),
    onboarding_questionnaire: new RawJson(user.onboardingQuestionnaireJson || "{}"),
    starter_content_state: user.starterContentState ?? null,
    profile_description: user.profileDescription,
    created_at: user.createdAt ? rfc3339(user.createdAt) : "",
    updated_at: user.updatedAt ? rfc3339(user.updatedAt) : "",
  };
}

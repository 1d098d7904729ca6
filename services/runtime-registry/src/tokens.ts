import { generateToken, hashToken, TOKEN_PREFIX } from "@controlplane/auth";
import { InvalidArgumentError, NotFoundError, requireUuid, UnauthenticatedError } from "@controlplane/grpc";
import { isForeignKeyViolation, type CommonQueryMethods, type DatabasePool, type Outbox } from "@controlplane/db";
import type { EventBody } from "@controlplane/events";
import { parseUuid } from "@controlplane/ids";
import type { Logger } from "@controlplane/log";
import { TokenKind, type Identity, type TokenInfo } from "@controlplane/proto/registry/v1/identity";
import { verifyJwt } from "./jwt.js";
import * as repo from "./repository/tokens.js";
import { WORKSPACE_NOT_FOUND } from "./workspaces.js";

const DAY_MS = 24 * 3600 * 1000;
/** A renewal pushes the expiry this far out... */
export const PAT_RENEW_EXTENSION_MS = 90 * DAY_MS;
/** ...but only once less than this remains, so renewals are rare writes. */
export const PAT_RENEW_WINDOW_MS = 7 * DAY_MS;
/** Characters of the token kept for recognising it in listings. */
const PREFIX_LENGTH = 12;

export async function issueDaemonToken(pool: DatabasePool, workspaceId: string, daemonId: string, ttlSeconds: number) {
  const ws = requireUuid(workspaceId, "workspace_id");
  const daemon = daemonId.trim();
  if (!daemon) throw new InvalidArgumentError("daemon_id is required");
  const token = generateToken(TOKEN_PREFIX.daemon);
  try {
    const row = await repo.insertDaemonToken(pool, {
      hash: hashToken(token),
      prefix: token.slice(0, PREFIX_LENGTH),
      workspaceId: ws,
      daemonId: daemon,
      expiresAt: expiryFrom(ttlSeconds),
    });
    return { token, info: daemonInfo(row) };
  } catch (error) {
    if (isForeignKeyViolation(error)) throw new NotFoundError(WORKSPACE_NOT_FOUND);
    throw error;
  }
}

export async function issuePersonalAccessToken(pool: DatabasePool, userId: string, name: string, ttlSeconds: number) {
  const user = requireUuid(userId, "user_id");
  const token = generateToken(TOKEN_PREFIX.personalAccess);
  const row = await repo.insertPat(pool, {
    hash: hashToken(token),
    prefix: token.slice(0, PREFIX_LENGTH),
    userId: user,
    // As given: the original stored the name untrimmed (and answers it so).
    name,
    expiresAt: expiryFrom(ttlSeconds),
  });
  return { token, info: patInfo(row) };
}

/**
 * Revokes a daemon token or PAT by id, announcing `token.revoked` in the
 * same transaction so that whoever cached an identity resolved from it
 * (Identity.token_id) can drop it. Revoking twice is harmless: the second
 * time changes nothing, announces nothing and answers the token as it is.
 */
export async function revokeToken(outbox: Outbox, tokenId: string): Promise<TokenInfo> {
  const id = parseUuid(tokenId);
  if (!id) throw new NotFoundError("token not found");
  return outbox.transaction(async (tx) => {
    const daemon = await repo.revokeDaemonToken(tx, id);
    if (daemon) {
      await outbox.write(tx, "token.revoked", daemonRevoked(daemon), { workspaceId: daemon.workspace_id });
      return daemonInfo(daemon);
    }
    const pat = await repo.revokePat(tx, id);
    if (pat) {
      // A PAT belongs to a user, not to a workspace.
      await outbox.write(tx, "token.revoked", patRevoked(pat), { workspaceId: "" });
      return patInfo(pat);
    }
    return alreadyRevoked(tx, id);
  });
}

/** The answer for a token that was revoked before (NOT_FOUND when there is no such token). */
async function alreadyRevoked(db: CommonQueryMethods, id: string): Promise<TokenInfo> {
  const daemon = await repo.findDaemonTokenById(db, id);
  if (daemon) return daemonInfo(daemon);
  const pat = await repo.findPatById(db, id);
  if (pat) return patInfo(pat);
  throw new NotFoundError("token not found");
}

function daemonRevoked(row: repo.DaemonTokenRow): EventBody<"token.revoked"> {
  return { tokenId: row.id, kind: TokenKind.TOKEN_KIND_DAEMON, workspaceId: row.workspace_id, daemonId: row.daemon_id };
}

function patRevoked(row: repo.PatRow): EventBody<"token.revoked"> {
  return { tokenId: row.id, kind: TokenKind.TOKEN_KIND_PERSONAL_ACCESS, userId: row.user_id };
}

export async function listTokens(pool: DatabasePool, workspaceId?: string, userId?: string): Promise<TokenInfo[]> {
  const tokens: TokenInfo[] = [];
  if (workspaceId) tokens.push(...(await repo.listDaemonTokens(pool, requireUuid(workspaceId, "workspace_id"))).map(daemonInfo));
  if (userId) tokens.push(...(await repo.listPats(pool, requireUuid(userId, "user_id"))).map(patInfo));
  if (!workspaceId && !userId) throw new InvalidArgumentError("workspace_id or user_id is required");
  return tokens;
}

/**
 * Resolves a bearer token by its prefix: mdt_ daemon token, mul_ personal
 * access token, anything else a JWT (so a mat_ task token is an invalid JWT).
 */
export async function resolveToken(pool: DatabasePool, token: string, jwtSecret: Uint8Array, log: Logger): Promise<Identity> {
  if (token.startsWith(TOKEN_PREFIX.daemon)) {
    const row = await repo.findLiveDaemonToken(pool, hashToken(token));
    if (!row) throw new UnauthenticatedError("invalid daemon token");
    return {
      kind: TokenKind.TOKEN_KIND_DAEMON,
      workspaceId: row.workspace_id,
      daemonId: row.daemon_id,
      expiresAt: row.expires_at ?? undefined,
      tokenId: row.id,
    };
  }
  if (token.startsWith(TOKEN_PREFIX.personalAccess)) {
    const row = await repo.findLivePat(pool, hashToken(token));
    if (!row) throw new UnauthenticatedError("invalid token");
    repo.touchPat(pool, row.id).catch((error: unknown) => log.warn({ err: error, token_id: row.id }, "last_used_at update failed"));
    return { kind: TokenKind.TOKEN_KIND_PERSONAL_ACCESS, userId: row.user_id, expiresAt: row.expires_at ?? undefined, tokenId: row.id };
  }
  const claims = await verifyJwt(token, jwtSecret);
  return { kind: TokenKind.TOKEN_KIND_JWT, userId: claims.userId, email: claims.email, expiresAt: claims.expiresAt };
}

/**
 * Extends a PAT to now + 90 days when less than 7 days remain. A token that
 * never expires is left alone; of two concurrent renewals one wins and the
 * other reports the winner's expiry with renewed=false.
 */
export async function renewPersonalAccessToken(pool: DatabasePool, token: string, userId: string) {
  if (!token.startsWith(TOKEN_PREFIX.personalAccess)) {
    throw new InvalidArgumentError("only personal access tokens can be renewed");
  }
  const row = await repo.findLivePat(pool, hashToken(token));
  if (!row) throw new UnauthenticatedError("token is no longer valid");
  if (row.user_id !== parseUuid(userId)) throw new UnauthenticatedError("token does not belong to caller");
  if (row.expires_at === null) return { expiresAt: undefined, renewed: false };
  if (row.expires_at.getTime() - Date.now() >= PAT_RENEW_WINDOW_MS) return { expiresAt: row.expires_at, renewed: false };
  const extended = await repo.extendPat(pool, row.id, row.expires_at, new Date(Date.now() + PAT_RENEW_EXTENSION_MS));
  if (extended) return { expiresAt: extended.expires_at ?? undefined, renewed: true };
  const current = await repo.findPatById(pool, row.id);
  return { expiresAt: current?.expires_at ?? undefined, renewed: false };
}

/** The longest lifetime a token may be given (100 years): any longer is not a date Postgres and JavaScript agree on. */
export const MAX_TTL_SECONDS = 100 * 365.25 * 24 * 3600;

function expiryFrom(ttlSeconds: number): Date | null {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds < 0) throw new InvalidArgumentError("ttl_seconds must not be negative");
  if (ttlSeconds > MAX_TTL_SECONDS) throw new InvalidArgumentError(`ttl_seconds must be at most ${MAX_TTL_SECONDS}`);
  return ttlSeconds === 0 ? null : new Date(Date.now() + ttlSeconds * 1000);
}

function daemonInfo(row: repo.DaemonTokenRow): TokenInfo {
  return {
    id: row.id,
    kind: TokenKind.TOKEN_KIND_DAEMON,
    prefix: row.token_prefix,
    workspaceId: row.workspace_id,
    daemonId: row.daemon_id,
    name: "",
    expiresAt: row.expires_at ?? undefined,
    revokedAt: row.revoked_at ?? undefined,
    createdAt: row.created_at,
  };
}

function patInfo(row: repo.PatRow): TokenInfo {
  return {
    id: row.id,
    kind: TokenKind.TOKEN_KIND_PERSONAL_ACCESS,
    prefix: row.token_prefix,
    userId: row.user_id,
    name: row.name,
    expiresAt: row.expires_at ?? undefined,
    revokedAt: row.revoked_at ?? undefined,
    createdAt: row.created_at,
  };
}

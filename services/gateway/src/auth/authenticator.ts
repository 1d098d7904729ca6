import { hasCode, status } from "@controlplane/grpc";
import { TokenKind, type Identity } from "@controlplane/proto/registry/v1/identity";
import type { GatewayClients } from "../clients.js";
import { HttpError, type ErrorStyle } from "../wire/errors.js";
import { ReadThrough, TtlCache } from "@controlplane/cache";

export type Role = "owner" | "admin" | "member";

/** Who is calling, as far as the gateway needs to know. */
export interface Caller {
  kind: "daemon_token" | "pat" | "jwt" | "task_token";
  /** PAT, JWT and task-token callers (a task token acts for the runtime's owner). */
  userId?: string;
  /** Daemon- and task-token callers: the only workspace they reach. */
  workspaceId?: string;
  daemonId?: string;
  /** Task-token callers: the agent and task the token was minted for. */
  agentId?: string;
  taskId?: string;
  /** The raw bearer token, for the few routes that act on it (renew). */
  token: string;
  /** Daemon tokens and PATs: the token's id, which a revocation names. */
  tokenId?: string;
  /** JWT callers: the token's email claim, when it has one. */
  email?: string;
}

const ROLE_NAMES: Record<number, Role> = { 1: "owner", 2: "admin", 3: "member" };

/**
 * Resolves bearer tokens and memberships through the registry, caching
 * positive answers for `ttlMs` (clamped to the credential's own expiry).
 * Negative answers are never cached, so a new member or token works at once.
 */
export class Authenticator {
  // Read-through with refresh-ahead: a token or membership in steady use is
  // re-read shortly before it expires, so a fleet's requests never all miss
  // at once; concurrent misses share one registry call.
  private readonly identities: ReadThrough<Identity>;
  private readonly taskTokens: TtlCache<Caller>;
  private readonly roles: ReadThrough<Role | null>;
  /** Token id -> the raw token cached under it, so a revocation (which names the id) drops the entry. */
  private readonly tokensById: TtlCache<string>;

  constructor(
    private readonly clients: GatewayClients,
    ttlMs: number,
  ) {
    this.tokensById = new TtlCache(ttlMs, 200_000);
    this.identities = new ReadThrough(
      new TtlCache(ttlMs),
      async (token) => {
        const { identity } = await this.clients.identity.resolveToken({ token });
        if (!identity) throw new Error("the registry answered without an identity");
        if (identity.tokenId) this.tokensById.set(identity.tokenId, token);
        return identity;
      },
      { notAfter: (identity) => identity.expiresAt, refreshAheadMs: ttlMs / 3 },
    );
    this.taskTokens = new TtlCache(ttlMs);
    this.roles = new ReadThrough(
      new TtlCache(ttlMs),
      async (key) => {
        // The user id (ours, a UUID) comes first; the workspace id is as sent.
        const cut = key.indexOf(":");
        const userId = key.slice(0, cut);
        const workspaceId = key.slice(cut + 1);
        try {
          const { member } = await this.clients.identity.getMembership({ workspaceId, userId });
          return (member && ROLE_NAMES[member.role]) ?? null;
        } catch (error) {
          if (hasCode(error, status.NOT_FOUND)) return null;
          throw error;
        }
      },
      // Not being a member is never cached: a new member gets in at once.
      { keep: (role) => role !== null, refreshAheadMs: ttlMs / 3 },
    );
  }

  /**
   * The identity behind `token`. A token the registry rejects answers 401 with
   * its message; a registry outage answers 503, never 401 (a daemon treats
   * 401 as "log in again").
   */
  async resolve(token: string, style: ErrorStyle): Promise<Caller> {
    let identity: Identity;
    try {
      identity = await this.identities.get(token);
    } catch (error) {
      if (hasCode(error, status.UNAUTHENTICATED)) throw new HttpError(401, error.details, style);
      throw new HttpError(503, "authentication unavailable", style, { cause: error });
    }
    return toCaller(identity, token);
  }

  /** The caller behind `token` if its identity is cached, without waiting; undefined: call resolve. */
  cachedCaller(token: string): Caller | undefined {
    const identity = this.identities.peek(token);
    return identity === undefined ? undefined : toCaller(identity, token);
  }

  /** A revoked token is refused from its next request on, not only when its cache entry expires. */
  forgetToken(tokenId: string): void {
    const token = this.tokensById.get(tokenId);
    if (token === undefined) return;
    this.identities.forget(token);
    this.tokensById.delete(tokenId);
  }

  /** A membership that changed is read again on its next use. */
  forgetMembership(userId: string, workspaceId: string): void {
    this.roles.forget(`${userId}:${workspaceId}`);
  }

  /** A mat_ task token (user routes only): the task queue knows it. */
  async resolveTaskToken(token: string, style: ErrorStyle): Promise<Caller> {
    const cached = this.taskTokens.get(token);
    if (cached) return cached;
    const resolved = await this.clients.tasks.resolveTaskToken({ token }).catch((error: unknown) => {
      if (hasCode(error, status.UNAUTHENTICATED)) throw new HttpError(401, error.details, style);
      throw new HttpError(503, "authentication unavailable", style, { cause: error });
    });
    const caller: Caller = {
      kind: "task_token",
      userId: resolved.userId,
      workspaceId: resolved.workspaceId,
      agentId: resolved.agentId,
      taskId: resolved.taskId,
      token,
    };
    this.taskTokens.set(token, caller, resolved.expiresAt);
    return caller;
  }

  /**
   * The caller's role in the workspace, or null when not a member (or an id is
   * not a UUID). Infrastructure failures throw a 5xx with `failureMessage`.
   */
  /** The user's role in the workspace if cached, without waiting (not being a member is never cached); undefined: call roleOf. */
  cachedRole(userId: string, workspaceId: string): Role | undefined {
    return this.roles.peek(`${userId}:${workspaceId}`) ?? undefined;
  }

  async roleOf(userId: string, workspaceId: string, failureMessage: string, style: ErrorStyle): Promise<Role | null> {
    try {
      return await this.roles.get(`${userId}:${workspaceId}`);
    } catch (error) {
      throw new HttpError(hasCode(error, status.UNAVAILABLE) ? 503 : 500, failureMessage, style, { cause: error });
    }
  }
}

function toCaller(identity: Identity, token: string): Caller {
  switch (identity.kind) {
    case TokenKind.TOKEN_KIND_DAEMON:
      return { kind: "daemon_token", workspaceId: identity.workspaceId, daemonId: identity.daemonId, token, tokenId: identity.tokenId };
    case TokenKind.TOKEN_KIND_PERSONAL_ACCESS:
      return { kind: "pat", userId: identity.userId, token, tokenId: identity.tokenId };
    default:
      return { kind: "jwt", userId: identity.userId, token, email: identity.email };
  }
}

import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { WebSocket } from "ws";
import { decodeEvent, isEventType, pendingActionSubject, taskWakeSubject } from "@controlplane/events";
import type { Logger } from "@controlplane/log";
import type { Authenticator } from "../auth/authenticator.js";
import type { Resources } from "../auth/resources.js";
import type { GatewayClients } from "../clients.js";
import { HttpError } from "../wire/errors.js";
import { DaemonConnection, type CloseReason, type SocketIdentity } from "./connection.js";
import { pendingWorkFrame, runtimeProfilesChangedFrame, taskAvailableFrame, workspacesChangedFrame } from "./frames.js";
import { InboundFrames } from "./inbound.js";
import { socketMetrics } from "./metrics.js";

export interface SocketHubOptions {
  clients: GatewayClients;
  auth: Authenticator;
  resources: Resources;
  /** Absent when NATS is not configured: sockets then carry heartbeats only. */
  nc: NatsConnection | undefined;
  subjectRoot: string;
  log: Logger;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  sendQueueFrames: number;
  reauthIntervalMs: number;
  drainMs: number;
}

/**
 * Every daemon socket this gateway replica holds, indexed by runtime,
 * workspace and user. Wake-ups and pending-work signals arrive over core
 * NATS on one subject per runtime, subscribed only while a socket here
 * watches that runtime; profile, membership and revocation events arrive
 * on their event subjects. Heartbeats go to liveness through the same
 * batcher as HTTP beats.
 *
 * Why a missed wake-up is safe: it is only a hint. The daemon still claims
 * over HTTP, every 30 s at the latest, and once after every reconnect; a
 * task is never handed out by the socket itself.
 */
export class SocketHub {
  private readonly connections = new Set<DaemonConnection>();
  private readonly byRuntime = new Map<string, Set<DaemonConnection>>();
  private readonly byWorkspace = new Map<string, Set<DaemonConnection>>();
  private readonly byUser = new Map<string, Set<DaemonConnection>>();
  private readonly runtimeSubscriptions = new Map<string, Subscription[]>();
  /** Per watched runtime: settles once NATS has its subscriptions (a wake-up published after that reaches this replica). */
  private readonly subscribedAt = new Map<string, Promise<void>>();
  private readonly eventSubscriptions: Subscription[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private draining = false;
  private readonly inbound: InboundFrames;

  constructor(private readonly options: SocketHubOptions) {
    this.inbound = new InboundFrames(options);
    this.subscribeToEvents();
    const tick = Math.max(50, Math.min(options.pingIntervalMs, options.pongTimeoutMs - options.pingIntervalMs) / 4);
    this.timers.push(setInterval(() => this.keepAlive(), tick));
    this.timers.push(setInterval(() => void this.reauthorize(), options.reauthIntervalMs));
    for (const timer of this.timers) timer.unref();
    socketMetrics.register(this);
  }

  get size(): number {
    return this.connections.size;
  }

  /** Takes over an upgraded socket. */
  attach(ws: WebSocket, identity: SocketIdentity): void {
    if (this.draining) {
      ws.close(1001, "server shutting down");
      return;
    }
    const connection = new DaemonConnection(ws, identity, this.options.sendQueueFrames, (c, reason) => this.evicted(c, reason));
    this.connections.add(connection);
    for (const runtimeId of identity.runtimes.keys()) this.index(this.byRuntime, runtimeId, connection, () => this.watchRuntime(runtimeId));
    for (const workspaceId of identity.workspaceIds) this.index(this.byWorkspace, workspaceId, connection);
    if (identity.caller.userId) this.index(this.byUser, identity.caller.userId, connection);
    socketMetrics.connects.inc();
    ws.on("message", (data, isBinary) => this.inbound.received(connection, isBinary ? Buffer.from(data as Buffer).toString("utf8") : String(data)));
    ws.on("close", () => this.detach(connection));
    ws.on("error", (error) => this.options.log.debug({ err: error }, "daemon socket error"));
  }

  /**
   * SIGTERM: every socket gets a close frame (1001, going away) so its daemon
   * reconnects to another replica at once; those that do not finish the
   * close handshake within the drain time are cut.
   */
  async drain(): Promise<void> {
    this.draining = true;
    for (const timer of this.timers) clearInterval(timer);
    const closing = [...this.connections].map(
      (c) => new Promise<void>((resolve) => (c.ws.readyState === c.ws.CLOSED ? resolve() : c.ws.once("close", () => resolve()))),
    );
    for (const connection of this.connections) connection.close("shutdown");
    const timer = setTimeout(() => {
      for (const connection of this.connections) connection.ws.terminate();
    }, this.options.drainMs);
    await Promise.all(closing);
    clearTimeout(timer);
    for (const subscription of this.eventSubscriptions) subscription.unsubscribe();
    for (const subscriptions of this.runtimeSubscriptions.values()) for (const s of subscriptions) s.unsubscribe();
    this.runtimeSubscriptions.clear();
    socketMetrics.unregister(this);
  }

  /** Sockets watching `runtimeId` right now (for tests and `status`). */
  watching(runtimeId: string): number {
    return this.byRuntime.get(runtimeId)?.size ?? 0;
  }

  /**
   * Whether this replica watches `runtimeId` and the NATS server has its
   * subscriptions: a wake-up published from now on reaches its sockets.
   * A socket is attached, and its runtimes subscribed, as its upgrade
   * completes, so a wake-up published at that very moment can still miss
   * it (the daemon's claim on connect covers that); tests wait for this.
   */
  async subscribed(runtimeId: string): Promise<boolean> {
    const flushed = this.subscribedAt.get(runtimeId);
    if (!flushed) return false;
    await flushed;
    return this.subscribedAt.has(runtimeId);
  }

  /** Sends a frame to every socket of `targets`; wake-ups evict sockets that cannot keep up. */
  private fanOut(targets: Set<DaemonConnection> | undefined, frame: string, kind: "wake" | "hint"): void {
    if (!targets || targets.size === 0) {
      socketMetrics.wakeups.inc({ kind, result: "no_socket" });
      return;
    }
    for (const connection of targets) {
      void connection.send(frame, { evictIfFull: kind === "wake" }).then((sent) => socketMetrics.wakeups.inc({ kind, result: sent ? "sent" : "dropped" }));
    }
  }

  private watchRuntime(runtimeId: string): void {
    const nc = this.options.nc;
    if (!nc || nc.isClosed()) return;
    const root = this.options.subjectRoot;
    const wake = nc.subscribe(taskWakeSubject(root, runtimeId), {
      callback: (_error, message) => {
        const taskId = message.data.length > 0 ? message.string() : undefined;
        this.fanOut(this.byRuntime.get(runtimeId), taskAvailableFrame(runtimeId, taskId), "wake");
      },
    });
    const pending = nc.subscribe(pendingActionSubject(root, runtimeId), {
      callback: () => this.fanOut(this.byRuntime.get(runtimeId), pendingWorkFrame(runtimeId), "hint"),
    });
    this.runtimeSubscriptions.set(runtimeId, [wake, pending]);
    // A flush is a round trip after the SUBs on the same connection: once it answers, the server has them.
    this.subscribedAt.set(
      runtimeId,
      nc.flush().catch(() => undefined),
    );
  }

  private unwatchRuntime(runtimeId: string): void {
    for (const subscription of this.runtimeSubscriptions.get(runtimeId) ?? []) subscription.unsubscribe();
    this.runtimeSubscriptions.delete(runtimeId);
    this.subscribedAt.delete(runtimeId);
  }

  /** Profile changes, membership changes, revocations and runtime deletions, as they are published (at most once: they are hints). */
  private subscribeToEvents(): void {
    const nc = this.options.nc;
    if (!nc) return;
    const root = this.options.subjectRoot;
    const on = (subject: string, handle: (type: string, data: Uint8Array) => void) =>
      this.eventSubscriptions.push(
        nc.subscribe(subject, {
          callback: (_error, message) => {
            const type = message.subject.slice(root.length + 1);
            try {
              if (isEventType(type)) handle(type, message.data);
            } catch (error) {
              this.options.log.debug({ err: error, subject: message.subject }, "event for daemon sockets not understood");
            }
          },
        }),
      );
    on(`${root}.profile.*`, (type, data) => this.profileChanged(type, data));
    on(`${root}.member.*`, (type, data) => this.membershipChanged(type, data));
    on(`${root}.token.revoked`, (_type, data) => this.tokenRevoked(data));
    // Not about sockets: the runtime reads of daemon routes, which may then live long.
    on(`${root}.runtime.deleted`, (_type, data) => this.options.resources.forgetRuntime(decodeEvent("runtime.deleted", data).runtimeId));
  }

  private profileChanged(type: string, data: Uint8Array): void {
    let workspaceId: string | undefined;
    let profileId: string | undefined;
    if (type === "profile.deleted") {
      const event = decodeEvent("profile.deleted", data);
      [workspaceId, profileId] = [event.meta?.workspaceId, event.profileId];
    } else if (type === "profile.created" || type === "profile.updated") {
      const event = decodeEvent(type, data);
      [workspaceId, profileId] = [event.meta?.workspaceId, event.profile?.id];
    }
    if (workspaceId) this.fanOut(this.byWorkspace.get(workspaceId), runtimeProfilesChangedFrame(workspaceId, profileId), "hint");
  }

  private membershipChanged(type: string, data: Uint8Array): void {
    if (type !== "member.added" && type !== "member.removed") return;
    const event = decodeEvent(type, data);
    const workspaceId = event.meta?.workspaceId;
    if (!event.userId) return;
    this.options.auth.forgetMembership(event.userId, workspaceId ?? "");
    this.fanOut(this.byUser.get(event.userId), workspacesChangedFrame(), "hint");
    if (type === "member.removed" && workspaceId) {
      for (const connection of this.byUser.get(event.userId) ?? []) {
        if (connection.identity.workspaceIds.has(workspaceId)) connection.close("revoked");
      }
    }
  }

  private tokenRevoked(data: Uint8Array): void {
    const event = decodeEvent("token.revoked", data);
    this.options.auth.forgetToken(event.tokenId);
    for (const connection of this.connections) {
      if (connection.identity.caller.tokenId === event.tokenId) connection.close("revoked");
    }
  }

  /** Pings every socket due one, and closes those whose last pong is too old. */
  private keepAlive(): void {
    const now = Date.now();
    for (const connection of this.connections) {
      if (now - connection.lastPongAt > this.options.pongTimeoutMs) connection.close("pong_timeout");
      else if (now - connection.lastPingAt >= this.options.pingIntervalMs) connection.ping();
    }
  }

  /**
   * Checks every socket's credentials again (through the auth cache): a
   * token revoked or a membership removed closes its socket even if the
   * registry's event was missed.
   */
  private async reauthorize(): Promise<void> {
    for (const connection of [...this.connections]) {
      if (!connection.isOpen) continue;
      try {
        if (!(await stillAuthorized(this.options.auth, connection.identity))) connection.close("revoked");
      } catch (error) {
        // The registry is unreachable: keep the socket (an outage is not a revocation).
        this.options.log.debug({ err: error }, "daemon socket re-authorization skipped");
      }
    }
  }

  private evicted(connection: DaemonConnection, reason: CloseReason): void {
    socketMetrics.closes.inc({ reason });
    if (reason !== "shutdown") this.options.log.info({ reason, runtimes: connection.identity.runtimes.size }, "daemon socket closed by the gateway");
  }

  private detach(connection: DaemonConnection): void {
    if (!this.connections.delete(connection)) return;
    socketMetrics.disconnects.inc();
    for (const runtimeId of connection.identity.runtimes.keys()) this.unindex(this.byRuntime, runtimeId, connection, () => this.unwatchRuntime(runtimeId));
    for (const workspaceId of connection.identity.workspaceIds) this.unindex(this.byWorkspace, workspaceId, connection);
    if (connection.identity.caller.userId) this.unindex(this.byUser, connection.identity.caller.userId, connection);
  }

  private index(map: Map<string, Set<DaemonConnection>>, key: string, connection: DaemonConnection, onFirst?: () => void): void {
    let set = map.get(key);
    if (!set) {
      set = new Set();
      map.set(key, set);
      onFirst?.();
    }
    set.add(connection);
  }

  private unindex(map: Map<string, Set<DaemonConnection>>, key: string, connection: DaemonConnection, onLast?: () => void): void {
    const set = map.get(key);
    if (!set) return;
    set.delete(connection);
    if (set.size === 0) {
      map.delete(key);
      onLast?.();
    }
  }
}

/** Is the socket's caller still who it was: token valid, and (users) still a member of each workspace? */
async function stillAuthorized(auth: Authenticator, identity: SocketIdentity): Promise<boolean> {
  try {
    await auth.resolve(identity.caller.token, "middleware");
  } catch (error) {
    if (error instanceof HttpError && error.statusCode === 401) return false;
    throw error;
  }
  const userId = identity.caller.userId;
  if (identity.caller.kind === "daemon_token" || !userId) return true;
  for (const workspaceId of identity.workspaceIds) {
    if ((await auth.roleOf(userId, workspaceId, "failed to check workspace access", "handler")) === null) return false;
  }
  return true;
}

import type { WebSocket } from "ws";
import type { Caller } from "../auth/authenticator.js";

/** Who opened a socket and what it watches, fixed at the upgrade. */
export interface SocketIdentity {
  caller: Caller;
  /** Canonical runtime id -> the id exactly as the daemon spelled it. */
  runtimes: Map<string, string>;
  /** The workspaces of those runtimes. */
  workspaceIds: Set<string>;
  clientVersion?: string;
  /** X-Client-Capabilities at the upgrade: today's daemon advertises `rpc-v1` and gets socket claims. */
  capabilities: ReadonlySet<string>;
}

/** Why a socket was closed by us, for logs and metrics. */
export type CloseReason = "slow_consumer" | "pong_timeout" | "revoked" | "shutdown";

/** Close codes: 1001 going away (shutdown), 1008 policy (credentials revoked), 1011 for the rest. */
const CLOSE_CODES: Record<CloseReason, number> = { shutdown: 1001, revoked: 1008, slow_consumer: 1011, pong_timeout: 1011 };

/**
 * One daemon's socket. Every frame goes through `send`, which keeps at most
 * `queueLimit` frames waiting to be written: a wake-up that finds the queue
 * full evicts the socket (a slow consumer never grows our memory), anything
 * else is dropped. Sending on a closed socket is a no-op, never a crash.
 */
export class DaemonConnection {
  private queued = 0;
  private closed = false;
  lastPongAt = Date.now();
  lastPingAt = Date.now();
  /** Beats being processed (bounded per socket). */
  beatsInFlight = 0;
  /** RPC requests being served (at most RPCS_IN_FLIGHT). */
  rpcsInFlight = 0;

  constructor(
    readonly ws: WebSocket,
    readonly identity: SocketIdentity,
    private readonly queueLimit: number,
    private readonly onEvict: (connection: DaemonConnection, reason: CloseReason) => void,
  ) {
    ws.on("pong", () => {
      this.lastPongAt = Date.now();
    });
    ws.on("close", () => {
      this.closed = true;
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === this.ws.OPEN;
  }

  /** Room for one more frame right now. */
  get hasRoom(): boolean {
    return this.queued < this.queueLimit;
  }

  /**
   * Queues a frame. Resolves true once it was written to the connection,
   * false when it was dropped or the write failed. A wake-up (`evictIfFull`)
   * that finds the queue full closes the socket instead.
   */
  send(frame: string, { evictIfFull = false } = {}): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false);
    if (!this.hasRoom) {
      if (evictIfFull) this.close("slow_consumer");
      return Promise.resolve(false);
    }
    this.queued++;
    return new Promise((resolve) => {
      this.ws.send(frame, (error) => {
        this.queued--;
        resolve(!error);
      });
    });
  }

  ping(): void {
    if (!this.isOpen) return;
    this.lastPingAt = Date.now();
    this.ws.ping();
  }

  /** Closes with a close frame (shutdown, revocation), or at once for a socket that cannot keep up. */
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.onEvict(this, reason);
    if (reason === "slow_consumer" || reason === "pong_timeout") this.ws.terminate();
    else this.ws.close(CLOSE_CODES[reason], reason === "shutdown" ? "server shutting down" : "credentials revoked");
  }
}

import { hasCode, runOutsideScope, status } from "@controlplane/grpc";
import type { Logger } from "@controlplane/log";
import type { HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import type { Authenticator } from "../auth/authenticator.js";
import type { Resources } from "../auth/resources.js";
import { batchClaimAnswer, claimBatch, releaseUndelivered } from "../batch-claim.js";
import type { GatewayClients } from "../clients.js";
import { poppedActionIds } from "../shapes.js";
import { HttpError } from "../wire/errors.js";
import type { DaemonConnection, SocketIdentity } from "./connection.js";
import { FRAME_TYPES, heartbeatAckFrame, heartbeatPayload, parseInbound, rpcRequestPayload, rpcResponseFrame, runtimeGoneAckFrame } from "./frames.js";
import { socketMetrics } from "./metrics.js";

/** Beats one socket may have in flight beyond two per runtime (a daemon sends one round per interval). */
const BEAT_SLACK = 16;
/** RPCs one socket may have in flight (the original's bound); more answer 429. */
const RPCS_IN_FLIGHT = 8;
/** A socket claim's deadline when the daemon gives none (today's daemon gives 5 s). */
const RPC_DEFAULT_TIMEOUT_MS = 5_000;

/**
 * What a daemon sends over its socket: heartbeats, which take the HTTP
 * beat's path, and RPC requests (today's daemon's claim). Each socket's
 * beats and RPCs in flight are bounded; what cannot be answered is
 * skipped or given back, never lost.
 */
export class InboundFrames {
  constructor(private readonly options: { clients: GatewayClients; auth: Authenticator; resources: Resources; log: Logger }) {}

  /** One text frame from the daemon on `connection`. */
  received(connection: DaemonConnection, data: string): void {
    const inbound = parseInbound(data);
    socketMetrics.received.inc({ kind: inbound ? kindLabel(inbound.type) : "invalid" });
    if (inbound?.type === FRAME_TYPES.rpcRequest) {
      this.rpc(connection, inbound.payload);
      return;
    }
    if (inbound?.type !== FRAME_TYPES.heartbeat) return; // unknown types are ignored, for forward compatibility
    const beat = heartbeatPayload(inbound.payload);
    if (!beat) return;
    const runtimeId = canonicalIn(connection.identity, beat.runtimeId);
    if (!runtimeId) {
      this.options.log.warn({ runtime_id: beat.runtimeId.slice(0, 64) }, "daemon socket beat for a runtime outside its set; ignored");
      return;
    }
    const limit = connection.identity.runtimes.size * 2 + BEAT_SLACK;
    // No room for the ack, or too many beats in flight: skip this beat whole
    // (nothing popped, nothing lost); the daemon's HTTP beat takes over if it lasts.
    if (connection.beatsInFlight >= limit || !connection.hasRoom) {
      socketMetrics.acks.inc({ outcome: "skipped" });
      return;
    }
    connection.beatsInFlight++;
    void this.beat(connection, runtimeId, beat.runtimeId, beat.supportsBatchImport).finally(() => connection.beatsInFlight--);
  }

  /**
   * The same path as an HTTP beat (batched to liveness, actions popped once).
   * An ack that cannot be delivered gives its popped actions back.
   */
  private async beat(connection: DaemonConnection, runtimeId: string, sentId: string, supportsBatchImport: boolean): Promise<void> {
    let answer: HeartbeatResponse;
    try {
      answer = await this.options.clients.heartbeats.submit({ runtimeId, supportsBatchImport, viaSocket: true });
    } catch (error) {
      if (hasCode(error, status.NOT_FOUND)) {
        socketMetrics.acks.inc({ outcome: "runtime_gone" });
        await connection.send(runtimeGoneAckFrame(sentId));
        return;
      }
      // As the original: a beat that failed gets no ack; the daemon's HTTP beat takes over.
      socketMetrics.acks.inc({ outcome: "failed" });
      this.options.log.warn({ err: error, runtime_id: runtimeId }, "daemon socket beat failed; no ack");
      return;
    }
    const delivered = await connection.send(heartbeatAckFrame(runtimeId, answer, connection.identity.capabilities.has("rpc-v1")));
    socketMetrics.acks.inc({ outcome: delivered ? "sent" : "undelivered" });
    const popped = poppedActionIds(answer);
    if (!delivered && popped.length > 0) await this.giveBack(runtimeId, popped);
  }

  /**
   * `daemon:rpc_request` (contract §13.10): today's daemon claims over the
   * socket with `tasks.claim`, the batch claim with the socket's identity.
   * Served beside the heartbeats (not in their order), bounded in number and
   * by the request's timeout; tasks whose answer cannot be written go back.
   */
  private rpc(connection: DaemonConnection, payload: unknown): void {
    const request = rpcRequestPayload(payload);
    if (!request) return;
    const answer = (status: number, body: { body: unknown } | { error: string }) => connection.send(rpcResponseFrame(request.requestId, status, body));
    if (connection.rpcsInFlight >= RPCS_IN_FLIGHT) {
      void answer(429, { error: "too many in-flight rpc requests" });
      return;
    }
    if (request.method !== "tasks.claim") {
      void answer(404, { error: `unknown rpc method ${JSON.stringify(request.method)}` });
      return;
    }
    connection.rpcsInFlight++;
    void this.claimOverSocket(connection, request.body ?? {}, request.timeoutMs || RPC_DEFAULT_TIMEOUT_MS)
      .then(async (outcome) => {
        const delivered = await answer(outcome.status, outcome.answer);
        socketMetrics.rpcs.inc({ method: "tasks.claim", outcome: delivered ? String(outcome.status) : "undelivered" });
        if (!delivered && outcome.claimed.length > 0) await releaseUndelivered(this.options.clients, outcome.claimed);
      })
      .finally(() => connection.rpcsInFlight--);
  }

  private async claimOverSocket(connection: DaemonConnection, body: unknown, timeoutMs: number) {
    const { clients, auth, resources } = this.options;
    try {
      const claimed = await claimBatch({ clients, auth, resources }, connection.identity.caller, JSON.stringify(body), { deadlineMs: timeoutMs });
      return { status: 200, answer: { body: batchClaimAnswer(claimed) }, claimed };
    } catch (error) {
      // An HTTP-level refusal comes back as the route would write it: its status and `{"error": ...}` body.
      if (error instanceof HttpError) return { status: error.statusCode, answer: { body: { error: error.message } }, claimed: [] };
      this.options.log.error({ err: error }, "socket claim failed");
      return { status: 500, answer: { error: "failed to claim tasks" }, claimed: [] };
    }
  }

  private async giveBack(runtimeId: string, actionIds: string[]): Promise<void> {
    try {
      await runOutsideScope(() => this.options.clients.liveness.returnActions({ runtimeId, actionIds }));
    } catch (error) {
      // They time out as any undelivered action does; the product sees the timeout.
      this.options.log.warn({ err: error, runtime_id: runtimeId, actions: actionIds }, "popped actions of an undelivered ack could not be given back");
    }
  }
}

/** The canonical id of a runtime the socket watches, matched as the daemon spelled it or canonically. */
function canonicalIn(identity: SocketIdentity, sent: string): string | undefined {
  const lower = sent.toLowerCase();
  if (identity.runtimes.has(lower)) return lower;
  for (const [canonical, raw] of identity.runtimes) if (raw === sent) return canonical;
  return undefined;
}

/** The inbound metric's kind: the type without its `daemon:` prefix, bounded to what daemons send. */
function kindLabel(type: string): string {
  const kind = type.startsWith("daemon:") ? type.slice("daemon:".length) : type;
  return ["heartbeat", "rpc_request"].includes(kind) ? kind : "other";
}

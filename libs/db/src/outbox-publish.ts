/**
 * How the relay judges one outbox row against NATS: will it fit, and does a
 * failed publish mean "try again later" or "this row can never go out".
 */

import { traceHeaderBytes } from "@controlplane/events";

/** nats-server's default max_payload; used while the client has no server INFO yet. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** JetStream API error: the message is over the stream's max_msg_size. */
const JS_MESSAGE_SIZE_EXCEEDED = 10054;

/**
 * Bytes NATS counts against max_payload for one relayed event: the payload
 * plus the header block that carries the message id and, when the event was
 * written inside a trace, its trace context:
 * `NATS/1.0\r\nNats-Msg-Id: <id>\r\n[traceparent: <tp>\r\n]\r\n` (the only
 * headers the relay sets). The client refuses (and the server disconnects
 * on) anything larger.
 */
export function publishedSize(payloadBytes: number, msgId: string, traceparent?: string | null): number {
  const headerBlock = `NATS/1.0\r\nNats-Msg-Id: ${msgId}\r\n\r\n`;
  return payloadBytes + Buffer.byteLength(headerBlock) + traceHeaderBytes(traceparent);
}

/**
 * True for publish errors that retrying cannot fix, so the row is parked
 * instead of blocking the outbox: the client's own max_payload check (our
 * size check uses the same limit, but the server may have lowered it since),
 * a subject NATS rejects, and a stream refusing the message for its size.
 * Everything else (timeouts, no responders, a closed connection) is transient.
 */
export function isPermanentPublishError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "InvalidArgumentError" && /max_payload/i.test(error.message)) return true;
  if (error.name === "InvalidSubjectError") return true;
  return error.name === "JetStreamApiError" && (error as Error & { code?: unknown }).code === JS_MESSAGE_SIZE_EXCEEDED;
}

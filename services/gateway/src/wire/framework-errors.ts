import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { goJson } from "./go-json.js";
import { sendError } from "./reply.js";

/**
 * Answers the errors fastify and Node's HTTP parser raise before any route
 * runs, in the contract's `{"error": ...}` shape instead of their own bodies.
 */
export function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.code === "FST_ERR_MAX_PARAM_LENGTH") return sendError(reply, 414, "request URI too long", "handler");
  return sendError(reply, 400, "invalid request URL", "handler");
}

/** Statuses and messages for the parser's own refusals, by Node's error code. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, "request timed out before it was complete"],
  HPE_HEADER_OVERFLOW: [431, "request headers too large"],
  HPE_URI_TOO_LONG: [414, "request URI too long"],
};

/**
 * A request the HTTP parser refused (malformed, headers too large, or not
 * received in full within the request timeout): one answer in the contract's
 * shape, then the connection closes, as Node itself would do.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const [status, message] = CLIENT_ERRORS[error.code ?? ""] ?? [400, "malformed HTTP request"];
  const body = goJson({ error: message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Bad Request"}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
};

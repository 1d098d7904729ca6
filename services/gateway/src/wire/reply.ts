import type { FastifyReply } from "fastify";
import { goJson, goJsonWithRaw } from "./go-json.js";
import type { ErrorStyle } from "./errors.js";

// Bodies go out as Buffers: a string body would get "; charset=utf-8"
// appended to application/json, which the original server never sent.

/** A success body, Go-encoded (HTML-escaped, trailing newline). */
export function sendJson(reply: FastifyReply, statusCode: number, value: unknown): FastifyReply {
  return reply
    .code(statusCode)
    .header("content-type", "application/json")
    .send(Buffer.from(goJson(value)));
}

/** A success body already Go-encoded (sendJson's bytes, made once for an answer that never changes). */
export function sendEncodedJson(reply: FastifyReply, statusCode: number, body: Buffer): FastifyReply {
  return reply.code(statusCode).header("content-type", "application/json").send(body);
}

/** Like sendJson, with RawJson values embedded verbatim. */
export function sendJsonWithRaw(reply: FastifyReply, statusCode: number, value: unknown): FastifyReply {
  return reply
    .code(statusCode)
    .header("content-type", "application/json")
    .send(Buffer.from(goJsonWithRaw(value)));
}

export function sendNoContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).send();
}

/** Writes `{"error": message}` in the style of the writer that produced it. */
export function sendError(reply: FastifyReply, statusCode: number, message: string, style: ErrorStyle): FastifyReply {
  reply.code(statusCode);
  switch (style) {
    case "handler":
      return reply.header("content-type", "application/json").send(Buffer.from(goJson({ error: message })));
    case "middleware":
      // Pasted raw, unescaped, without a trailing newline.
      return reply.header("content-type", "application/json").send(Buffer.from(`{"error":"${message}"}`));
    case "auth":
      return reply.header("content-type", "text/plain; charset=utf-8").header("x-content-type-options", "nosniff").send(`{"error":"${message}"}\n`);
  }
}

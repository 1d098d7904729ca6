import type { FastifyReply, FastifyRequest } from "fastify";
import type { IncomingMessage } from "node:http";
import { LIMITS } from "@controlplane/config";
import { sendError } from "./reply.js";

/**
 * Answers a body over its route's limit with the contract's 413. The rest of
 * the upload is read and discarded first (up to REFUSED_BODY_DRAIN_BYTES;
 * the request timeout bounds a stalled one): a server that answers and
 * closes mid-upload leaves the client writing into a reset connection, and
 * it never sees the answer. The connection then closes.
 */
export async function refuseTooLarge(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  reply.header("connection", "close");
  const announced = Number(request.headers["content-length"] ?? 0);
  if (!request.raw.complete && announced <= LIMITS.REFUSED_BODY_DRAIN_BYTES) await drain(request.raw, LIMITS.REFUSED_BODY_DRAIN_BYTES);
  return sendError(reply, 413, "request body too large", "handler");
}

function drain(stream: IncomingMessage, capBytes: number): Promise<void> {
  return new Promise((resolve) => {
    let read = 0;
    const finish = () => {
      stream.removeListener("data", onData);
      stream.removeListener("end", finish);
      stream.removeListener("error", finish);
      stream.removeListener("close", finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > capBytes) finish();
    };
    stream.on("data", onData);
    stream.once("end", finish);
    stream.once("error", finish);
    stream.once("close", finish);
    stream.resume();
  });
}

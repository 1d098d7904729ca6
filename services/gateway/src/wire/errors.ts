import { INTERNAL_MESSAGE, status, isServiceError } from "@controlplane/grpc";

/**
 * How an error body is written. The original server had three writers and
 * daemons see all three, so each is reproduced byte for byte:
 * - handler: JSON, `{"error":"…"}` plus a newline;
 * - middleware: JSON, no trailing newline (daemon auth, workspace checks);
 * - auth: text/plain with nosniff, `{"error":"…"}` plus a newline (user auth).
 */
export type ErrorStyle = "handler" | "middleware" | "auth";

/** An answer that is not a success. Thrown by handlers, written in one place. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly style: ErrorStyle = "handler",
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * One mapping from gRPC status to HTTP status. Business errors carry the
 * contract's message; infrastructure errors answer with the route's own 5xx
 * message (never a 404: the daemon reads 404 as "gone").
 */
export function httpErrorFromGrpc(error: unknown, failureMessage: string): HttpError {
  if (!isServiceError(error)) return new HttpError(500, failureMessage);
  switch (error.code) {
    case status.INVALID_ARGUMENT:
    case status.OUT_OF_RANGE:
      return new HttpError(400, error.details);
    case status.NOT_FOUND:
      return new HttpError(404, error.details);
    case status.ALREADY_EXISTS:
    case status.FAILED_PRECONDITION:
    case status.ABORTED:
      return new HttpError(409, error.details);
    case status.PERMISSION_DENIED:
      return new HttpError(403, error.details);
    case status.UNAUTHENTICATED:
      return new HttpError(401, error.details);
    case status.RESOURCE_EXHAUSTED:
      return new HttpError(429, error.details);
    case status.UNAVAILABLE:
      return new HttpError(503, failureMessage);
    case status.DEADLINE_EXCEEDED:
      return new HttpError(504, failureMessage);
    case status.INTERNAL:
      // A service's deliberate 500 message passes through; anything else is the route's.
      return new HttpError(500, error.details && error.details !== INTERNAL_MESSAGE ? error.details : failureMessage);
    default:
      return new HttpError(500, failureMessage);
  }
}

/** Calls a service and turns its failure into the route's HTTP answer. */
export async function call<T>(work: Promise<T>, failureMessage: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw httpErrorFromGrpc(error, failureMessage);
  }
}

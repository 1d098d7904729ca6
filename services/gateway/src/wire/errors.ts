import { INTERNAL_MESSAGE, status, isServiceError } from "@controlplane/grpc";

/**
 * How an error body is written. The original server had three writers and
 * daemons see all three, so each is reproduced byte for byte:
 * - handler: JSON, `{"error":"…"}` plus a newline;
 * - middleware: JSON, no trailing newline (daemon auth, workspace checks);
 * - auth: text/plain with nosniff, `{"error":"…"}` plus a newline (user auth).
 */
export type ErrorStyle = "handler" | "middleware" | "auth";

/** Not sent to anyone: the status recorded for a request whose client hung up (nginx's convention). */
export const CLIENT_CLOSED_REQUEST = 499;

/** An answer that is not a success. Thrown by handlers, written in one place. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly style: ErrorStyle = "handler",
    /** What went wrong underneath (logged with every 5xx; never sent). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "HttpError";
  }
}

/**
 * One mapping from gRPC status to HTTP status. Business errors carry the
 * contract's message; infrastructure errors answer with the route's own 5xx
 * message (never a 404: the daemon reads 404 as "gone").
 */
export function httpErrorFromGrpc(error: unknown, failureMessage: string, style: ErrorStyle = "handler"): HttpError {
  const mapped = mapGrpcError(error, failureMessage);
  return new HttpError(mapped.statusCode, mapped.message, style, { cause: error });
}

function mapGrpcError(error: unknown, failureMessage: string): { statusCode: number; message: string } {
  if (!isServiceError(error)) return { statusCode: 500, message: failureMessage };
  switch (error.code) {
    case status.INVALID_ARGUMENT:
    case status.OUT_OF_RANGE:
      return { statusCode: 400, message: error.details };
    case status.NOT_FOUND:
      return { statusCode: 404, message: error.details };
    case status.ALREADY_EXISTS:
    case status.FAILED_PRECONDITION:
    case status.ABORTED:
      return { statusCode: 409, message: error.details };
    case status.PERMISSION_DENIED:
      return { statusCode: 403, message: error.details };
    case status.UNAUTHENTICATED:
      return { statusCode: 401, message: error.details };
    case status.RESOURCE_EXHAUSTED:
      // gRPC's own message-size limits: our failure, never a "slow down"
      // (a daemon retries 429 forever). No service throttles with it.
      return { statusCode: 500, message: failureMessage };
    case status.UNAVAILABLE:
      return { statusCode: 503, message: failureMessage };
    case status.CANCELLED:
      // The HTTP client went away (its request's calls are cancelled with it): nobody reads this answer.
      return { statusCode: CLIENT_CLOSED_REQUEST, message: failureMessage };
    case status.DEADLINE_EXCEEDED:
      return { statusCode: 504, message: failureMessage };
    case status.INTERNAL:
      // A service's deliberate 500 message passes through; anything else is the route's.
      return { statusCode: 500, message: error.details && error.details !== INTERNAL_MESSAGE ? error.details : failureMessage };
    default:
      return { statusCode: 500, message: failureMessage };
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

/**
 * A message field of a successful answer. proto3 types every message field
 * as optional, but the services always set the ones read through this: one
 * missing is a service bug, answered 500 "internal error" and logged with
 * what was missing.
 */
export function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the service answered without ${what}`);
  return value;
}

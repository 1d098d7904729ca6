import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

/**
 * A domain error: a rule of the contract said no. Its message is the
 * contract's exact text and travels to the caller unchanged; anything that is
 * not a DomainError is answered with a generic message: UNAVAILABLE when a
 * dependency cannot be reached (see isDependencyUnavailable), else INTERNAL.
 */
export class DomainError extends Error {
  constructor(
    readonly code: status,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidArgumentError extends DomainError {
  constructor(message: string) {
    super(status.INVALID_ARGUMENT, message);
  }
}

export class NotFoundError extends DomainError {
  constructor(message: string) {
    super(status.NOT_FOUND, message);
  }
}

export class AlreadyExistsError extends DomainError {
  constructor(message: string) {
    super(status.ALREADY_EXISTS, message);
  }
}

/** The thing exists but its state forbids the change (HTTP 409 at the gateway). */
export class FailedPreconditionError extends DomainError {
  constructor(message: string) {
    super(status.FAILED_PRECONDITION, message);
  }
}

export class PermissionDeniedError extends DomainError {
  constructor(message: string) {
    super(status.PERMISSION_DENIED, message);
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(message: string) {
    super(status.UNAUTHENTICATED, message);
  }
}

/** A dependency is down; the caller may retry. */
export class UnavailableError extends DomainError {
  /** `cause`: the failure behind it (a dependency's error), logged by the server; the caller sees only the message. */
  constructor(message: string, options?: ErrorOptions) {
    super(status.UNAVAILABLE, message, options);
  }
}

/**
 * A failure the contract answers with a specific 500 message (e.g. "task
 * workspace isolation check failed"). Unlike an unexpected error, its message
 * is ours and reaches the caller.
 */
export class InternalError extends DomainError {
  constructor(message: string, options?: ErrorOptions) {
    super(status.INTERNAL, message, options);
  }
}

export const INTERNAL_MESSAGE = "internal error";

/** What a caller is told when a dependency cannot be reached: retryable, no internals. */
export const UNAVAILABLE_MESSAGE = "service temporarily unavailable";

/**
 * Error class names that mean "could not reach the dependency": slonik's
 * (matched by name, as libs/grpc does not import slonik; slonik 47 leaves
 * `name` as "Error", so the constructor's name is checked too) and NATS's
 * ConnectionError, which has the same name.
 */
const UNREACHABLE_ERROR_NAMES = new Set(["ConnectionError", "BackendTerminatedError", "BackendTerminatedUnexpectedlyError"]);

/**
 * SQLSTATEs of a database that is going away or not accepting connections:
 * admin shutdown, crash shutdown, cannot connect now. Class 08 (connection
 * exception) is matched by prefix.
 */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03"]);

/** Socket errors of a peer that is down or unreachable. */
const UNREACHABLE_SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT"]);

/** How deep to follow `cause` links; real chains are two or three long. */
const MAX_CAUSE_DEPTH = 8;

/** The status a handler error is answered with. */
export function toServiceError(error: unknown): Partial<ServiceError> & { code: status; details: string } {
  if (error instanceof DomainError) {
    return { code: error.code, details: error.message, metadata: new Metadata() };
  }
  if (isServiceError(error)) {
    // A downstream gRPC error passes through with its code and message, so a
    // NOT_FOUND two hops away is still a NOT_FOUND; INTERNAL stays generic.
    const details = error.code === status.INTERNAL || error.code === status.UNKNOWN ? INTERNAL_MESSAGE : error.details;
    return { code: error.code === status.UNKNOWN ? status.INTERNAL : error.code, details, metadata: new Metadata() };
  }
  if (isDependencyUnavailable(error)) {
    // Retryable (the gateway answers 503), and no internals in the message.
    return { code: status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE, metadata: new Metadata() };
  }
  return { code: status.INTERNAL, details: INTERNAL_MESSAGE, metadata: new Metadata() };
}

/**
 * Whether a failed call is ours to log: INTERNAL, or a dependency that cannot
 * be reached (answered UNAVAILABLE, retryable, but logged with its cause). A
 * domain UNAVAILABLE ("runtime is offline") is an answer, logged only when a
 * failure stands behind it; every other rule saying no is an answer too.
 */
export function isFailureToLog(error: unknown, code: status): boolean {
  if (code === status.INTERNAL) return true;
  return code === status.UNAVAILABLE && (!(error instanceof DomainError) || error.cause !== undefined);
}

/**
 * True when `error`, or anything in its `cause` chain (or an AggregateError's
 * `errors`, as a refused dual-stack connect gives), says a dependency cannot
 * be reached right now: the database or NATS is down, restarting, or
 * refusing connections.
 */
export function isDependencyUnavailable(error: unknown): boolean {
  return causeChain(error).some(isUnreachableError);
}

function isUnreachableError(error: object): boolean {
  const name = "name" in error && typeof error.name === "string" ? error.name : undefined;
  if (name !== undefined && UNREACHABLE_ERROR_NAMES.has(name)) return true;
  if (UNREACHABLE_ERROR_NAMES.has(error.constructor?.name ?? "")) return true;
  const code = "code" in error && typeof error.code === "string" ? error.code : undefined;
  if (code === undefined) return false;
  return code.startsWith("08") || UNAVAILABLE_SQLSTATES.has(code) || UNREACHABLE_SOCKET_CODES.has(code);
}

/** `error` and the errors it wraps, each once, breadth first. */
function causeChain(error: unknown): object[] {
  const seen = new Set<object>();
  let level: unknown[] = [error];
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && level.length > 0; depth++) {
    const next: unknown[] = [];
    for (const item of level) {
      if (typeof item !== "object" || item === null || seen.has(item)) continue;
      seen.add(item);
      if ("cause" in item) next.push(item.cause);
      if (item instanceof AggregateError) next.push(...(item.errors as unknown[]));
    }
    level = next;
  }
  return [...seen];
}

export function isServiceError(error: unknown): error is ServiceError {
  return typeof error === "object" && error !== null && "code" in error && typeof (error as { code: unknown }).code === "number" && "details" in error;
}

/** True when `error` is a gRPC error with the given code. */
export function hasCode(error: unknown, code: status): error is ServiceError {
  return isServiceError(error) && error.code === code;
}

export { status };

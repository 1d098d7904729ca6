import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

/**
 * A domain error: a rule of the contract said no. Its message is the
 * contract's exact text and travels to the caller unchanged; anything that is
 * not a DomainError is answered INTERNAL with a generic message.
 */
export class DomainError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
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
  constructor(message: string) {
    super(status.UNAVAILABLE, message);
  }
}

/**
 * A failure the contract answers with a specific 500 message (e.g. "task
 * workspace isolation check failed"). Unlike an unexpected error, its message
 * is ours and reaches the caller.
 */
export class InternalError extends DomainError {
  constructor(message: string) {
    super(status.INTERNAL, message);
  }
}

export const INTERNAL_MESSAGE = "internal error";

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
  return { code: status.INTERNAL, details: INTERNAL_MESSAGE, metadata: new Metadata() };
}

export function isServiceError(error: unknown): error is ServiceError {
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof (error as { code: unknown }).code === "number" &&
    "details" in error
  );
}

/** True when `error` is a gRPC error with the given code. */
export function hasCode(error: unknown, code: status): error is ServiceError {
  return isServiceError(error) && error.code === code;
}

export { status };

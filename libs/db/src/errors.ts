import { UniqueIntegrityConstraintViolationError, ForeignKeyIntegrityConstraintViolationError } from "slonik";

/** True when `error` is a unique violation, optionally of one named constraint or index. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (!(error instanceof UniqueIntegrityConstraintViolationError)) return false;
  return constraint === undefined || error.constraint === constraint;
}

export function isForeignKeyViolation(error: unknown): boolean {
  return error instanceof ForeignKeyIntegrityConstraintViolationError;
}

/**
 * An event whose encoded payload is over the outbox's bound (MAX_EVENT_BYTES).
 * Thrown by `Outbox.writeMany` before anything is inserted, so the caller's
 * transaction fails as a whole instead of committing an event the relay could
 * never publish.
 */
export class EventTooLargeError extends Error {
  constructor(
    readonly eventType: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`event ${eventType} is ${size} bytes encoded, over the outbox limit of ${limit} bytes`);
    this.name = new.target.name;
  }
}

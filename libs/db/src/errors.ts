import { UniqueIntegrityConstraintViolationError, ForeignKeyIntegrityConstraintViolationError } from "slonik";

/** True when `error` is a unique violation, optionally of one named constraint or index. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (!(error instanceof UniqueIntegrityConstraintViolationError)) return false;
  return constraint === undefined || error.constraint === constraint;
}

export function isForeignKeyViolation(error: unknown): boolean {
  return error instanceof ForeignKeyIntegrityConstraintViolationError;
}

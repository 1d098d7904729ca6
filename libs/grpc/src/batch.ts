import { status } from "@grpc/grpc-js";
import type { Logger } from "@controlplane/log";
import { InvalidArgumentError, isFailureToLog, toServiceError } from "./errors.js";

/**
 * The most items one batch call takes (a gateway sends at most 64): enough
 * for a busy fleet's queue, few enough that one call stays short.
 */
export const MAX_BATCH_ITEMS = 100;

/** One item's error in a batch answer: what the single call would have raised. */
export interface ItemError {
  /** A google.rpc.Code value. */
  code: number;
  /** The contract's message, as the single call would have carried it. */
  message: string;
}

/** One item's outcome, shaped as the batch responses' `oneof outcome`. */
export interface ItemOutcome<C extends string, R> {
  outcome: { $case: C; value: R } | { $case: "error"; value: ItemError };
}

/** Refuses a batch over `MAX_BATCH_ITEMS` before any of it is done. */
export function requireBatchSize(items: readonly unknown[], field: string): void {
  if (items.length > MAX_BATCH_ITEMS) throw new InvalidArgumentError(`too many ${field} in one call (at most ${MAX_BATCH_ITEMS})`);
}

/**
 * Runs a single call's handler for every item of a batch call at once and
 * answers each item's outcome, in order: its answer (under `answerCase`), or
 * the error the single call would have answered, logged as that call's would
 * have been (with `describe(item)` to say which item failed). One item's
 * failure fails only that item.
 */
export function settleEach<I, R, C extends string>(
  answerCase: C,
  items: readonly I[],
  handle: (item: I) => Promise<R>,
  log: Logger,
  describe: (item: I) => Record<string, unknown>,
): Promise<Array<ItemOutcome<C, R>>> {
  return Promise.all(
    items.map((item) =>
      handle(item).then(
        (value): ItemOutcome<C, R> => ({ outcome: { $case: answerCase, value } }),
        (error: unknown): ItemOutcome<C, R> => ({ outcome: { $case: "error", value: itemError(error, log, describe(item)) } }),
      ),
    ),
  );
}

function itemError(error: unknown, log: Logger, item: Record<string, unknown>): ItemError {
  const { code, details } = toServiceError(error);
  if (isFailureToLog(error, code)) log.error({ err: error, code: status[code], ...item }, "batch item failed");
  return { code, message: details };
}

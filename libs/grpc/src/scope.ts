import { AsyncLocalStorage } from "node:async_hooks";
import { withoutTrace } from "@controlplane/tracing";

/**
 * What an inbound call hands to the work it causes: its request id (for logs
 * across services), its deadline (so outbound calls never outlive it) and its
 * cancellation (so a caller that goes away stops the work it started, down
 * every hop).
 */
export interface CallScope {
  requestId: string;
  /** Absolute deadline of the inbound call, if it had one. */
  deadline?: Date;
  /** Aborted when the inbound caller is gone (HTTP client closed, gRPC call cancelled or past its deadline). */
  signal?: AbortSignal;
  /**
   * Whether the inbound caller is gone, answered without making `signal`
   * (an AbortController and a listener per request): for work queued on the
   * caller's behalf that checks once, before it starts.
   */
  isGone?(): boolean;
}

const storage = new AsyncLocalStorage<CallScope>();

export function currentScope(): CallScope | undefined {
  return storage.getStore();
}

export function runInScope<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/**
 * Runs `fn` outside any call's scope: for shared work started on behalf of
 * many callers (a batch of beats), which must not inherit the first caller's
 * deadline or die with its cancellation, nor be traced as part of its trace.
 */
export function runOutsideScope<T>(fn: () => T): T {
  return storage.exit(() => withoutTrace(fn));
}

export const REQUEST_ID_HEADER = "x-request-id";

/** The error a call rejects with when its caller went away before it finished. */
export class CallCancelledError extends Error {
  /** Shaped like a grpc-js ServiceError (code CANCELLED), so status checks read it. */
  readonly code = 1;
  readonly details: string;

  constructor(message = "the caller cancelled the call", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CallCancelledError";
    this.details = message;
  }
}

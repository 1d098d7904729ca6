import { AsyncLocalStorage } from "node:async_hooks";

/**
 * What an inbound call hands to the work it causes: its request id (for logs
 * across services) and its deadline (so outbound calls never outlive it).
 */
export interface CallScope {
  requestId: string;
  /** Absolute deadline of the inbound call, if it had one. */
  deadline?: Date;
}

const storage = new AsyncLocalStorage<CallScope>();

export function currentScope(): CallScope | undefined {
  return storage.getStore();
}

export function runInScope<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

export const REQUEST_ID_HEADER = "x-request-id";

import { randomUUID } from "node:crypto";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { isRetryable } from "@controlplane/proto/descriptors";
import type { AnyUnaryMethod, RequestOf, ResponseOf, ServiceDefinitionOf } from "./definition.js";
import { InProcessChannel, isInProcessAddress, MAX_MESSAGE_BYTES, type UnaryChannel } from "./in-process.js";
import { clientHandled, clientLatency, clientRetries, splitPath } from "./metrics.js";
import { CallCancelledError, currentScope, REQUEST_ID_HEADER } from "./scope.js";
import { endClientSpan, startClientSpan } from "./tracing.js";

export interface CallOptions {
  /** Overrides the client's default deadline for this call. */
  deadlineMs?: number;
  /**
   * Cancels the call (the server sees it cancelled) when aborted. Without
   * it, the current scope's signal is used: a call made while serving a
   * request dies with that request.
   */
  signal?: AbortSignal;
}

export interface ClientOptions {
  /** Deadline of a call when the caller's own scope has none shorter. */
  deadlineMs?: number;
  /**
   * Attempts for a retryable call, the first included. Which calls are
   * retryable is the proto's word, not the caller's: RPCs marked
   * `idempotency_level = NO_SIDE_EFFECTS` or `IDEMPOTENT`, retried only on
   * UNAVAILABLE (the server never saw the call, or is restarting).
   */
  maxAttempts?: number;
  /**
   * While the peer is unreachable (e.g. restarting), a call waits for it,
   * up to its deadline, instead of failing at once with UNAVAILABLE.
   */
  waitForReady?: boolean;
}

export type PromiseClient<D extends ServiceDefinitionOf> = {
  [K in keyof D]: (request: RequestOf<D[K]>, options?: CallOptions) => Promise<ResponseOf<D[K]>>;
} & {
  /** Closes the channel. */
  close(): void;
};

const DEFAULT_DEADLINE_MS = 5_000;
const ROUND_ROBIN = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });
const RETRY_BASE_MS = 25;

/**
 * A typed promise client for one service. Every call carries the request id
 * of the current scope (or a new one) and a deadline no later than the
 * current inbound call's, so work stops when nobody waits for it anymore;
 * with tracing on, also a CLIENT span and its W3C trace context. An address
 * declared as served in this process (the all-in-one's) is called in
 * process, with the same behaviour (see in-process.ts).
 */
export function createClient<D extends ServiceDefinitionOf>(definition: D, address: string, options: ClientOptions = {}): PromiseClient<D> {
  const channel: UnaryChannel = isInProcessAddress(address) ? new InProcessChannel(address) : openChannel(address);
  const maxAttempts = options.maxAttempts ?? 3;
  const defaultDeadline = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const waitForReady = options.waitForReady ?? false;

  const client = { close: () => channel.close() } as PromiseClient<D>;
  for (const [key, method] of Object.entries(definition)) {
    const [service, methodName] = splitPath(method.path);
    const attempts = isRetryable(method.path) ? maxAttempts : 1;
    const invoke = async (request: RequestOf<typeof method>, callOptions: CallOptions = {}) => {
      const started = performance.now();
      const deadline = effectiveDeadline(callOptions.deadlineMs ?? defaultDeadline);
      const signal = effectiveSignal(callOptions.signal);
      const metadata = new Metadata({ waitForReady });
      const requestId = currentScope()?.requestId ?? randomUUID();
      metadata.set(REQUEST_ID_HEADER, requestId);
      // One CLIENT span for the call, retries included; its trace context rides in the metadata.
      const span = startClientSpan(method.path, service, methodName, requestId, metadata);
      let code: status = status.OK;
      try {
        for (let attempt = 1; ; attempt++) {
          try {
            return await unary(channel, method, request, metadata, deadline, signal);
          } catch (error) {
            const retryable = (error as ServiceError).code === status.UNAVAILABLE && attempt < attempts && !signal?.aborted;
            const backoff = RETRY_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random());
            if (!retryable || Date.now() + backoff >= deadline.getTime()) {
              code = (error as ServiceError).code ?? status.UNKNOWN;
              throw error;
            }
            clientRetries.inc({ grpc_service: service, grpc_method: methodName });
            await new Promise((resolve) => setTimeout(resolve, backoff));
          }
        }
      } finally {
        endClientSpan(span, code);
        clientHandled.inc({ grpc_service: service, grpc_method: methodName, grpc_code: status[code] ?? String(code) });
        clientLatency.observe({ grpc_service: service, grpc_method: methodName }, (performance.now() - started) / 1000);
      }
    };
    (client as Record<string, unknown>)[key] = invoke;
  }
  return client;
}

/** A grpc-js channel to a server in another process (or one served only over the network). */
function openChannel(address: string): UnaryChannel {
  return new Client(address, credentials.createInsecure(), {
    "grpc.keepalive_time_ms": 30_000,
    // Peers are in the same network: after a restart, reconnect within seconds, not minutes.
    "grpc.initial_reconnect_backoff_ms": 250,
    "grpc.max_reconnect_backoff_ms": 5_000,
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    // A dns:/// address names several replicas: spread calls over all of them.
    // A plain host:port keeps pick_first, whose idle reconnect after a restart
    // lets the next call through instead of failing it during a backoff.
    ...(address.startsWith("dns:///") ? { "grpc.service_config": ROUND_ROBIN } : {}),
  });
}

function effectiveDeadline(ms: number): Date {
  const own = Date.now() + ms;
  const inherited = currentScope()?.deadline?.getTime();
  return new Date(inherited !== undefined && inherited < own ? inherited : own);
}

function effectiveSignal(own: AbortSignal | undefined): AbortSignal | undefined {
  const inherited = currentScope()?.signal;
  if (own && inherited) return AbortSignal.any([own, inherited]);
  return own ?? inherited;
}

function unary<M extends AnyUnaryMethod>(
  channel: UnaryChannel,
  method: M,
  request: RequestOf<M>,
  metadata: Metadata,
  deadline: Date,
  signal: AbortSignal | undefined,
): Promise<ResponseOf<M>> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CallCancelledError("the caller went away before the call started"));
      return;
    }
    const onAbort = () => call.cancel();
    const call = channel.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      { deadline },
      (error: ServiceError | null, response?: ResponseOf<M>) => {
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve(response as ResponseOf<M>);
      },
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

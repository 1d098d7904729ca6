import { EventEmitter } from "node:events";
import { type Deadline, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import type { AnyUnaryMethod } from "./definition.js";

/**
 * In-process calls, for the all-in-one: when every service lives in one
 * process, a call from one to another can skip HTTP/2 and loopback TCP
 * (about a third of a task cycle's CPU there) while keeping what a caller or
 * a handler can observe of gRPC. The request and the answer are encoded and
 * decoded with the method's own protobuf codecs (no object is shared between
 * the two sides, and unknown fields and defaults behave as on the wire); the
 * handler gets its own copy of the metadata, the deadline and cancellation;
 * errors reach the caller shaped as grpc-js makes them (`code`, `details`,
 * `metadata`, the same message); the 8 MiB message bound holds both ways; a
 * call to a server that is not serving fails UNAVAILABLE (or waits for it
 * with waitForReady); and a server shutting down drains its in-process calls
 * as it drains its connections. Servers keep listening on their ports, so
 * other processes (cpctl, grpcurl) reach them as before.
 *
 * Only addresses declared with `serveInProcess` take this path: the
 * all-in-one declares its own services' addresses before starting them.
 * Everything else (another process, a dns:/// name) goes over the network.
 */

/** What a server's call wrapper reads of an inbound unary call: grpc-js's ServerUnaryCall and InProcessCall both have it. */
export interface InboundUnaryCall<Req> {
  readonly request: Req;
  readonly metadata: Metadata;
  getDeadline(): Deadline;
  once(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
}

/** How a server answers a unary call: an error (status, details, trailers) or a value. */
export type UnaryAnswer<Res> = (error: (Partial<ServiceError> & { code: status }) | null, value?: Res) => void;

/** One method as a server serves it, for in-process callers. */
export interface InProcessMethod {
  method: AnyUnaryMethod;
  serve(call: InboundUnaryCall<unknown>, answer: UnaryAnswer<unknown>): void;
}

/** The same bound as the servers' and clients' `grpc.max_receive_message_length`. */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** What a client needs of a channel: grpc-js's Client has it, and so does InProcessChannel. */
export interface UnaryChannel {
  makeUnaryRequest<Req, Res>(
    path: string,
    serialize: (value: Req) => Buffer,
    deserialize: (value: Buffer) => Res,
    request: Req,
    metadata: Metadata,
    options: { deadline: Date },
    callback: (error: ServiceError | null, response?: Res) => void,
  ): { cancel(): void };
  close(): void;
}

/** The methods one server serves in process, and its calls in flight (for draining on shutdown). */
export class InProcessServer {
  readonly inFlight = new Set<InProcessCall>();
  private drained: (() => void) | undefined;

  constructor(readonly methods: ReadonlyMap<string, InProcessMethod>) {}

  started(call: InProcessCall): void {
    this.inFlight.add(call);
  }

  ended(call: InProcessCall): void {
    this.inFlight.delete(call);
    if (this.inFlight.size === 0) this.drained?.();
  }

  /** Resolves once no in-process call is in flight. */
  idle(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }

  /** Ends the calls still in flight, as a forced shutdown ends a connection's. */
  abortAll(): void {
    for (const call of [...this.inFlight]) call.serverGone();
  }
}

const declared = new Set<string>();
/** Every server of this process that listens, by port. */
const listening = new Map<number, InProcessServer>();
/** Calls made with waitForReady to a port nobody in this process listens on yet. */
const waiting = new Map<number, Set<InProcessCall>>();

/**
 * Declares addresses ("127.0.0.1:port" or "localhost:port") whose servers
 * live in this process: clients made afterwards for them call in process.
 */
export function serveInProcess(addresses: Iterable<string>): void {
  for (const address of addresses) {
    if (portOf(address) === undefined) throw new Error(`${address} is not a loopback host:port this process could serve`);
    declared.add(address);
  }
}

export function isInProcessAddress(address: string): boolean {
  return declared.has(address);
}

function portOf(address: string): number | undefined {
  const match = /^(?:127\.0\.0\.1|localhost):(\d{1,5})$/.exec(address);
  return match ? Number(match[1]) : undefined;
}

/** Called by a server once it listens on `port`: in-process callers of that port now reach it. */
export function registerInProcessServer(port: number, server: InProcessServer): void {
  listening.set(port, server);
  const calls = waiting.get(port);
  waiting.delete(port);
  for (const call of calls ?? []) call.dispatch(server);
}

/** Called by a server as it stops: new in-process calls fail UNAVAILABLE, as on a closed port. */
export function unregisterInProcessServer(server: InProcessServer): void {
  for (const [port, registered] of listening) if (registered === server) listening.delete(port);
}

/** A client's channel to a server in this process. */
export class InProcessChannel implements UnaryChannel {
  private closed = false;

  constructor(private readonly address: string) {}

  makeUnaryRequest<Req, Res>(
    path: string,
    serialize: (value: Req) => Buffer,
    deserialize: (value: Buffer) => Res,
    request: Req,
    metadata: Metadata,
    options: { deadline: Date },
    callback: (error: ServiceError | null, response?: Res) => void,
  ): { cancel(): void } {
    // As grpc-js does for a call on a closed channel.
    if (this.closed) throw new Error("Channel has been shut down");
    const call = new InProcessCall(path, metadata, options.deadline, callback as (error: ServiceError | null, response?: unknown) => void);
    let encoded: Buffer;
    try {
      encoded = serialize(request);
    } catch (error) {
      call.fail(status.INTERNAL, `Request message serialization failure: ${(error as Error).message}`);
      return call;
    }
    call.begin(this.address, portOf(this.address) ?? -1, encoded, deserialize as (value: Buffer) => unknown);
    return call;
  }

  close(): void {
    this.closed = true;
  }
}

/**
 * One in-process call, both ends: what the client holds (cancel) and what
 * the server's wrapper reads (request, metadata, deadline, `cancelled`).
 * Its callback is always called once and never before `makeUnaryRequest`
 * returns, as with grpc-js.
 */
export class InProcessCall extends EventEmitter implements InboundUnaryCall<unknown> {
  request: unknown;
  readonly metadata: Metadata;
  private done = false;
  private timer: NodeJS.Timeout | undefined;
  private server: InProcessServer | undefined;
  private entry: InProcessMethod | undefined;
  private encoded: Buffer | undefined;
  private deserialize: ((value: Buffer) => unknown) | undefined;
  private port = -1;
  private readonly answer: UnaryAnswer<unknown>;

  constructor(
    private readonly path: string,
    clientMetadata: Metadata,
    private readonly deadline: Date,
    private readonly callback: (error: ServiceError | null, response?: unknown) => void,
  ) {
    super();
    // The server gets its own copy, as it would parse one off the wire.
    this.metadata = clientMetadata.clone();
    // Assigned, not declared as a field: tsx would name a field's closure on every call.
    this.answer = (error, value) => this.answered(error, value);
  }

  getDeadline(): Deadline {
    return this.deadline;
  }

  /** Starts the call on the next turn, so the caller has its handle (and its abort listener) first. */
  begin(address: string, port: number, encoded: Buffer, deserialize: (value: Buffer) => unknown): void {
    this.encoded = encoded;
    this.deserialize = deserialize;
    this.port = port;
    const left = this.deadline.getTime() - Date.now();
    if (Number.isFinite(left)) {
      this.timer = setTimeout(() => this.end(status.DEADLINE_EXCEEDED, "Deadline exceeded"), Math.max(0, left));
      this.timer.unref();
    }
    queueMicrotask(() => {
      if (this.done) return;
      const server = listening.get(port);
      if (server) this.dispatch(server);
      else if (this.metadata.getOptions().waitForReady) {
        const calls = waiting.get(port) ?? new Set<InProcessCall>();
        waiting.set(port, calls);
        calls.add(this);
      } else this.end(status.UNAVAILABLE, `no server is serving ${address} in this process`);
    });
  }

  /** Hands the call to its server's method, checked and decoded as the server would receive it. */
  dispatch(server: InProcessServer): void {
    if (this.done) return;
    const encoded = this.encoded as Buffer;
    this.encoded = undefined;
    const entry = server.methods.get(this.path);
    if (!entry) {
      this.end(status.UNIMPLEMENTED, `The server does not implement the method ${this.path}`);
      return;
    }
    if (encoded.length > MAX_MESSAGE_BYTES) {
      this.end(status.RESOURCE_EXHAUSTED, `Received message larger than max (${encoded.length} vs. ${MAX_MESSAGE_BYTES})`);
      return;
    }
    try {
      this.request = entry.method.requestDeserialize(encoded);
    } catch (error) {
      this.end(status.INTERNAL, `Error deserializing request: ${(error as Error).message}`);
      return;
    }
    this.server = server;
    this.entry = entry;
    server.started(this);
    try {
      entry.serve(this, this.answer);
    } catch (error) {
      // What grpc-js would do with a handler wrapper that throws: the call fails, the process lives on.
      this.answered({ code: status.INTERNAL, details: `in-process handler failed: ${(error as Error).message}` }, undefined);
    }
  }

  cancel(): void {
    this.end(status.CANCELLED, "Cancelled on client");
  }

  /** Fails the call before it reached a server (the callback still comes on a later turn). */
  fail(code: status, details: string): void {
    queueMicrotask(() => this.end(code, details));
  }

  /** The server stopped with the call in flight. */
  serverGone(): void {
    this.end(status.UNAVAILABLE, "the server shut down");
  }

  private answered(error: (Partial<ServiceError> & { code: status }) | null, value: unknown): void {
    const server = this.server;
    // The handler has finished: nothing is left to tell it of a cancellation.
    this.server = undefined;
    server?.ended(this);
    if (this.done) return;
    // An answer after the deadline is dropped, as the server's own deadline would have ended the call first.
    if (this.deadline.getTime() <= Date.now()) {
      this.end(status.DEADLINE_EXCEEDED, "Deadline exceeded");
      return;
    }
    if (error) {
      this.end(error.code, error.details ?? error.message ?? "", error.metadata);
      return;
    }
    let response: unknown;
    try {
      const encoded = (this.entry as InProcessMethod).method.responseSerialize(value);
      if (encoded.length > MAX_MESSAGE_BYTES) {
        this.end(status.RESOURCE_EXHAUSTED, `Received message larger than max (${encoded.length} vs. ${MAX_MESSAGE_BYTES})`);
        return;
      }
      response = (this.deserialize as (value: Buffer) => unknown)(encoded);
    } catch (cause) {
      this.end(status.INTERNAL, `Response message parsing error: ${(cause as Error).message}`);
      return;
    }
    this.done = true;
    clearTimeout(this.timer);
    this.callback(null, response);
  }

  /** Ends the call with a status other than OK; a handler still running is told it was cancelled. */
  private end(code: status, details: string, metadata = new Metadata()): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    waiting.get(this.port)?.delete(this);
    const error = Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
    this.callback(error);
    // A handler still running learns that nobody waits for its answer anymore (cancel, deadline, shutdown).
    if (this.server) this.emit("cancelled");
  }
}

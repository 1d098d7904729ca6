import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { Server, ServerCredentials, status, type Metadata, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { loadSync } from "@grpc/proto-loader";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { Logger } from "@controlplane/log";
import { context } from "@controlplane/tracing";
import { loadPackageDefinition } from "@controlplane/proto/descriptors";
import { serviceNameOf, type RequestOf, type ResponseOf, type ServiceDefinitionOf } from "./definition.js";
import { isFailureToLog, toServiceError } from "./errors.js";
import {
  type InboundUnaryCall,
  InProcessServer,
  type InProcessMethod,
  registerInProcessServer,
  type UnaryAnswer,
  unregisterInProcessServer,
} from "./in-process.js";
import { serverHandled, serverLatency, splitPath } from "./metrics.js";
import { CallCancelledError, type CallScope, REQUEST_ID_HEADER, runInScope } from "./scope.js";
import { endServerSpan, startServerSpan } from "./tracing.js";

/** What a handler knows about the call besides its request. */
export interface CallInfo {
  requestId: string;
  metadata: Metadata;
  /** Logger bound to this call's request id and method. */
  log: Logger;
  deadline?: Date;
  /**
   * Aborted when the caller cancels the call or its deadline passes: work
   * that waits (a long-poll) stops, and work about to commit can roll back
   * instead of finishing for nobody. Outbound calls made in the handler's
   * scope are cancelled with it.
   */
  signal: AbortSignal;
}

/** A service implementation: one async function per RPC, domain errors thrown. */
export type UnaryHandlers<D extends ServiceDefinitionOf> = {
  [K in keyof D]: (request: RequestOf<D[K]>, call: CallInfo) => Promise<ResponseOf<D[K]>>;
};

/** How long a client connection lives before the server asks it to reconnect. */
const MAX_CONNECTION_AGE_MS = 5 * 60_000;

/** RPCs slower than this are logged at info even when they succeed. */
const SLOW_CALL_MS = 500;

/**
 * A grpc-js server with what every control-plane service needs: grpc.health.v1
 * (one status per service plus "" for the whole process), server reflection,
 * per-call logging and metrics, request ids and deadlines carried into the
 * handler's async scope, a SERVER span per call when tracing is on, and
 * domain errors mapped to gRPC status codes.
 */
export class GrpcServer {
  readonly server = new Server({
    "grpc.max_receive_message_length": 8 * 1024 * 1024,
    // Clients reconnect (and resolve the name again) at least this often, so
    // replicas added by autoscaling get their share of a long-lived client.
    "grpc.max_connection_age_ms": MAX_CONNECTION_AGE_MS,
    // Room for the longest call (a claim's long-poll) to finish on the old connection.
    "grpc.max_connection_age_grace_ms": 60_000,
  });
  readonly health = new HealthImplementation({ "": "NOT_SERVING" });
  private readonly serviceNames: string[] = [];
  /** Every method by path, for callers in this process (see in-process.ts). */
  private readonly inProcessMethods = new Map<string, InProcessMethod>();
  private readonly inProcess = new InProcessServer(this.inProcessMethods);
  private started = false;

  constructor(private readonly log: Logger) {
    this.health.addToServer(this.server);
  }

  add<D extends ServiceDefinitionOf>(definition: D, handlers: UnaryHandlers<D>): this {
    const serviceName = serviceNameOf(definition);
    const implementation: UntypedServiceImplementation = {};
    for (const [key, method] of Object.entries(definition)) {
      const serve = this.wrap(method.path, handlers[key as keyof D]);
      implementation[key] = serve;
      this.inProcessMethods.set(method.path, { method, serve });
    }
    this.server.addService(definition, implementation);
    this.serviceNames.push(serviceName);
    this.health.setStatus(serviceName, "NOT_SERVING");
    return this;
  }

  /** Binds, then reports SERVING. Returns the bound port (useful with port 0). */
  async listen(port: number, host = "0.0.0.0"): Promise<number> {
    if (!this.started) {
      // The health service is described too, so reflection-driven tools can call it.
      const definitions = { ...loadPackageDefinition(), ...loadSync(healthProtoPath) };
      new ReflectionService(definitions, {
        services: [...this.serviceNames, "grpc.health.v1.Health"],
      }).addToServer(this.server);
      this.started = true;
    }
    const bound = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (error, actual) => (error ? reject(error) : resolve(actual)));
    });
    for (const name of this.serviceNames) this.health.setStatus(name, "SERVING");
    this.health.setStatus("", "SERVING");
    registerInProcessServer(bound, this.inProcess);
    return bound;
  }

  /**
   * Reports NOT_SERVING (so balancers stop sending), refuses new calls, lets
   * in-flight calls finish for up to `graceMs`, then cancels what is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    for (const name of ["", ...this.serviceNames]) this.health.setStatus(name, "NOT_SERVING");
    unregisterInProcessServer(this.inProcess);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        this.inProcess.abortAll();
        resolve();
      }, graceMs);
      const connections = new Promise<void>((drained) => this.server.tryShutdown(() => drained()));
      void Promise.all([connections, this.inProcess.idle()]).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** One method's handler as a function of an inbound call, from grpc-js or from this process. */
  private wrap<Req, Res>(
    path: string,
    handler: (request: Req, call: CallInfo) => Promise<Res>,
  ): (call: InboundUnaryCall<Req>, answer: UnaryAnswer<Res>) => void {
    const [service, method] = splitPath(path);
    const serverLog = this.log;
    return (call, answer) => new InboundCall(serverLog, path, service, method, call, answer).serve(handler);
  }
}

/**
 * One inbound call, from arrival to answer: its request id, deadline,
 * cancellation and logger, handed to the handler as its CallInfo and to the
 * work it causes as its scope. A class rather than closures made per call:
 * the services run from TypeScript through tsx, which names every named
 * closure as it is made (a property definition each), and the closures of
 * this wrapper were 1.2% of a task cycle's CPU.
 */
class InboundCall<Req, Res> implements CallInfo, CallScope {
  readonly requestId: string;
  readonly deadline: Date | undefined;
  readonly metadata: Metadata;
  private readonly started = performance.now();
  private readonly cancellation: CallCancellation;
  private readonly traced: ReturnType<typeof startServerSpan>;
  /** A child logger costs an allocation per call: made only if something logs. */
  private child: Logger | undefined;

  constructor(
    private readonly serverLog: Logger,
    path: string,
    private readonly service: string,
    private readonly method: string,
    private readonly call: InboundUnaryCall<Req>,
    private readonly callback: UnaryAnswer<Res>,
  ) {
    this.metadata = call.metadata;
    this.requestId = firstValue(call.metadata, REQUEST_ID_HEADER) ?? randomUUID();
    const rawDeadline = call.getDeadline();
    this.deadline = rawDeadline instanceof Date ? rawDeadline : Number.isFinite(rawDeadline) ? new Date(rawDeadline) : undefined;
    // With tracing on: a SERVER span, child of the caller's trace context, active in the handler.
    this.traced = startServerSpan(path, service, method, this.requestId, call.metadata);
    this.cancellation = new CallCancellation(call, this.deadline);
  }

  /** Logger bound to this call's request id and method. */
  get log(): Logger {
    this.child ??= this.serverLog.child({ request_id: this.requestId, rpc: this.method });
    return this.child;
  }

  get signal(): AbortSignal {
    return this.cancellation.signal;
  }

  /** Runs the handler in the call's scope (and span), then answers. */
  serve(handler: (request: Req, call: CallInfo) => Promise<Res>): void {
    const traced = this.traced;
    runInScope(this, () => (traced ? context.with(traced.context, () => this.run(handler)) : this.run(handler)));
  }

  private run(handler: (request: Req, call: CallInfo) => Promise<Res>): void {
    handler(this.call.request, this).then(
      (response) => this.succeeded(response),
      (error: unknown) => this.failed(error),
    );
  }

  private succeeded(response: Res): void {
    this.cancellation.release();
    this.finish(this.cancellation.aborted ? status.CANCELLED : status.OK);
    this.callback(null, response);
  }

  private failed(error: unknown): void {
    this.cancellation.release();
    const mapped = toServiceError(error);
    if (isFailureToLog(error, mapped.code)) this.log.error({ err: error, code: status[mapped.code] }, "rpc failed");
    this.finish(mapped.code, error);
    this.callback(mapped);
  }

  private finish(code: status, error?: unknown): void {
    endServerSpan(this.traced?.span, code, error);
    const seconds = (performance.now() - this.started) / 1000;
    const { service, method } = this;
    serverHandled.inc({ grpc_service: service, grpc_method: method, grpc_code: status[code] ?? String(code) });
    serverLatency.observe({ grpc_service: service, grpc_method: method }, seconds);
    if (seconds * 1000 >= SLOW_CALL_MS) this.log.info(logFields(code, seconds), "slow rpc");
    else if (this.serverLog.isLevelEnabled("debug")) this.log.debug(logFields(code, seconds), "rpc");
  }
}

/** Outgoing calls one handler may have in flight at once before Node warns of a listener leak. */
const CALL_SIGNAL_LISTENERS = 256;

/**
 * The call's cancellation: its signal aborts when the client cancels the call
 * or its deadline passes (grpc-js answers DEADLINE_EXCEEDED by itself but
 * does not tell the handler). The signal, and the deadline's timer, are made
 * only when something asks for the signal: most handlers (start, complete)
 * never do, and a controller plus a timer per call were a visible share of
 * a call's CPU. Until then a cancellation is only noted.
 */
class CallCancellation {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private cancelled = false;
  private readonly onCancelled: () => void;

  constructor(
    private readonly call: InboundUnaryCall<unknown>,
    private readonly deadline: Date | undefined,
  ) {
    // Assigned, not declared as a field: tsx would name a field's closure on every call.
    this.onCancelled = () => this.cancel();
    call.once("cancelled", this.onCancelled);
  }

  private cancel(): void {
    this.cancelled = true;
    this.controller?.abort(new CallCancelledError("the caller cancelled the call"));
  }

  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    // Every call the handler makes listens on it: a handler may fan out to
    // dozens at once (a batch claim reads up to 32 agents), which is no leak.
    setMaxListeners(CALL_SIGNAL_LISTENERS, controller.signal);
    if (this.cancelled) controller.abort(new CallCancelledError("the caller cancelled the call"));
    else if (this.deadline) {
      const left = this.deadline.getTime() - Date.now();
      if (left <= 0) controller.abort(new CallCancelledError("the call's deadline passed"));
      else if (Number.isFinite(left)) {
        this.timer = setTimeout(() => controller.abort(new CallCancelledError("the call's deadline passed")), left);
        this.timer.unref();
      }
    }
    return controller.signal;
  }

  /** Whether the call was cancelled or outlived its deadline, asked for its signal or not. */
  get aborted(): boolean {
    if (this.controller) return this.controller.signal.aborted;
    return this.cancelled || (this.deadline !== undefined && this.deadline.getTime() <= Date.now());
  }

  release(): void {
    clearTimeout(this.timer);
    this.call.removeListener("cancelled", this.onCancelled);
  }
}

/** The fields of an RPC's log line, built only when it is logged. */
function logFields(code: status, seconds: number) {
  return { code: status[code], ms: Math.round(seconds * 1000) };
}

function firstValue(metadata: Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return typeof value === "string" && value.length > 0 && value.length <= 128 ? value : undefined;
}

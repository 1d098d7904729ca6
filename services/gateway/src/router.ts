import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import FindMyWay from "find-my-way";
import type { WebSocket } from "ws";
import type {} from "@fastify/websocket";
import { CallCancelledError, runInScope, type CallScope } from "@controlplane/grpc";
import { activeTracer, context, extractContext, markFailed, SpanKind, trace, type Span, type TextMapGetter } from "@controlplane/tracing";
import type { RouteServices } from "./routes/context.js";
import type { Query } from "./wire/query.js";

/**
 * Aborted when the connection closes before the response was written: the
 * client gave up (timeout, crash, Ctrl-C), so the work it started stops.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const response = reply.raw;
  // Asked for after the connection closed: the close event is gone already.
  if (response.closed) {
    if (hungUp(response)) controller.abort(new CallCancelledError("the HTTP client closed the connection"));
    return controller.signal;
  }
  response.once("close", () => {
    if (hungUp(response)) controller.abort(new CallCancelledError("the HTTP client closed the connection"));
  });
  return controller.signal;
}

/** The connection closed before the whole response was written. */
function hungUp(response: FastifyReply["raw"]): boolean {
  return response.closed && !response.writableFinished;
}

/**
 * The scope of one request, its signal made on first use: most requests
 * (every heartbeat) make no call of their own in scope (batched calls run
 * outside it), and an AbortController with its close listener is a
 * noticeable share of a heartbeat's CPU. A class, not an object literal
 * with a getter: V8 builds such a literal slowly, and this is made for
 * every request.
 */
class RequestScope implements CallScope {
  readonly requestId: string;
  private made: AbortSignal | undefined;

  constructor(
    request: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {
    this.requestId = request.id;
  }

  get signal(): AbortSignal {
    this.made ??= clientGone(this.reply);
    return this.made;
  }

  isGone(): boolean {
    return this.made ? this.made.aborted : hungUp(this.reply.raw);
  }
}

const headerGetter: TextMapGetter<FastifyRequest["headers"]> = {
  get: (headers, key) => {
    const value = headers[key];
    return Array.isArray(value) ? value[0] : value;
  },
  keys: (headers) => Object.keys(headers),
};

/**
 * With tracing on, the SERVER span of one request (child of the caller's
 * `traceparent`, if it sent one), ended when the answer is written or the
 * connection closes. Undefined when tracing is off.
 */
function startRequestSpan(request: FastifyRequest, reply: FastifyReply, method: Method, route: string): Span | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  const span = tracer.startSpan(
    `${method} ${route}`,
    {
      kind: SpanKind.SERVER,
      attributes: { "http.request.method": method, "http.route": route, request_id: request.id },
    },
    extractContext(request.headers, headerGetter),
  );
  const end = () => {
    const statusCode = reply.raw.statusCode;
    span.setAttribute("http.response.status_code", statusCode);
    if (!reply.raw.writableFinished) span.setAttribute("http.client_gone", true);
    if (statusCode >= 500) markFailed(span, String(statusCode));
    span.end();
  };
  reply.raw.once("close", end);
  return span;
}

/** Runs `fn` with the request's span active (just `fn` when tracing is off). */
function inSpan<T>(span: Span | undefined, fn: () => T): T {
  return span ? context.with(trace.setSpan(context.active(), span), fn) : fn();
}

/** The request span a WebSocket route's checks started, for its plain-request handler. */
const socketSpans = new WeakMap<FastifyRequest, Span>();

/** The methods the contract uses. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
const METHODS: readonly Method[] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/**
 * The path parameters of a route pattern, each a string as sent:
 * "/api/daemon/runtimes/:runtimeId/tasks/:taskId" has runtimeId and taskId.
 */
export type ParamsOf<Url extends string> = Url extends `${string}:${infer Name}/${infer Rest}`
  ? Record<Name, string> & ParamsOf<`/${Rest}`>
  : Url extends `${string}:${infer Name}`
    ? Record<Name, string>
    : Record<never, string>;

/** What fastify has parsed of a request to the route `Url`: its path parameters and its query. */
export interface RouteRequest<Url extends string> {
  Params: ParamsOf<Url>;
  Querystring: Query;
}

/**
 * A route's handler: a named function of the request, the reply, and the
 * services every route uses. A handler declares the parameters it reads
 * (`request: RequestWith<"taskId">`, routes/context.ts); wiring it to a
 * route whose pattern lacks one of them does not typecheck.
 */
export type RouteHandler<Url extends string = string> = (
  request: FastifyRequest<RouteRequest<Url>>,
  reply: FastifyReply,
  services: RouteServices,
) => Promise<unknown>;

/**
 * The request as the route's handler sees it. Fastify types a request by
 * generics it does not check; here they follow from the route itself: the
 * pattern it matched names the parameters (strings), and its query parser
 * gives a string per parameter, an array for a repeated one.
 */
function routed<Url extends string>(request: FastifyRequest): FastifyRequest<RouteRequest<Url>> {
  return request as FastifyRequest<RouteRequest<Url>>;
}

/**
 * Registers routes and remembers their patterns, so an unknown method on a
 * known path can answer 405 (as the original router did) instead of 404.
 */
export class Router {
  private readonly known = FindMyWay({ ignoreTrailingSlash: false });
  /** Every route added, in order (for tests that walk the whole surface). */
  readonly routes: Array<{ method: Method; url: string }> = [];

  constructor(
    private readonly app: FastifyInstance,
    private readonly services: RouteServices,
  ) {}

  /** `bodyLimit` overrides the gateway's for a route whose body is always small. */
  add<Url extends string>(method: Method, url: Url, handler: RouteHandler<Url>, options: { bodyLimit?: number } = {}): void {
    this.known.on(method, url, () => undefined);
    this.routes.push({ method, url });
    this.app.route({
      method,
      url,
      ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
      // Every gRPC call a handler makes carries this request's id (and trace
      // context), and is cancelled if the client goes away before its answer
      // is written.
      handler: (request, reply) =>
        runInScope(new RequestScope(request, reply), () =>
          inSpan(startRequestSpan(request, reply, method, url), () => handler(routed<Url>(request), reply, this.services)),
        ),
    });
  }

  /**
   * A WebSocket route (GET): `preHandler` runs first for every request,
   * upgrade or not; then `wsHandler` gets the upgraded socket, or `handler`
   * answers a request that asked for no upgrade. Declared in a child
   * context so the WebSocket plugin, registered before, sees it.
   */
  socket<Url extends string>(
    url: Url,
    route: {
      preHandler: RouteHandler<Url>;
      handler: RouteHandler<Url>;
      wsHandler: (socket: WebSocket, request: FastifyRequest<RouteRequest<Url>>, services: RouteServices) => void;
    },
  ): void {
    this.known.on("GET", url, () => undefined);
    this.routes.push({ method: "GET", url });
    this.app.register(async (scoped) => {
      scoped.route({
        method: "GET",
        url,
        // With `wsHandler` (and not `websocket: true`) the plugin upgrades, and `handler` serves plain requests.
        // The span covers the checks; for an upgrade it ends with them (the
        // socket lives on), for a plain request when its answer is written.
        preHandler: (request, reply) =>
          runInScope({ requestId: request.id, signal: clientGone(reply) }, () => {
            const span = request.ws ? startUpgradeSpan(request, url) : startRequestSpan(request, reply, "GET", url);
            if (span && !request.ws) socketSpans.set(request, span);
            const checked = inSpan(span, () => route.preHandler(routed<Url>(request), reply, this.services));
            if (span && request.ws) endUpgradeSpan(span, checked);
            return checked;
          }),
        handler: (request, reply) =>
          runInScope({ requestId: request.id }, () => inSpan(socketSpans.get(request), () => route.handler(routed<Url>(request), reply, this.services))),
        wsHandler: (socket, request) => route.wsHandler(socket, routed<Url>(request), this.services),
      });
    });
  }

  /** True when some other method is routed for this path. */
  pathExists(path: string): boolean {
    return METHODS.some((method) => this.known.find(method, path) !== null);
  }
}

/** The span of a WebSocket upgrade's checks (the upgraded socket has no response to wait for). */
function startUpgradeSpan(request: FastifyRequest, route: string): Span | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  return tracer.startSpan(
    `GET ${route}`,
    {
      kind: SpanKind.SERVER,
      attributes: { "http.request.method": "GET", "http.route": route, request_id: request.id, "network.protocol.name": "websocket" },
    },
    extractContext(request.headers, headerGetter),
  );
}

function endUpgradeSpan(span: Span, checked: Promise<unknown>): void {
  checked.then(
    () => span.end(),
    (error: unknown) => {
      markFailed(span, error instanceof Error ? error.name : "refused");
      span.end();
    },
  );
}

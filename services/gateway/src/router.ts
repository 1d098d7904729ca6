import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import FindMyWay from "find-my-way";
import type { WebSocket } from "ws";
import type {} from "@fastify/websocket";
import { CallCancelledError, runInScope } from "@controlplane/grpc";

/**
 * Aborted when the connection closes before the response was written: the
 * client gave up (timeout, crash, Ctrl-C), so the work it started stops.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort(new CallCancelledError("the HTTP client closed the connection"));
  });
  return controller.signal;
}

/** The methods the contract uses. */
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
const METHODS: readonly Method[] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

export type RouteHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * Registers routes and remembers their patterns, so an unknown method on a
 * known path can answer 405 (as the original router did) instead of 404.
 */
export class Router {
  private readonly known = FindMyWay({ ignoreTrailingSlash: false });
  /** Every route added, in order (for tests that walk the whole surface). */
  readonly routes: Array<{ method: Method; url: string }> = [];

  constructor(private readonly app: FastifyInstance) {}

  /** `bodyLimit` overrides the gateway's for a route whose body is always small. */
  add(method: Method, url: string, handler: RouteHandler, options: { bodyLimit?: number } = {}): void {
    this.known.on(method, url, () => undefined);
    this.routes.push({ method, url });
    this.app.route({
      method,
      url,
      ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
      // Every gRPC call a handler makes carries this request's id, and is
      // cancelled if the client goes away before its answer is written.
      handler: (request, reply) =>
        runInScope({ requestId: request.id, signal: clientGone(reply) }, () => handler(request, reply)),
    });
  }

  /**
   * A WebSocket route (GET): `preHandler` runs first for every request,
   * upgrade or not; then `wsHandler` gets the upgraded socket, or `handler`
   * answers a request that asked for no upgrade. Declared in a child
   * context so the WebSocket plugin, registered before, sees it.
   */
  socket(
    url: string,
    route: {
      preHandler: RouteHandler;
      handler: RouteHandler;
      wsHandler: (socket: WebSocket, request: FastifyRequest) => void;
    },
  ): void {
    this.known.on("GET", url, () => undefined);
    this.routes.push({ method: "GET", url });
    this.app.register(async (scoped) => {
      scoped.route({
        method: "GET",
        url,
        // With `wsHandler` (and not `websocket: true`) the plugin upgrades, and `handler` serves plain requests.
        preHandler: (request, reply) => runInScope({ requestId: request.id, signal: clientGone(reply) }, () => route.preHandler(request, reply)),
        handler: (request, reply) => runInScope({ requestId: request.id }, () => route.handler(request, reply)),
        wsHandler: route.wsHandler,
      });
    });
  }

  /** True when some other method is routed for this path. */
  pathExists(path: string): boolean {
    return METHODS.some((method) => this.known.find(method, path) !== null);
  }
}

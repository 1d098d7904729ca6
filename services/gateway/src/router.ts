import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import FindMyWay from "find-my-way";
import { runInScope } from "@controlplane/grpc";

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

  constructor(private readonly app: FastifyInstance) {}

  add(method: Method, url: string, handler: RouteHandler): void {
    this.known.on(method, url, () => undefined);
    this.app.route({
      method,
      url,
      // Every gRPC call a handler makes carries this request's id.
      handler: (request, reply) => runInScope({ requestId: request.id }, () => handler(request, reply)),
    });
  }

  /** True when some other method is routed for this path. */
  pathExists(path: string): boolean {
    return METHODS.some((method) => this.known.find(method, path) !== null);
  }
}

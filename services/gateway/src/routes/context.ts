import type { FastifyRequest } from "fastify";
import type { Authenticator } from "../auth/authenticator.js";
import type { Resources } from "../auth/resources.js";
import type { GatewayClients } from "../clients.js";
import type { Router } from "../router.js";
import type { Query } from "../wire/query.js";

/** What every route handler gets besides its request and reply. */
export interface RouteServices {
  clients: GatewayClients;
  auth: Authenticator;
  resources: Resources;
  /** Aborted when the gateway starts shutting down: long-polls answer at once. */
  shutdown: AbortSignal;
}

/** What every route module's register function gets: the router to wire its handlers to. */
export interface RouteContext extends RouteServices {
  router: Router;
}

/** Path parameters, all strings as sent. */
export type Params<K extends string> = Record<K, string>;

/**
 * A handler's request: the path parameters it reads and the query. The
 * router accepts the handler only on a route whose pattern has them.
 */
export type RequestWith<K extends string = never> = FastifyRequest<{ Params: Params<K>; Querystring: Query }>;

import type { Authenticator } from "../auth/authenticator.js";
import type { Resources } from "../auth/resources.js";
import type { GatewayClients } from "../clients.js";
import type { Router } from "../router.js";

/** What every route module gets. */
export interface RouteContext {
  router: Router;
  clients: GatewayClients;
  auth: Authenticator;
  resources: Resources;
  /** Aborted when the gateway starts shutting down: long-polls answer at once. */
  shutdown: AbortSignal;
}

/** Path parameters, all strings as sent. */
export type Params<K extends string> = Record<K, string>;

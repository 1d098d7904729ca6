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
}

/** Path parameters, all strings as sent. */
export type Params<K extends string> = Record<K, string>;

import type { Logger } from "@controlplane/log";
import { Authenticator } from "./auth/authenticator.js";
import { Resources } from "./auth/resources.js";
import { buildGatewayApp } from "./app.js";
import { closeGatewayClients, createGatewayClients } from "./clients.js";
import type { GatewayConfig } from "./config.js";

export interface RunningGateway {
  port: number;
  /** The routes served, method and pattern. */
  routes: ReadonlyArray<{ method: string; url: string }>;
  stop(): Promise<void>;
}

/** Starts the HTTP gateway in front of the gRPC services. */
export async function startGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const clients = createGatewayClients({
    registry: config.REGISTRY_GRPC_ADDR,
    profileCatalog: config.PROFILE_CATALOG_GRPC_ADDR,
    taskQueue: config.TASK_QUEUE_GRPC_ADDR,
    liveness: config.LIVENESS_GRPC_ADDR,
  });
  const auth = new Authenticator(clients, config.AUTH_CACHE_TTL_MS);
  const resources = new Resources(clients, auth, config.RUNTIME_CACHE_TTL_MS);
  const shutdown = new AbortController();
  const { app, router } = buildGatewayApp({
    clients,
    auth,
    resources,
    log,
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    shutdown: shutdown.signal,
  });
  try {
    await app.listen({ port: config.GATEWAY_PORT, host: config.GATEWAY_HOST });
  } catch (error) {
    closeGatewayClients(clients);
    throw new Error(`gateway cannot listen on ${config.GATEWAY_HOST}:${config.GATEWAY_PORT}: ${(error as Error).message}`);
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.GATEWAY_PORT;
  log.info({ port }, "gateway listening");
  return {
    port,
    routes: router.routes,
    async stop() {
      // Long-polls answer "no task" at once (the daemon asks again, on
      // another replica); then stop accepting, let in-flight requests
      // finish, and close.
      shutdown.abort();
      const timer = setTimeout(() => app.server.closeAllConnections(), config.SHUTDOWN_GRACE_MS);
      await app.close();
      clearTimeout(timer);
      closeGatewayClients(clients);
    },
  };
}

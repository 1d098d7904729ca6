import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "@controlplane/log";
import { Authenticator } from "./auth/authenticator.js";
import { Resources } from "./auth/resources.js";
import { buildGatewayApp } from "./app.js";
import { closeGatewayClients, createGatewayClients } from "./clients.js";
import type { GatewayConfig } from "./config.js";
import { SocketHub } from "./socket/hub.js";

/**
 * Core NATS (no JetStream): wake-ups and hints for daemon sockets, and the
 * registry's revocations. Unreachable at start is an error naming the URL,
 * as for every service; later outages reconnect forever.
 */
async function connectSignals(url: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, name: "gateway", maxReconnectAttempts: -1, timeout: 5_000 });
  } catch (error) {
    throw new Error(`cannot reach NATS at ${url}: ${(error as Error).message}`, { cause: error });
  }
}

export interface RunningGateway {
  port: number;
  /** The daemon sockets this gateway holds. */
  sockets: SocketHub;
  /** The routes served, method and pattern. */
  routes: ReadonlyArray<{ method: string; url: string }>;
  stop(): Promise<void>;
}

/** Starts the HTTP gateway in front of the gRPC services. */
export async function startGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const clients = createGatewayClients(
    {
      registry: config.REGISTRY_GRPC_ADDR,
      profileCatalog: config.PROFILE_CATALOG_GRPC_ADDR,
      taskQueue: config.TASK_QUEUE_GRPC_ADDR,
      liveness: config.LIVENESS_GRPC_ADDR,
    },
    { heartbeatBatchIntervalMs: config.HEARTBEAT_BATCH_INTERVAL_MS, taskCallsInFlight: config.TASK_CALLS_IN_FLIGHT },
  );
  const auth = new Authenticator(clients, config.AUTH_CACHE_TTL_MS);
  const resources = new Resources(clients, auth, config.RUNTIME_CACHE_TTL_MS);
  const nc = await connectSignals(config.NATS_URL);
  const sockets = new SocketHub({
    clients,
    auth,
    resources,
    nc,
    subjectRoot: config.EVENTS_SUBJECT_ROOT,
    log,
    pingIntervalMs: config.WS_PING_INTERVAL_MS,
    pongTimeoutMs: config.WS_PONG_TIMEOUT_MS,
    sendQueueFrames: config.WS_SEND_QUEUE_FRAMES,
    reauthIntervalMs: config.WS_REAUTH_INTERVAL_MS,
    drainMs: config.WS_DRAIN_MS,
  });
  const shutdown = new AbortController();
  const { app, router } = buildGatewayApp({
    clients,
    auth,
    resources,
    log,
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    shutdown: shutdown.signal,
    sockets,
    maxFrameBytes: config.WS_MAX_FRAME_BYTES,
  });
  try {
    await app.listen({ port: config.GATEWAY_PORT, host: config.GATEWAY_HOST });
  } catch (error) {
    await sockets.drain();
    await nc.close();
    closeGatewayClients(clients);
    throw new Error(`gateway cannot listen on ${config.GATEWAY_HOST}:${config.GATEWAY_PORT}: ${(error as Error).message}`, { cause: error });
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.GATEWAY_PORT;
  log.info({ port }, "gateway listening");
  return {
    port,
    routes: router.routes,
    sockets,
    async stop() {
      // Long-polls answer "no task" at once and daemon sockets get a close
      // frame (their daemons go to another replica); then stop accepting,
      // let in-flight requests finish, and close.
      shutdown.abort();
      await sockets.drain();
      const timer = setTimeout(() => app.server.closeAllConnections(), config.SHUTDOWN_GRACE_MS);
      await app.close();
      clearTimeout(timer);
      await nc.drain().catch(() => undefined);
      closeGatewayClients(clients);
    },
  };
}

import {
  address,
  commonEnv,
  DAEMON_SOCKET_DRAIN_MS,
  DAEMON_SOCKET_PING_INTERVAL_MS,
  DAEMON_SOCKET_PONG_TIMEOUT_MS,
  loadConfig,
  logLevel,
  millis,
  port,
  positiveInt,
  z,
} from "@controlplane/config";

export const gatewayEnv = z.object({
  LOG_LEVEL: logLevel(),
  GATEWAY_PORT: port(8080),
  GATEWAY_HOST: z.string().default("0.0.0.0"),
  GATEWAY_METRICS_PORT: port(9090),
  REGISTRY_GRPC_ADDR: address("127.0.0.1:50051"),
  PROFILE_CATALOG_GRPC_ADDR: address("127.0.0.1:50052"),
  TASK_QUEUE_GRPC_ADDR: address("127.0.0.1:50053"),
  LIVENESS_GRPC_ADDR: address("127.0.0.1:50054"),
  /**
   * How long a resolved token or membership is trusted without asking the
   * registry again; a revocation takes effect within this time.
   */
  AUTH_CACHE_TTL_MS: millis(30_000),
  /**
   * How long a runtime read for a daemon route is reused. A deleted runtime
   * answers 404 "runtime not found" at once (the registry's runtime.deleted
   * drops the entry), within this time should the event be missed.
   */
  RUNTIME_CACHE_TTL_MS: millis(60_000),
  /**
   * Heartbeats (HTTP and socket) reach liveness in batches, one call at most
   * this often: at a fleet's steady rate a call carries rate x interval beats
   * instead of the few one loop turn gathers, for a fraction of the gRPC
   * cost per beat. A beat after a quiet spell goes at once; others wait at
   * most this long (nothing in a beat's answer is urgent: the next comes in
   * 15 s). 0 sends each loop turn's beats at once.
   */
  HEARTBEAT_BATCH_INTERVAL_MS: z.coerce.number().int().min(0).max(1_000).default(20),
  /**
   * Claims without a wait, starts and completions reach the task queue in
   * shared calls when the gateway is busy: while this many calls of a kind
   * run, the next requests of that kind wait for one to finish and go
   * together in one call (up to 64). An idle gateway sends each at once.
   * 0 sends every request in a call of its own.
   */
  TASK_CALLS_IN_FLIGHT: z.coerce.number().int().min(0).max(64).default(1),
  /** Largest request body accepted; larger answers 413. */
  BODY_LIMIT_BYTES: positiveInt(4 * 1024 * 1024),
  /**
   * A request whose headers and body have not all arrived within this is
   * answered 408 and its connection closed (a slow or stalled upload must not
   * hold a connection). Long-polls are not affected: it bounds receiving the
   * request, not answering it.
   */
  REQUEST_TIMEOUT_MS: millis(30_000),
  SHUTDOWN_GRACE_MS: millis(10_000),
  /** Wake-ups and hints for daemon sockets arrive over core NATS (no JetStream, nothing stored). */
  NATS_URL: commonEnv.NATS_URL,
  EVENTS_SUBJECT_ROOT: commonEnv.EVENTS_SUBJECT_ROOT,
  /** Daemon sockets are pinged this often (below 60 s: today's daemon drops a socket silent that long). */
  WS_PING_INTERVAL_MS: millis(DAEMON_SOCKET_PING_INTERVAL_MS),
  /** A socket that has not answered a ping (pong) for this long is closed. */
  WS_PONG_TIMEOUT_MS: millis(DAEMON_SOCKET_PONG_TIMEOUT_MS),
  /** Largest frame a daemon may send; larger closes the socket with 1009. */
  WS_MAX_FRAME_BYTES: positiveInt(64 * 1024),
  /**
   * Frames a socket may have waiting to be written. A wake-up that finds the
   * queue full evicts the socket (a slow consumer never grows our memory);
   * an ack or hint that finds it full is dropped.
   */
  WS_SEND_QUEUE_FRAMES: positiveInt(64),
  /**
   * How often an open socket's credentials are checked again (token still
   * valid, still a member): a revoked token or removed member loses its
   * socket within this, or at once when the registry's event arrives.
   */
  WS_REAUTH_INTERVAL_MS: millis(30_000),
  /** On shutdown, how long sockets get to finish their close handshake. */
  WS_DRAIN_MS: millis(DAEMON_SOCKET_DRAIN_MS),
});

export type GatewayConfig = z.infer<typeof gatewayEnv>;

export function loadGatewayConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  return loadConfig(gatewayEnv, env);
}

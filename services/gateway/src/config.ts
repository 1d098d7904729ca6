import { address, loadConfig, logLevel, millis, port, positiveInt, z } from "@controlplane/config";

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
   * How long a runtime read for a daemon route is reused; a deleted runtime
   * answers 404 "runtime not found" within this time.
   */
  RUNTIME_CACHE_TTL_MS: millis(5_000),
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
});

export type GatewayConfig = z.infer<typeof gatewayEnv>;

export function loadGatewayConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  return loadConfig(gatewayEnv, env);
}

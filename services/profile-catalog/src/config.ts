import { address, commonEnv, loadConfig, millis, port, z } from "@controlplane/config";

export const profileCatalogEnv = z.object({
  ...commonEnv,
  PROFILE_CATALOG_GRPC_PORT: port(50052),
  /** The runtime registry, asked to detach a profile's runtimes on delete. */
  REGISTRY_GRPC_ADDR: address("127.0.0.1:50051"),
  /** Prometheus /metrics when the service runs alone. */
  PROFILE_CATALOG_METRICS_PORT: port(9092),
  /** How long in-flight calls may finish after SIGTERM. */
  SHUTDOWN_GRACE_MS: millis(10_000),
});

export type ProfileCatalogConfig = z.infer<typeof profileCatalogEnv>;

export function loadProfileCatalogConfig(env: Record<string, string | undefined> = process.env): ProfileCatalogConfig {
  return loadConfig(profileCatalogEnv, env);
}

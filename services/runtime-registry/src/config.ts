import { address, commonEnv, loadConfig, millis, port, z } from "@controlplane/config";

/** Development default; a deployment sets its own (the Helm chart requires one). */
export const DEV_JWT_SECRET = "controlplane-dev-secret-change-me";

export const registryEnv = z.object({
  ...commonEnv,
  REGISTRY_GRPC_PORT: port(50051),
  REGISTRY_METRICS_PORT: port(9091),
  /** HMAC secret of user session JWTs. */
  JWT_SECRET: z.string().min(16, "must be at least 16 characters").default(DEV_JWT_SECRET),
  /** The profile catalog, asked whether a custom runtime's profile may register. */
  PROFILE_CATALOG_GRPC_ADDR: address("127.0.0.1:50052"),
  /** How often abandoned runtimes are collected. */
  RUNTIME_GC_INTERVAL_MS: millis(10 * 60_000),
  /** Offline this long with no agent bound, a runtime is deleted (7 days). */
  RUNTIME_GC_RETENTION_MS: millis(7 * 24 * 3600_000),
  SHUTDOWN_GRACE_MS: millis(10_000),
});

export type RegistryConfig = z.infer<typeof registryEnv>;

export function loadRegistryConfig(env: Record<string, string | undefined> = process.env): RegistryConfig {
  return loadConfig(registryEnv, env);
}

import { commonEnv, loadConfig, millis, port, z } from "@controlplane/config";

/** Development default; a deployment sets its own (the Helm chart requires one). */
export const DEV_JWT_SECRET = "controlplane-dev-secret-change-me";

export const registryEnv = z.object({
  ...commonEnv,
  REGISTRY_GRPC_PORT: port(50051),
  REGISTRY_METRICS_PORT: port(9091),
  /** HMAC secret of user session JWTs. */
  JWT_SECRET: z.string().min(16, "must be at least 16 characters").default(DEV_JWT_SECRET),
  SHUTDOWN_GRACE_MS: millis(10_000),
});

export type RegistryConfig = z.infer<typeof registryEnv>;

export function loadRegistryConfig(env: Record<string, string | undefined> = process.env): RegistryConfig {
  return loadConfig(registryEnv, env);
}

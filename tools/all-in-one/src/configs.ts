import { loadGatewayConfig } from "@controlplane/gateway/config";
import { loadLivenessConfig } from "@controlplane/liveness/config";
import { loadProfileCatalogConfig } from "@controlplane/profile-catalog/config";
import { loadRegistryConfig } from "@controlplane/runtime-registry/config";
import { loadTaskQueueConfig } from "@controlplane/task-queue/config";

/** Every service's configuration from one environment, validated before anything starts. */
export function loadAllConfigs(env: Record<string, string | undefined> = process.env) {
  return {
    registry: loadRegistryConfig(env),
    profileCatalog: loadProfileCatalogConfig(env),
    taskQueue: loadTaskQueueConfig(env),
    liveness: loadLivenessConfig(env),
    gateway: loadGatewayConfig(env),
  };
}

import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { startMetricsServer } from "@controlplane/metrics";
import { loadRegistryConfig } from "./config.js";
import { startRegistry } from "./service.js";

const log = createLogger("runtime-registry");
await runUntilSignal(log, async () => {
  const config = loadRegistryConfig();
  const service = await startRegistry(config, log);
  const metrics = await startMetricsServer(config.REGISTRY_METRICS_PORT);
  return { stop: () => stopAll(log, [service, metrics.close]) };
});

import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { startMetricsServer } from "@controlplane/metrics";
import { loadProfileCatalogConfig } from "./config.js";
import { startProfileCatalog } from "./service.js";

const log = createLogger("profile-catalog");
await runUntilSignal(log, async () => {
  const config = loadProfileCatalogConfig();
  const service = await startProfileCatalog(config, log);
  const metrics = await startMetricsServer(config.PROFILE_CATALOG_METRICS_PORT);
  return { stop: () => stopAll(log, [service, metrics.close]) };
});

import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { startMetricsServer } from "@controlplane/metrics";
import { startTracing } from "@controlplane/tracing";
import { loadProfileCatalogConfig } from "./config.js";
import { startProfileCatalog } from "./service.js";

const log = createLogger("profile-catalog");
await runUntilSignal(log, async () => {
  const config = loadProfileCatalogConfig();
  // Before anything opens: off (no cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing({ serviceName: "profile-catalog", log });
  const service = await startProfileCatalog(config, log);
  const metrics = await startMetricsServer(config.PROFILE_CATALOG_METRICS_PORT);
  return { stop: () => stopAll(log, [tracing, service, metrics.close]) };
});

import { exitOnConfigError } from "@controlplane/config";
import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { setServiceLabel, startMetricsServer } from "@controlplane/metrics";
import { startTracing } from "@controlplane/tracing";
import { loadProfileCatalogConfig } from "./config.js";
import { startProfileCatalog } from "./service.js";

// The configuration first: the logger's level is one of its settings.
const config = exitOnConfigError(() => loadProfileCatalogConfig());
const log = createLogger("profile-catalog", config.LOG_LEVEL);
setServiceLabel("profile-catalog");
await runUntilSignal(log, async () => {
  // Before anything opens: off (no cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing({ serviceName: "profile-catalog", log });
  const service = await startProfileCatalog(config, log);
  const metrics = await startMetricsServer(config.PROFILE_CATALOG_METRICS_PORT);
  return { stop: () => stopAll(log, [tracing, service, metrics.close]) };
});

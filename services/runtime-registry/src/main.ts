import { exitOnConfigError } from "@controlplane/config";
import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { setServiceLabel, startMetricsServer } from "@controlplane/metrics";
import { startTracing } from "@controlplane/tracing";
import { loadRegistryConfig } from "./config.js";
import { startRegistry } from "./service.js";

// The configuration first: the logger's level is one of its settings.
const config = exitOnConfigError(() => loadRegistryConfig());
const log = createLogger("runtime-registry", config.LOG_LEVEL);
setServiceLabel("runtime-registry");
await runUntilSignal(log, async () => {
  // Before anything opens: off (no cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing({ serviceName: "runtime-registry", log });
  const service = await startRegistry(config, log);
  const metrics = await startMetricsServer(config.REGISTRY_METRICS_PORT);
  return { stop: () => stopAll(log, [tracing, service, metrics.close]) };
});

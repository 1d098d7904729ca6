import { exitOnConfigError } from "@controlplane/config";
import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { setServiceLabel, startMetricsServer } from "@controlplane/metrics";
import { startTracing } from "@controlplane/tracing";
import { loadLivenessConfig } from "./config.js";
import { startLiveness } from "./service.js";

// The configuration first: the logger's level is one of its settings.
const config = exitOnConfigError(() => loadLivenessConfig());
const log = createLogger("liveness", config.LOG_LEVEL);
setServiceLabel("liveness");
await runUntilSignal(log, async () => {
  // Before anything opens: off (no cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing({ serviceName: "liveness", log });
  const service = await startLiveness(config, log);
  const metrics = await startMetricsServer(config.LIVENESS_METRICS_PORT);
  return { stop: () => stopAll(log, [tracing, service, metrics.close]) };
});

import { exitOnConfigError } from "@controlplane/config";
import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { setServiceLabel, startMetricsServer } from "@controlplane/metrics";
import { startTracing } from "@controlplane/tracing";
import { loadGatewayConfig } from "./config.js";
import { startGateway } from "./service.js";

// The configuration first: the logger's level is one of its settings.
const config = exitOnConfigError(() => loadGatewayConfig());
const log = createLogger("gateway", config.LOG_LEVEL);
setServiceLabel("gateway");
await runUntilSignal(log, async () => {
  // Before anything opens: off (no cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing({ serviceName: "gateway", log });
  const gateway = await startGateway(config, log);
  const metrics = await startMetricsServer(config.GATEWAY_METRICS_PORT);
  return { stop: () => stopAll(log, [tracing, gateway, metrics.close]) };
});

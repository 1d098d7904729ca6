import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { startMetricsServer } from "@controlplane/metrics";
import { loadLivenessConfig } from "./config.js";
import { startLiveness } from "./service.js";

const log = createLogger("liveness");
await runUntilSignal(log, async () => {
  const config = loadLivenessConfig();
  const service = await startLiveness(config, log);
  const metrics = await startMetricsServer(config.LIVENESS_METRICS_PORT);
  return { stop: () => stopAll(log, [service, metrics.close]) };
});

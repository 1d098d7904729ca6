import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { startMetricsServer } from "@controlplane/metrics";
import { loadGatewayConfig } from "./config.js";
import { startGateway } from "./service.js";

const log = createLogger("gateway");
await runUntilSignal(log, async () => {
  const config = loadGatewayConfig();
  const gateway = await startGateway(config, log);
  const metrics = await startMetricsServer(config.GATEWAY_METRICS_PORT);
  return { stop: () => stopAll(log, [gateway, metrics.close]) };
});

import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { startMetricsServer } from "@controlplane/metrics";
import { startTracing } from "@controlplane/tracing";
import { loadTaskQueueConfig } from "./config.js";
import { startTaskQueue } from "./service.js";

const log = createLogger("task-queue");
await runUntilSignal(log, async () => {
  const config = loadTaskQueueConfig();
  // Before anything opens: off (no cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing({ serviceName: "task-queue", log });
  const service = await startTaskQueue(config, log);
  const metrics = await startMetricsServer(config.TASK_QUEUE_METRICS_PORT);
  return { stop: () => stopAll(log, [tracing, service, metrics.close]) };
});

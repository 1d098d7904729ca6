import { exitOnConfigError } from "@controlplane/config";
import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { setServiceLabel, startMetricsServer } from "@controlplane/metrics";
import { startTracing } from "@controlplane/tracing";
import { loadTaskQueueConfig } from "./config.js";
import { startTaskQueue } from "./service.js";

// The configuration first: the logger's level is one of its settings.
const config = exitOnConfigError(() => loadTaskQueueConfig());
const log = createLogger("task-queue", config.LOG_LEVEL);
setServiceLabel("task-queue");
await runUntilSignal(log, async () => {
  // Before anything opens: off (no cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = startTracing({ serviceName: "task-queue", log });
  const service = await startTaskQueue(config, log);
  const metrics = await startMetricsServer(config.TASK_QUEUE_METRICS_PORT);
  return { stop: () => stopAll(log, [tracing, service, metrics.close]) };
});

import { runUntilSignal, stopAll } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { startMetricsServer } from "@controlplane/metrics";
import { loadTaskQueueConfig } from "./config.js";
import { startTaskQueue } from "./service.js";

const log = createLogger("task-queue");
await runUntilSignal(log, async () => {
  const config = loadTaskQueueConfig();
  const service = await startTaskQueue(config, log);
  const metrics = await startMetricsServer(config.TASK_QUEUE_METRICS_PORT);
  return { stop: () => stopAll(log, [service, metrics.close]) };
});

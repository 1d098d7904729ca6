import { exitOnConfigError, loadConfig, port, z } from "@controlplane/config";
import { ensureDatabase } from "@controlplane/db";
import { startGateway } from "@controlplane/gateway";
import { startLiveness } from "@controlplane/liveness";
import { freePort, runUntilSignal, stopAll, type Stoppable } from "@controlplane/lifecycle";
import { createLogger, redactUrl } from "@controlplane/log";
import { setServiceLabel, startMetricsServer } from "@controlplane/metrics";
import { startProfileCatalog } from "@controlplane/profile-catalog";
import { startRegistry } from "@controlplane/runtime-registry";
import { startTaskQueue } from "@controlplane/task-queue";
import { startTracing } from "@controlplane/tracing";
import { loadAllConfigs } from "./configs.js";

// The configuration first (every service's, from one environment): the logger's level is one of its settings.
const configs = exitOnConfigError(() => loadAllConfigs());
const { METRICS_PORT } = exitOnConfigError(() => loadConfig(z.object({ METRICS_PORT: port(9464) })));
const log = createLogger("controlplane", configs.registry.LOG_LEVEL);
setServiceLabel("controlplane");

/**
 * All-in-one: every service and the gateway in this process, each on its own
 * gRPC port and talking to the others over real gRPC, as under Helm.
 */
await runUntilSignal(log, async () => {
  await ensureDatabase(configs.registry.DATABASE_URL);
  const started: Stoppable[] = [];
  // One provider for the whole process (stopped last: spans of the shutdown are flushed too).
  const tracing = startTracing({ serviceName: "controlplane", log });
  started.push(tracing);
  try {
    // Services call each other, so every gRPC port is fixed before any starts.
    const registryPort = configs.registry.REGISTRY_GRPC_PORT || (await freePort());
    const profilesPort = configs.profileCatalog.PROFILE_CATALOG_GRPC_PORT || (await freePort());
    const tasksPort = configs.taskQueue.TASK_QUEUE_GRPC_PORT || (await freePort());
    const livenessPort = configs.liveness.LIVENESS_GRPC_PORT || (await freePort());
    const addresses = {
      REGISTRY_GRPC_ADDR: `127.0.0.1:${registryPort}`,
      PROFILE_CATALOG_GRPC_ADDR: `127.0.0.1:${profilesPort}`,
      TASK_QUEUE_GRPC_ADDR: `127.0.0.1:${tasksPort}`,
      LIVENESS_GRPC_ADDR: `127.0.0.1:${livenessPort}`,
    };
    const registry = await startRegistry(
      { ...configs.registry, ...addresses, REGISTRY_GRPC_PORT: registryPort },
      createLogger("runtime-registry", configs.registry.LOG_LEVEL),
    );
    started.push(registry);
    const profiles = await startProfileCatalog(
      { ...configs.profileCatalog, ...addresses, PROFILE_CATALOG_GRPC_PORT: profilesPort },
      createLogger("profile-catalog", configs.profileCatalog.LOG_LEVEL),
    );
    started.push(profiles);
    const tasks = await startTaskQueue(
      { ...configs.taskQueue, ...addresses, TASK_QUEUE_GRPC_PORT: tasksPort },
      createLogger("task-queue", configs.taskQueue.LOG_LEVEL),
    );
    started.push(tasks);
    const liveness = await startLiveness(
      { ...configs.liveness, ...addresses, LIVENESS_GRPC_PORT: livenessPort },
      createLogger("liveness", configs.liveness.LOG_LEVEL),
    );
    started.push(liveness);
    const gateway = await startGateway({ ...configs.gateway, ...addresses }, createLogger("gateway", configs.gateway.LOG_LEVEL));
    started.push(gateway);
    const metrics = await startMetricsServer(METRICS_PORT);
    started.push({ stop: metrics.close });
    log.info(
      {
        gateway: `http://127.0.0.1:${gateway.port}`,
        grpc: { "runtime-registry": registry.port, "profile-catalog": profiles.port, "task-queue": tasks.port, liveness: liveness.port },
        metrics: `http://127.0.0.1:${metrics.port}/metrics`,
        database: redactUrl(configs.registry.DATABASE_URL),
        nats: configs.registry.NATS_URL,
      },
      "control plane ready",
    );
  } catch (error) {
    await stopAll(log, started);
    throw error;
  }
  return { stop: () => stopAll(log, started) };
});

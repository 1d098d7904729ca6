import { exitOnConfigError, loadConfig, port, z } from "@controlplane/config";
import { ensureDatabase } from "@controlplane/db";
import { serveInProcess } from "@controlplane/grpc";
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
const { METRICS_PORT, ALL_IN_ONE_GRPC } = exitOnConfigError(() =>
  loadConfig(
    z.object({
      METRICS_PORT: port(9464),
      // How the services in this process call each other: in process (the default), or over loopback gRPC as under Helm.
      ALL_IN_ONE_GRPC: z.enum(["in-process", "loopback"]).default("in-process"),
    }),
  ),
);
const log = createLogger("controlplane", configs.registry.LOG_LEVEL);
setServiceLabel("controlplane");

/**
 * All-in-one: every service and the gateway in this process, each on its own
 * gRPC port (for cpctl and other processes). The services call each other
 * through the same gRPC clients and servers as under Helm; by default those
 * calls skip HTTP/2 and loopback TCP (the kit's in-process transport keeps
 * the wire's codecs, deadlines, cancellation and errors), and
 * ALL_IN_ONE_GRPC=loopback sends them over loopback gRPC as between pods.
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
    if (ALL_IN_ONE_GRPC === "in-process") serveInProcess(Object.values(addresses));
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
        calls_between_services: ALL_IN_ONE_GRPC,
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

import { exitOnConfigError } from "@controlplane/config";
import { runOnce } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { loadTaskQueueConfig } from "./config.js";
import { migrateTaskQueue } from "./service.js";

/** `npm run migrate -w @controlplane/task-queue`: apply this service's migrations and exit. */
const config = exitOnConfigError(() => loadTaskQueueConfig());
const log = createLogger("task-queue", config.LOG_LEVEL);
await runOnce(log, async () => {
  await migrateTaskQueue(config, log);
});

import { exitOnConfigError } from "@controlplane/config";
import { ensureDatabase } from "@controlplane/db";
import { runOnce } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { migrateLiveness } from "@controlplane/liveness";
import { migrateProfileCatalog } from "@controlplane/profile-catalog";
import { migrateRegistry } from "@controlplane/runtime-registry";
import { migrateTaskQueue } from "@controlplane/task-queue";
import { loadAllConfigs } from "./configs.js";

/** `npm run migrate`: create the database if needed and apply every service's migrations. */
const configs = exitOnConfigError(() => loadAllConfigs());
const log = createLogger("migrate", configs.registry.LOG_LEVEL);
await runOnce(log, async () => {
  await ensureDatabase(configs.registry.DATABASE_URL);
  await migrateRegistry(configs.registry, log);
  await migrateProfileCatalog(configs.profileCatalog, log);
  await migrateTaskQueue(configs.taskQueue, log);
  await migrateLiveness(configs.liveness, log);
  log.info("database up to date");
});

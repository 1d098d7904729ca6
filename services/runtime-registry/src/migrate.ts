import { exitOnConfigError } from "@controlplane/config";
import { runOnce } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { loadRegistryConfig } from "./config.js";
import { migrateRegistry } from "./service.js";

/** `npm run migrate -w @controlplane/runtime-registry`: apply this service's migrations and exit. */
const config = exitOnConfigError(() => loadRegistryConfig());
const log = createLogger("runtime-registry", config.LOG_LEVEL);
await runOnce(log, async () => {
  await migrateRegistry(config, log);
});

import { exitOnConfigError } from "@controlplane/config";
import { runOnce } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { loadProfileCatalogConfig } from "./config.js";
import { migrateProfileCatalog } from "./service.js";

/** `npm run migrate -w @controlplane/profile-catalog`: apply this service's migrations and exit. */
const config = exitOnConfigError(() => loadProfileCatalogConfig());
const log = createLogger("profile-catalog", config.LOG_LEVEL);
await runOnce(log, async () => {
  await migrateProfileCatalog(config, log);
});

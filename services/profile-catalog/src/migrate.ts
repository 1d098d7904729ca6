import { runOnce } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { loadProfileCatalogConfig } from "./config.js";
import { migrateProfileCatalog } from "./service.js";

/** `npm run migrate -w @controlplane/profile-catalog`: apply this service's migrations and exit. */
const log = createLogger("profile-catalog");
await runOnce(log, async () => {
  await migrateProfileCatalog(loadProfileCatalogConfig(), log);
});

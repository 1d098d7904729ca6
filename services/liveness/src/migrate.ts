import { exitOnConfigError } from "@controlplane/config";
import { runOnce } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { loadLivenessConfig } from "./config.js";
import { migrateLiveness } from "./service.js";

/** `npm run migrate -w @controlplane/liveness`: apply this service's migrations and exit. */
const config = exitOnConfigError(() => loadLivenessConfig());
const log = createLogger("liveness", config.LOG_LEVEL);
await runOnce(log, async () => {
  await migrateLiveness(config, log);
});

import { runOnce } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { loadLivenessConfig } from "./config.js";
import { migrateLiveness } from "./service.js";

/** `npm run migrate -w @controlplane/liveness`: apply this service's migrations and exit. */
const log = createLogger("liveness");
await runOnce(log, async () => {
  await migrateLiveness(loadLivenessConfig(), log);
});

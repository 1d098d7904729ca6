import type { DatabasePool, Outbox } from "@controlplane/db";
import type { EventBus } from "@controlplane/events";
import type { Logger } from "@controlplane/log";
import type { Broadcast } from "./broadcast.js";
import type { LivenessConfig } from "./config.js";
import type { Directory } from "./directory.js";
import type { LivenessState } from "./state.js";
import type { LivenessStore } from "./store.js";

/** What liveness's use cases work with. */
export interface LivenessDeps {
  pool: DatabasePool;
  outbox: Outbox;
  bus: EventBus;
  state: LivenessState;
  directory: Directory;
  store: LivenessStore;
  broadcast: Broadcast;
  config: LivenessConfig;
  log: Logger;
}

import { fileURLToPath } from "node:url";
import { createDbPool, migrate, Outbox } from "@controlplane/db";
import { closeEventBus, connectEventBus } from "@controlplane/events";
import { createClient, GrpcServer } from "@controlplane/grpc";
import { stopAll } from "@controlplane/lifecycle";
import type { Logger } from "@controlplane/log";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import type { ProfileCatalogConfig } from "./config.js";
import { SCHEMA } from "./repository.js";
import { profileCatalogHandlers } from "./server.js";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));
export { SCHEMA };

export interface RunningProfileCatalog {
  port: number;
  stop(): Promise<void>;
}

export async function migrateProfileCatalog(config: ProfileCatalogConfig, log: Logger): Promise<void> {
  await migrate({ databaseUrl: config.DATABASE_URL, schema: SCHEMA, dir: MIGRATIONS_DIR, log });
}

/** Wires config -> pool -> migrations -> events -> gRPC server. */
export async function startProfileCatalog(config: ProfileCatalogConfig, log: Logger): Promise<RunningProfileCatalog> {
  const pool = await createDbPool(config.DATABASE_URL, { name: "profile-catalog", maxSize: config.DB_POOL_SIZE });
  const parts: Array<{ stop(): Promise<void> } | (() => Promise<void>)> = [() => pool.end()];
  try {
    await migrateProfileCatalog(config, log);
    const bus = await connectEventBus({
      url: config.NATS_URL,
      name: "profile-catalog",
      stream: config.EVENTS_STREAM,
      subjectRoot: config.EVENTS_SUBJECT_ROOT,
    });
    parts.push(() => closeEventBus(bus));
    const outbox = new Outbox(pool, SCHEMA, bus, log);
    outbox.start();
    parts.push(outbox);
    const registry = createClient(RuntimeRegistryServiceService, config.REGISTRY_GRPC_ADDR, { deadlineMs: 10_000 });
    parts.push(async () => registry.close());
    const server = new GrpcServer(log).add(ProfileCatalogServiceService, profileCatalogHandlers({ pool, outbox, registry }));
    const boundPort = await server.listen(config.PROFILE_CATALOG_GRPC_PORT);
    parts.push(() => server.shutdown(config.SHUTDOWN_GRACE_MS));
    log.info({ port: boundPort }, "profile-catalog serving");
    return { port: boundPort, stop: () => stopAll(log, parts) };
  } catch (error) {
    await stopAll(log, parts);
    throw error;
  }
}

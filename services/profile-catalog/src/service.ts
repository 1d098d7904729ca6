import { fileURLToPath } from "node:url";
import { migrate } from "@controlplane/db";
import { createClient, GrpcServer } from "@controlplane/grpc";
import { openServiceHost } from "@controlplane/lifecycle";
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
  const host = await openServiceHost({ name: "profile-catalog", schema: SCHEMA, migrationsDir: MIGRATIONS_DIR, config, log });
  try {
    const registry = createClient(RuntimeRegistryServiceService, config.REGISTRY_GRPC_ADDR, { deadlineMs: 10_000 });
    host.onStop(async () => registry.close());
    const server = new GrpcServer(log).add(ProfileCatalogServiceService, profileCatalogHandlers({ pool: host.pool, outbox: host.outbox, registry }));
    const port = await server.listen(config.PROFILE_CATALOG_GRPC_PORT);
    host.onStop(() => server.shutdown(config.SHUTDOWN_GRACE_MS));
    log.info({ port }, "profile-catalog serving");
    return { port, stop: host.stop };
  } catch (error) {
    await host.stop();
    throw error;
  }
}

import { fileURLToPath } from "node:url";
import { migrate } from "@controlplane/db";
import { createClient, GrpcServer } from "@controlplane/grpc";
import { openServiceHost, type PeriodicJob } from "@controlplane/lifecycle";
import type { Logger } from "@controlplane/log";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { DEV_JWT_SECRET, type RegistryConfig } from "./config.js";
import { startRegistryConsumers } from "./events.js";
import { runtimeGcJob } from "./gc.js";
import { identityHandlers, registryHandlers } from "./server.js";

/** This service's Postgres schema; nothing else reads or writes it. */
export const SCHEMA = "registry";
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));

export interface RunningRegistry {
  port: number;
  /** The background jobs, for tests (runOnce). */
  jobs: { runtimeGc: PeriodicJob<number | null> };
  stop(): Promise<void>;
}

export async function migrateRegistry(config: RegistryConfig, log: Logger): Promise<void> {
  await migrate({ databaseUrl: config.DATABASE_URL, schema: SCHEMA, dir: MIGRATIONS_DIR, log });
}

/** Wires config -> pool -> migrations -> events -> gRPC server. */
export async function startRegistry(config: RegistryConfig, log: Logger): Promise<RunningRegistry> {
  if (config.JWT_SECRET === DEV_JWT_SECRET) log.warn("JWT_SECRET is the development default; set it outside development");
  const host = await openServiceHost({ name: "runtime-registry", schema: SCHEMA, migrationsDir: MIGRATIONS_DIR, config, log });
  try {
    const profiles = createClient(ProfileCatalogServiceService, config.PROFILE_CATALOG_GRPC_ADDR, { deadlineMs: 5_000 });
    host.onStop(async () => profiles.close());
    const deps = { pool: host.pool, outbox: host.outbox, profiles, jwtSecret: new TextEncoder().encode(config.JWT_SECRET), log };
    for (const consumer of await startRegistryConsumers({ bus: host.bus, pool: host.pool, outbox: host.outbox, log })) {
      host.onStop(consumer);
    }
    const jobs = {
      runtimeGc: runtimeGcJob({ outbox: host.outbox, log }, { intervalMs: config.RUNTIME_GC_INTERVAL_MS, retentionMs: config.RUNTIME_GC_RETENTION_MS }),
    };
    host.onStop(jobs.runtimeGc.start());
    const server = new GrpcServer(log).add(IdentityServiceService, identityHandlers(deps)).add(RuntimeRegistryServiceService, registryHandlers(deps));
    const port = await server.listen(config.REGISTRY_GRPC_PORT);
    host.onStop(() => server.shutdown(config.SHUTDOWN_GRACE_MS));
    log.info({ port }, "runtime-registry serving");
    return { port, jobs, stop: host.stop };
  } catch (error) {
    await host.stop();
    throw error;
  }
}

import { hasCode, NotFoundError, status, type PromiseClient } from "@controlplane/grpc";
import type { DatabasePool } from "@controlplane/db";
import type { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import * as repo from "./repository/runtimes.js";
import type { LivenessState, RuntimeState } from "./state.js";

export const RUNTIME_NOT_FOUND = "runtime not found";

/**
 * Which runtimes exist, and their workspace. Learned from registry events
 * (`runtime.registered`, `daemon.registered`, `runtime.deleted`), kept in the
 * database and in memory; an unknown id is looked up in the registry once.
 * Only the registry saying NOT_FOUND makes a runtime unknown: a failed
 * lookup is an error, never a 404.
 */
export class Directory {
  constructor(
    private readonly pool: DatabasePool,
    private readonly state: LivenessState,
    private readonly registry: PromiseClient<typeof RuntimeRegistryServiceService>,
  ) {}

  /** Loads every known runtime into memory (start-up). */
  async load(): Promise<number> {
    const rows = await repo.loadAll(this.pool);
    for (const row of rows) this.state.runtimes.set(row.runtime_id, fromRow(row));
    return rows.length;
  }

  /** The runtime's state by its canonical id; NOT_FOUND "runtime not found" only when it does not exist. */
  async resolve(id: string): Promise<RuntimeState> {
    const known = this.state.runtimes.get(id);
    if (known) return known;
    const stored = (await repo.find(this.pool, id)) ?? (await this.lookup(id));
    // A concurrent resolve or event may have filled it meanwhile: keep that one.
    return this.state.runtimes.get(id) ?? this.remember(stored);
  }

  /**
   * Records what the registry announced (a registration) or answered (a
   * lookup), and brings this replica's memory in line with the database.
   * Returns the new status when this changed it (other replicas must hear).
   */
  async learn(registration: repo.Registration): Promise<RuntimeState["status"] | null> {
    const { row, previous } = await this.pool.transaction((tx) => repo.learn(tx, registration));
    this.remember(row);
    return row.status !== previous ? row.status : null;
  }

  private remember(row: repo.LivenessRow): RuntimeState {
    const known = this.state.runtimes.get(row.runtime_id);
    if (!known) {
      const entry = fromRow(row);
      this.state.runtimes.set(row.runtime_id, entry);
      return entry;
    }
    known.workspaceId = row.workspace_id;
    // The row may have been read before a newer change reached memory (a deregister handled meanwhile).
    this.state.setStatus(row.runtime_id, row.status, row.status_changed_at.getTime());
    known.lastFlushedAt = Math.max(known.lastFlushedAt, row.last_seen_at?.getTime() ?? 0);
    return known;
  }

  /** Mirrors the registry's row: a runtime it calls online is online here too, seen when it last saw it. */
  private async lookup(runtimeId: string): Promise<repo.LivenessRow> {
    const { runtime: known } = await this.registry.getRuntime({ runtimeId }).catch((error: unknown) => {
      if (hasCode(error, status.NOT_FOUND)) throw new NotFoundError(RUNTIME_NOT_FOUND);
      throw error;
    });
    if (!known) throw new Error(`the registry answered GetRuntime ${runtimeId} without a runtime`);
    const changedAt = known.updatedAt ?? new Date();
    const { row } = await this.pool.transaction((tx) =>
      repo.learn(tx, {
        runtimeId,
        workspaceId: known.workspaceId,
        status: known.status === "online" ? "online" : "offline",
        changedAt,
        seenAt: known.lastSeenAt ?? changedAt,
      }),
    );
    return row;
  }
}

/** What a registry event says about one runtime, as a registration to learn. */
export function registrationOf(runtime: { id: string; workspaceId: string; status: string; lastSeenAt?: Date }, occurredAt: Date): repo.Registration {
  return {
    runtimeId: runtime.id,
    workspaceId: runtime.workspaceId,
    status: runtime.status === "offline" ? "offline" : "online",
    changedAt: occurredAt,
    seenAt: runtime.lastSeenAt ?? occurredAt,
  };
}

function fromRow(row: repo.LivenessRow): RuntimeState {
  return {
    workspaceId: row.workspace_id,
    status: row.status,
    statusChangedAt: row.status_changed_at.getTime(),
    lastBeatAt: 0,
    lastSocketBeatAt: 0,
    // What the database holds: after a restart, runtimes come due for a flush
    // as their stored times age, not all in the first tick.
    lastFlushedAt: row.last_seen_at?.getTime() ?? 0,
    storeWrittenAt: 0,
  };
}

import { InvalidArgumentError } from "@controlplane/grpc";
import type { DatabasePool, Outbox } from "@controlplane/db";
import { LIMITS } from "@controlplane/config";
import { parseUuid } from "@controlplane/ids";
import { OfflineReason } from "@controlplane/proto/events/v1/events";
import { callerOf, type Caller } from "./caller.js";
import * as runtimes from "./repository/runtimes.js";

/**
 * Marks runtimes offline on daemon shutdown (and, for today's daemon, when
 * an agent CLI stops being runnable). Every id is validated before any
 * write; ids that do not exist or that the caller may not touch are skipped
 * silently. A runtime named in `offlineReasonsJson` (by its id exactly as in
 * runtimeIds) keeps the reason as metadata.offline_reason until its next
 * register. Each runtime that was online publishes `runtime.offline`
 * (reason deregister), so its in-flight tasks are handled at once rather than
 * at some later sweep.
 */
export async function deregisterRuntimes(
  deps: { pool: DatabasePool; outbox: Outbox },
  request: { runtimeIds: string[]; offlineReasonsJson?: Record<string, string>; callerWorkspaceId?: string; callerUserId?: string },
): Promise<string[]> {
  if (request.runtimeIds.length === 0) throw new InvalidArgumentError("runtime_ids is required");
  if (request.runtimeIds.length > LIMITS.DEREGISTER_RUNTIMES) {
    throw new InvalidArgumentError(`too many runtime_ids (at most ${LIMITS.DEREGISTER_RUNTIMES})`);
  }
  const ids: string[] = [];
  for (const sent of request.runtimeIds) {
    const id = parseUuid(sent);
    if (!id) throw new InvalidArgumentError("invalid runtime_ids");
    ids.push(id);
  }
  const reasons = reasonsOf(request.runtimeIds, request.offlineReasonsJson ?? {});
  const scope = scopeOf(callerOf(request));
  if (scope === null) return [];
  return deps.outbox.transaction(async (tx) => {
    const rows = await runtimes.markOffline(tx, [...new Set(ids)], scope, reasons);
    const flipped = rows.filter((row) => row.was_online);
    for (const row of flipped) {
      await deps.outbox.write(
        tx,
        "runtime.offline",
        { runtimeId: row.id, reason: OfflineReason.OFFLINE_REASON_DEREGISTER, lastSeenAt: row.last_seen_at ?? undefined },
        { workspaceId: row.workspace_id },
      );
    }
    return flipped.map((row) => row.id);
  });
}

/** Most characters of one offline reason, as JSON. */
export const OFFLINE_REASON_CHARS = LIMITS.SUMMARY_CHARS;

/**
 * Canonical runtime id -> reason (raw JSON), for the ids sent with one; when
 * two spellings of an id carry reasons, the later one wins. Every reason is
 * checked, named or not: JSON, bounded, no NUL (Postgres cannot store it).
 */
function reasonsOf(runtimeIds: string[], given: Record<string, string>): Map<string, string> {
  const entries = Object.entries(given);
  if (entries.length > LIMITS.DEREGISTER_RUNTIMES) {
    throw new InvalidArgumentError(`too many offline_reasons (at most ${LIMITS.DEREGISTER_RUNTIMES})`);
  }
  for (const [, json] of entries) {
    if (json.length > OFFLINE_REASON_CHARS) {
      throw new InvalidArgumentError(`offline_reasons: too large (at most ${OFFLINE_REASON_CHARS} characters as JSON)`);
    }
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw new InvalidArgumentError("invalid offline_reasons");
    }
    if (holdsNul(value)) throw new InvalidArgumentError("offline_reasons: contains a NUL character");
  }
  const reasons = new Map<string, string>();
  for (const raw of runtimeIds) {
    // Every id was checked to be a UUID before its reason is looked up.
    const id = parseUuid(raw);
    const reason = Object.hasOwn(given, raw) ? given[raw] : undefined;
    if (id && reason !== undefined) reasons.set(id, reason);
  }
  return reasons;
}

function holdsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(holdsNul);
  if (typeof value === "object" && value !== null) return Object.entries(value).some(([key, inner]) => key.includes("\u0000") || holdsNul(inner));
  return false;
}

function scopeOf(caller: Caller): runtimes.RuntimeScope | null {
  switch (caller.kind) {
    case "daemon":
      return { workspaceId: caller.workspaceId };
    case "user": {
      const userId = parseUuid(caller.userId);
      return userId ? { userId } : null;
    }
    case "internal":
      return "internal";
  }
}

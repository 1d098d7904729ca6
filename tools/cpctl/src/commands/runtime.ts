import type { Command } from "commander";
import { livenessClient, registryClient } from "../clients.js";
import { fields, print, table } from "../output.js";
import { context } from "../program.js";

export function registerRuntimeCommands(program: Command): void {
  const runtime = program.command("runtime").description("inspect registered runtimes");

  runtime
    .command("list <workspace-id>")
    .description("list a workspace's runtimes, oldest first")
    .action(async (workspaceId: string) => {
      const { addresses, out } = context();
      const client = registryClient(addresses);
      try {
        const { runtimes } = await client.listRuntimes({ workspaceId });
        print(out, runtimes, () =>
          table(
            runtimes.map((r) => ({ ...r, kind: r.profileId ? `profile ${r.profileId}` : "built-in" })),
            ["id", "name", "provider", "status", "daemonId", "kind", "lastSeenAt"],
          ),
        );
      } finally {
        client.close();
      }
    });

  runtime
    .command("show <runtime-id>")
    .description("show one runtime")
    .action(async (runtimeId: string) => {
      const { addresses, out } = context();
      const client = registryClient(addresses);
      try {
        const { runtime: r } = await client.getRuntime({ runtimeId });
        print(out, r, () =>
          fields([
            ["id", r!.id],
            ["workspace_id", r!.workspaceId],
            ["daemon_id", r!.daemonId],
            ["name", r!.name],
            ["provider", r!.provider],
            ["profile_id", r!.profileId],
            ["status", r!.status],
            ["device_info", r!.deviceInfo],
            ["owner_id", r!.ownerId],
            ["last_seen_at", r!.lastSeenAt],
            ["legacy_daemon_id", r!.legacyDaemonId],
          ]),
        );
      } finally {
        client.close();
      }
    });

  runtime
    .command("status <runtime-id>")
    .description("what liveness knows: online or offline, last seen, last beat, whether its daemon holds a socket")
    .action(async (runtimeId: string) => {
      const { addresses, out } = context();
      const client = livenessClient(addresses);
      try {
        const live = await client.getRuntimeLiveness({ runtimeId });
        const connectedBySocket = isConnectedBySocket(live.lastSocketBeatAt, Date.now());
        print(out, { ...live, connectedBySocket }, () =>
          fields([
            ["runtime_id", live.runtimeId],
            ["status", live.status],
            ["last_seen_at", live.lastSeenAt],
            ["last_beat_at", live.lastBeatAt ?? "(no beat at this replica)"],
            ["last_socket_beat_at", live.lastSocketBeatAt ?? "(no socket beat at this replica)"],
            ["connection", connectedBySocket ? "connected by socket" : "not on a socket (HTTP heartbeats)"],
            ["status_changed_at", live.statusChangedAt],
          ]),
        );
      } finally {
        client.close();
      }
    });
}

/**
 * How recent a socket beat must be for the runtime to count as connected by
 * socket: two heartbeat intervals, so one late or lost beat does not flip the
 * verdict. The interval is liveness's HEARTBEAT_INTERVAL_MS, which no RPC
 * exposes, so cpctl assumes the daemons' default of 15 s.
 */
export const SOCKET_FRESH_MS = 2 * 15_000;

/**
 * Connected by socket: the replica that answered saw a socket beat within
 * SOCKET_FRESH_MS of `now` (this machine's clock: a skewed clock shifts it).
 */
export function isConnectedBySocket(lastSocketBeatAt: Date | undefined, now: number): boolean {
  return lastSocketBeatAt !== undefined && now - lastSocketBeatAt.getTime() <= SOCKET_FRESH_MS;
}

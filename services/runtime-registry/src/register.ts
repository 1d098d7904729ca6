import {
  FailedPreconditionError,
  hasCode,
  InvalidArgumentError,
  NotFoundError,
  status,
  UnauthenticatedError,
  UnavailableError,
  type PromiseClient,
} from "@controlplane/grpc";
import type { DatabasePool, Outbox } from "@controlplane/db";
import { LIMITS } from "@controlplane/config";
import { parseUuid } from "@controlplane/ids";
import type { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import type { RegisterDaemonRequest, RegisterDaemonResponse, RuntimeRegistration } from "@controlplane/proto/registry/v1/registry";
import { callerOf, type Caller } from "./caller.js";
import { mergeLegacyRuntimes } from "./legacy-merge.js";
import * as members from "./repository/members.js";
import * as runtimes from "./repository/runtimes.js";
import * as workspaces from "./repository/workspaces.js";
import { normalizeRepos, reposVersion } from "./repos.js";
import { runtimeToProto } from "./runtimes.js";
import { WORKSPACE_NOT_FOUND } from "./workspaces.js";

export interface RegisterDeps {
  pool: DatabasePool;
  outbox: Outbox;
  profiles: PromiseClient<typeof ProfileCatalogServiceService>;
}

/** What one runtime of the request will be written as, decided before any write. */
type Plan = runtimes.RuntimeUpsert & { builtIn: boolean };

/**
 * Registers a daemon's runtimes. Checks run in the contract's order (body
 * fields, caller, workspace, then each runtime in request order); unlike the
 * original, every runtime is checked before anything is written and all
 * upserts, merges and events commit together, so a refused runtime leaves no
 * half-registered daemon behind.
 */
export async function registerDaemon(deps: RegisterDeps, req: RegisterDaemonRequest, signal?: AbortSignal): Promise<RegisterDaemonResponse> {
  const daemonId = req.daemonId.trim();
  const rawWorkspaceId = req.workspaceId.trim();
  const deviceName = req.deviceName.trim();
  if (!daemonId) throw new InvalidArgumentError("daemon_id is required");
  if (!rawWorkspaceId) throw new InvalidArgumentError("workspace_id is required");
  if (req.runtimes.length === 0) throw new InvalidArgumentError("at least one runtime is required");
  const workspaceId = parseUuid(rawWorkspaceId);
  if (!workspaceId) throw new InvalidArgumentError("invalid workspace_id");
  checkBounds(req);

  const ownerId = await authorize(deps.pool, callerOf(req), workspaceId);
  const workspace = await workspaces.findWorkspace(deps.pool, workspaceId);
  if (!workspace) throw new NotFoundError(WORKSPACE_NOT_FOUND);

  const plans: Plan[] = [];
  for (const runtime of req.runtimes) {
    plans.push(await plan(deps, workspaceId, daemonId, deviceName, ownerId, req, runtime));
  }

  const rows = await deps.outbox.transaction(async (tx) => {
    const registered = [];
    for (const p of plans) {
      const { inserted, ...row } = await runtimes.upsertRuntime(tx, p);
      if (inserted) await deps.outbox.write(tx, "runtime.registered", { runtime: runtimeToProto(row) }, { workspaceId });
      if (p.builtIn) {
        const merged = await mergeLegacyRuntimes(tx, deps.outbox, { id: row.id, workspaceId, provider: row.provider }, req.legacyDaemonIds);
        registered.push(merged.length > 0 ? ((await runtimes.findRuntime(tx, row.id)) ?? row) : row);
      } else {
        registered.push(row);
      }
    }
    await deps.outbox.write(
      tx,
      "daemon.registered",
      { daemonId, runtimes: registered.map(runtimeToProto) },
      { workspaceId, actorId: ownerId ?? undefined },
    );
    // A caller that gave up (or whose deadline passed) gets nothing committed
    // behind its failure: it will register again.
    signal?.throwIfAborted();
    return registered;
  });

  const repos = normalizeRepos(workspace.repos);
  return { runtimes: rows.map(runtimeToProto), repos, reposVersion: reposVersion(repos), settingsJson: workspace.settings_json };
}

/**
 * Our bounds (the contract has none): the gateway refuses past them with a
 * 400 already; internal callers meet them here, before the database does.
 */
function checkBounds(req: RegisterDaemonRequest): void {
  if (req.runtimes.length > LIMITS.REGISTER_RUNTIMES) throw new InvalidArgumentError(`too many runtimes (at most ${LIMITS.REGISTER_RUNTIMES})`);
  if (req.legacyDaemonIds.length > LIMITS.LEGACY_DAEMON_IDS) {
    throw new InvalidArgumentError(`too many legacy_daemon_ids (at most ${LIMITS.LEGACY_DAEMON_IDS})`);
  }
  const names: Array<[string, string]> = [
    ["daemon_id", req.daemonId],
    ["device_name", req.deviceName],
    ["cli_version", req.cliVersion],
    ["launched_by", req.launchedBy],
    ...req.legacyDaemonIds.map((id): [string, string] => ["legacy_daemon_ids", id]),
    ...req.runtimes.flatMap((r): Array<[string, string]> => [
      ["runtimes.name", r.name],
      ["runtimes.type", r.type],
      ["runtimes.version", r.version],
      ["runtimes.status", r.status],
      ["runtimes.profile_id", r.profileId],
    ]),
  ];
  for (const [field, value] of names) {
    if (value.length > LIMITS.NAME_CHARS) throw new InvalidArgumentError(`${field}: too long (at most ${LIMITS.NAME_CHARS} characters)`);
    if (value.includes("\u0000")) throw new InvalidArgumentError(`${field}: contains a NUL character`);
  }
}

/** Step 6: may the caller register into this workspace, and who owns the runtimes. */
async function authorize(pool: DatabasePool, caller: Caller, workspaceId: string): Promise<string | null> {
  switch (caller.kind) {
    case "daemon":
      if (caller.workspaceId !== workspaceId) throw new NotFoundError(WORKSPACE_NOT_FOUND);
      return null;
    case "user": {
      if (!caller.userId) throw new UnauthenticatedError("user not authenticated");
      const userId = parseUuid(caller.userId);
      const member = userId ? await members.findMember(pool, workspaceId, userId) : null;
      if (!member) throw new NotFoundError(WORKSPACE_NOT_FOUND);
      return member.user_id;
    }
    case "internal":
      return caller.ownerId;
  }
}

async function plan(
  deps: RegisterDeps,
  workspaceId: string,
  daemonId: string,
  deviceName: string,
  ownerId: string | null,
  req: RegisterDaemonRequest,
  runtime: RuntimeRegistration,
): Promise<Plan> {
  let provider = runtime.type.trim() || "unknown";
  let profileId: string | null = null;
  if (runtime.profileId.trim() !== "") {
    const profile = await customProfile(deps, workspaceId, runtime.profileId);
    provider = profile.protocolFamily;
    profileId = profile.id;
  }
  const name = runtime.name.trim() || (deviceName ? `${provider} (${deviceName})` : provider);
  return {
    workspaceId,
    daemonId,
    name,
    provider,
    status: runtime.status === "offline" ? "offline" : "online",
    deviceInfo: deviceInfo(deviceName, runtime.version),
    metadata: { version: runtime.version, cli_version: req.cliVersion, launched_by: req.launchedBy },
    ownerId,
    profileId,
    builtIn: profileId === null,
  };
}

/**
 * The profile of a custom runtime: it must be in the workspace (else 400) and
 * enabled (else 409). A profile catalog that cannot answer is a 503, not a
 * "400 unknown profile" a daemon would never retry.
 */
async function customProfile(deps: RegisterDeps, workspaceId: string, sent: string) {
  const id = parseUuid(sent.trim());
  if (!id) throw new InvalidArgumentError("invalid profile_id");
  let profile;
  try {
    ({ profile } = await deps.profiles.getProfile({ workspaceId, profileId: id }));
  } catch (error) {
    if (hasCode(error, status.NOT_FOUND) || hasCode(error, status.INVALID_ARGUMENT)) {
      throw new InvalidArgumentError(`unknown runtime profile: ${sent}`);
    }
    throw new UnavailableError("profile catalog unavailable");
  }
  if (!profile) throw new InvalidArgumentError(`unknown runtime profile: ${sent}`);
  if (!profile.enabled) throw new FailedPreconditionError(`runtime profile is disabled: ${sent}`);
  return profile;
}

export function deviceInfo(device: string, version: string): string {
  if (device && version) return `${device} · ${version}`;
  return version || device;
}

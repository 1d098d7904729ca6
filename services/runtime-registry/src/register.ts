import {
  FailedPreconditionError,
  hasCode,
  InvalidArgumentError,
  NotFoundError,
  requireUuid,
  status,
  UnauthenticatedError,
  UnavailableError,
  type PromiseClient,
} from "@controlplane/grpc";
import type { DatabasePool, DatabaseTransactionConnection, Outbox } from "@controlplane/db";
import { LIMITS } from "@controlplane/config";
import { parseUuid } from "@controlplane/ids";
import type { Logger } from "@controlplane/log";
import { OfflineReason } from "@controlplane/proto/events/v1/events";
import type { ProfileCatalogServiceService, RuntimeProfile } from "@controlplane/proto/profiles/v1/profiles";
import type { FailedProfile, RegisterDaemonRequest, RegisterDaemonResponse, RuntimeRegistration } from "@controlplane/proto/registry/v1/registry";
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
  log?: Logger;
}

/** What one runtime of the request will be written as, decided before any write. */
type Plan = runtimes.RuntimeUpsert & { builtIn: boolean };
/** The offline row of a failed profile, decided before any write. */
type FailedPlan = runtimes.RuntimeUpsert & { profileId: string };

/** The seed's refusal of an empty register, and today's (which also counts failed profiles). */
export const NO_RUNTIME = "at least one runtime is required";
export const NOTHING_TO_REGISTER = "at least one runtime or failed profile is required";
/** A failed profile's reason when the daemon gave none. */
export const DEFAULT_FAILURE_REASON = "custom runtime command could not be resolved";
/** Most capabilities one daemon may advertise (today's sends 7). */
export const MAX_CAPABILITIES = 64;

/**
 * Registers a daemon's runtimes. Checks run in the contract's order (body
 * fields, caller, workspace, then each runtime in request order, then each
 * failed profile); unlike the original, everything is checked before
 * anything is written and all upserts, merges and events commit together,
 * so a refused runtime leaves no half-registered daemon behind. Failed
 * profiles never refuse a register (an unknown or disabled one is skipped,
 * as the original skipped it), except for a profile_id that is not a UUID,
 * which the original refused half-way and we refuse before writing.
 */
export async function registerDaemon(deps: RegisterDeps, req: RegisterDaemonRequest, signal?: AbortSignal): Promise<RegisterDaemonResponse> {
  const daemonId = req.daemonId.trim();
  const rawWorkspaceId = req.workspaceId.trim();
  const deviceName = req.deviceName.trim();
  if (!daemonId) throw new InvalidArgumentError("daemon_id is required");
  if (!rawWorkspaceId) throw new InvalidArgumentError("workspace_id is required");
  if (req.runtimes.length === 0 && req.failedProfiles.length === 0) {
    throw new InvalidArgumentError(req.clientCapabilities ? NOTHING_TO_REGISTER : NO_RUNTIME);
  }
  const workspaceId = requireUuid(rawWorkspaceId, "workspace_id");
  checkBounds(req);

  const ownerId = await authorize(deps.pool, callerOf(req), workspaceId);
  const workspace = await workspaces.findWorkspace(deps.pool, workspaceId);
  if (!workspace) throw new NotFoundError(WORKSPACE_NOT_FOUND);

  const base = { version: "", cli_version: req.cliVersion, launched_by: req.launchedBy, ...capabilitiesOf(req) };
  const plans: Plan[] = [];
  for (const runtime of req.runtimes) {
    plans.push(await plan(deps, workspaceId, daemonId, deviceName, ownerId, base, runtime));
  }
  const failedPlans = await planFailed(deps, { workspaceId, daemonId, deviceName, ownerId, base }, req.failedProfiles);

  const { rows, failedRows } = await deps.outbox.transaction(async (tx) => {
    const registered = [];
    for (const p of plans) {
      const { inserted, ...upserted } = await runtimes.upsertRuntime(tx, p);
      const row = inserted ? await withMachineName(tx, upserted) : upserted;
      if (inserted) await deps.outbox.write(tx, "runtime.registered", { runtime: runtimeToProto(row) }, { workspaceId });
      if (p.builtIn) {
        const merged = await mergeLegacyRuntimes(tx, deps.outbox, { id: row.id, workspaceId, provider: row.provider }, req.legacyDaemonIds);
        registered.push(merged.length > 0 ? ((await runtimes.findRuntime(tx, row.id)) ?? row) : row);
      } else {
        registered.push(row);
      }
    }
    const failed = [];
    for (const p of failedPlans) failed.push(await recordFailedProfile(tx, deps.outbox, p));
    await deps.outbox.write(tx, "daemon.registered", { daemonId, runtimes: registered.map(runtimeToProto) }, { workspaceId, actorId: ownerId ?? undefined });
    // A caller that gave up (or whose deadline passed) gets nothing committed
    // behind its failure: it will register again.
    signal?.throwIfAborted();
    return { rows: registered, failedRows: failed };
  });

  const repos = normalizeRepos(workspace.repos);
  return {
    runtimes: rows.map(runtimeToProto),
    repos,
    reposVersion: reposVersion(repos),
    settingsJson: workspace.settings_json,
    failedRuntimes: failedRows.map(runtimeToProto),
  };
}

/** `capabilities` for the metadata of today's daemon (null when it advertised none); nothing for the seed-era daemon. */
function capabilitiesOf(req: RegisterDaemonRequest): { capabilities?: string[] | null } {
  if (!req.clientCapabilities) return {};
  const names = req.clientCapabilities.names.map((name) => name.trim()).filter((name) => name !== "");
  return { capabilities: names.length > 0 ? names : null };
}

/** A runtime just inserted takes the custom name its machine's other runtimes share, if any. */
async function withMachineName(tx: DatabaseTransactionConnection, row: runtimes.RuntimeRow): Promise<runtimes.RuntimeRow> {
  if (row.daemon_id === null || row.custom_name !== null) return row;
  return (await runtimes.inheritCustomName(tx, row.id, row.workspace_id, row.daemon_id)) ?? row;
}

/**
 * The failed profiles worth a row: blank ids are skipped, an id that is not a
 * UUID refuses the request; a profile the catalog does not know in this
 * workspace, or a disabled one, is skipped, and so is every one when the
 * catalog cannot answer (the row is informational; the daemon reports the
 * failure again on its next register).
 */
async function planFailed(
  deps: RegisterDeps,
  ctx: { workspaceId: string; daemonId: string; deviceName: string; ownerId: string | null; base: Record<string, unknown> },
  failedProfiles: FailedProfile[],
): Promise<FailedPlan[]> {
  const wanted: Array<{ id: string; failed: FailedProfile }> = [];
  for (const failed of failedProfiles) {
    const raw = failed.profileId.trim();
    if (!raw) continue;
    wanted.push({ id: requireUuid(raw, "profile_id"), failed });
  }
  const plans: FailedPlan[] = [];
  for (const { id, failed } of wanted) {
    const profile = await failedProfile(deps, ctx.workspaceId, id);
    if (!profile) continue;
    plans.push({
      workspaceId: ctx.workspaceId,
      daemonId: ctx.daemonId,
      name: ctx.deviceName ? `${profile.displayName} (${ctx.deviceName})` : profile.displayName,
      provider: profile.protocolFamily,
      status: "offline",
      deviceInfo: ctx.deviceName,
      metadata: {
        ...ctx.base,
        runtime_profile_registration_error: true,
        runtime_profile_failure_reason: failed.reason.trim() || DEFAULT_FAILURE_REASON,
        command_name: failed.commandName.trim() || profile.commandName,
      },
      ownerId: ctx.ownerId,
      profileId: profile.id,
    });
  }
  return plans;
}

/** The enabled profile of this workspace, or null (logged) when there is none to record a failure for. */
async function failedProfile(deps: RegisterDeps, workspaceId: string, profileId: string): Promise<RuntimeProfile | null> {
  try {
    const { profile } = await deps.profiles.getProfile({ workspaceId, profileId });
    if (profile?.enabled) return profile;
    deps.log?.info({ workspace_id: workspaceId, profile_id: profileId }, "failed profile skipped: disabled");
  } catch (error) {
    if (hasCode(error, status.NOT_FOUND) || hasCode(error, status.INVALID_ARGUMENT)) {
      deps.log?.info({ workspace_id: workspaceId, profile_id: profileId }, "failed profile skipped: not a profile of the workspace");
    } else {
      deps.log?.warn({ err: error, workspace_id: workspaceId, profile_id: profileId }, "failed profile skipped: profile catalog unavailable");
    }
  }
  return null;
}

/**
 * Writes a failed profile's offline row. A new row is announced like any
 * registered runtime; a row that was online goes offline as on a deregister
 * (its in-flight tasks are handled, liveness stops expecting beats).
 */
async function recordFailedProfile(tx: DatabaseTransactionConnection, outbox: Outbox, p: FailedPlan): Promise<runtimes.RuntimeRow> {
  const wasOnline = (await runtimes.lockProfileRuntimeStatus(tx, p.workspaceId, p.daemonId, p.profileId)) === "online";
  const { inserted, ...upserted } = await runtimes.upsertRuntime(tx, p);
  const row = inserted ? await withMachineName(tx, upserted) : upserted;
  const meta = { workspaceId: p.workspaceId };
  if (inserted) await outbox.write(tx, "runtime.registered", { runtime: runtimeToProto(row) }, meta);
  if (wasOnline) {
    await outbox.write(
      tx,
      "runtime.offline",
      { runtimeId: row.id, reason: OfflineReason.OFFLINE_REASON_DEREGISTER, lastSeenAt: row.last_seen_at ?? undefined },
      meta,
    );
  }
  return row;
}

/**
 * Our bounds (the contract has none): the gateway refuses past them with a
 * 400 already; internal callers meet them here, before the database does.
 */
function checkBounds(req: RegisterDaemonRequest): void {
  if (req.runtimes.length > LIMITS.REGISTER_RUNTIMES) throw new InvalidArgumentError(`too many runtimes (at most ${LIMITS.REGISTER_RUNTIMES})`);
  if (req.failedProfiles.length > LIMITS.REGISTER_RUNTIMES) {
    throw new InvalidArgumentError(`too many failed_profiles (at most ${LIMITS.REGISTER_RUNTIMES})`);
  }
  const capabilities = req.clientCapabilities?.names ?? [];
  if (capabilities.length > MAX_CAPABILITIES) throw new InvalidArgumentError(`too many capabilities (at most ${MAX_CAPABILITIES})`);
  if (req.legacyDaemonIds.length > LIMITS.LEGACY_DAEMON_IDS) {
    throw new InvalidArgumentError(`too many legacy_daemon_ids (at most ${LIMITS.LEGACY_DAEMON_IDS})`);
  }
  const names: Array<[string, string]> = [
    ["daemon_id", req.daemonId],
    ["device_name", req.deviceName],
    ["cli_version", req.cliVersion],
    ["launched_by", req.launchedBy],
    ...req.legacyDaemonIds.map((id): [string, string] => ["legacy_daemon_ids", id]),
    ...req.runtimes.flatMap(
      (r): Array<[string, string]> => [
        ["runtimes.name", r.name],
        ["runtimes.type", r.type],
        ["runtimes.version", r.version],
        ["runtimes.status", r.status],
        ["runtimes.profile_id", r.profileId],
      ],
    ),
    ...req.failedProfiles.map((f): [string, string] => ["failed_profiles.profile_id", f.profileId]),
    ...capabilities.map((name): [string, string] => ["capabilities", name]),
  ];
  const longer: Array<[string, string, number]> = req.failedProfiles.flatMap(
    (f): Array<[string, string, number]> => [
      ["failed_profiles.command_name", f.commandName, LIMITS.PATH_CHARS],
      ["failed_profiles.reason", f.reason, LIMITS.SUMMARY_CHARS],
    ],
  );
  for (const [field, value, max] of [...names.map(([field, value]): [string, string, number] => [field, value, LIMITS.NAME_CHARS]), ...longer]) {
    if (value.length > max) throw new InvalidArgumentError(`${field}: too long (at most ${max} characters)`);
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
  base: Record<string, unknown>,
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
    metadata: { ...base, version: runtime.version },
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
  const id = requireUuid(sent.trim(), "profile_id");
  const { profile } = await deps.profiles.getProfile({ workspaceId, profileId: id }).catch((error: unknown) => {
    if (hasCode(error, status.NOT_FOUND) || hasCode(error, status.INVALID_ARGUMENT)) {
      throw new InvalidArgumentError(`unknown runtime profile: ${sent}`);
    }
    throw new UnavailableError("profile catalog unavailable", { cause: error });
  });
  if (!profile) throw new InvalidArgumentError(`unknown runtime profile: ${sent}`);
  if (!profile.enabled) throw new FailedPreconditionError(`runtime profile is disabled: ${sent}`);
  return profile;
}

export function deviceInfo(device: string, version: string): string {
  if (device && version) return `${device} · ${version}`;
  return version || device;
}

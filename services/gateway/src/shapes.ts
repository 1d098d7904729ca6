import type { DeliveredAction, HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import type { RuntimeProfile } from "@controlplane/proto/profiles/v1/profiles";
import type { Repo, Workspace } from "@controlplane/proto/registry/v1/identity";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import { goAny, goMap, type GoMap, rfc3339 } from "./wire/go-json.js";

/** The runtime profile object of the contract (P1–P4, D6). */
export function profileJson(profile: RuntimeProfile) {
  return {
    id: profile.id,
    workspace_id: profile.workspaceId,
    display_name: profile.displayName,
    protocol_family: profile.protocolFamily,
    command_name: profile.commandName,
    description: profile.description ?? null,
    fixed_args: profile.fixedArgs,
    visibility: profile.visibility,
    created_by: profile.createdBy ?? null,
    enabled: profile.enabled,
    created_at: rfc3339(profile.createdAt ?? new Date(0)),
    updated_at: rfc3339(profile.updatedAt ?? new Date(0)),
  };
}

/** A repo as daemons read it: description left out when empty. */
export function repoJson(repo: Repo) {
  return repo.description ? { url: repo.url, description: repo.description } : { url: repo.url };
}

/**
 * A workspace in GET /api/workspaces (U1; the daemon reads id and name): the
 * original's struct, with settings and repos decoded from their stored JSON
 * into Go's `any` (maps: keys sorted at every depth). A workspace without a
 * description has it NULL there, written as null.
 */
export function workspaceJson(workspace: Workspace) {
  return {
    id: workspace.id,
    name: workspace.name,
    slug: workspace.slug,
    description: workspace.description === "" ? null : workspace.description,
    context: workspace.context ?? null,
    settings: storedObject(workspace.settingsJson),
    repos: workspace.repos.map((repo) => goMap({ url: repo.url, description: repo.description })),
    issue_prefix: workspace.issuePrefix,
    avatar_url: null,
    created_at: rfc3339(workspace.createdAt ?? new Date(0)),
    updated_at: rfc3339(workspace.updatedAt ?? new Date(0)),
  };
}

/** A stored JSON object decoded into `any` as the original did; `{}` when empty, null or not JSON. */
function storedObject(json: string | undefined): unknown {
  let value: unknown;
  try {
    value = json ? goAny(json) : undefined;
  } catch {
    value = undefined;
  }
  return value ?? goMap({});
}

/**
 * The runtime object of the contract, in its field order; metadata decoded
 * into `any` (sorted keys). Today's shape (`withCustomName`) has
 * `custom_name` after `name`; the seed's has none.
 */
export function runtimeJson(runtime: Runtime, { withCustomName = false }: { withCustomName?: boolean } = {}) {
  return {
    id: runtime.id,
    workspace_id: runtime.workspaceId,
    daemon_id: runtime.daemonId ?? null,
    name: runtime.name,
    ...(withCustomName ? { custom_name: runtime.customName ?? null } : {}),
    runtime_mode: runtime.runtimeMode,
    provider: runtime.provider,
    launch_header: runtime.launchHeader,
    status: runtime.status,
    device_info: runtime.deviceInfo,
    metadata: storedObject(runtime.metadataJson),
    owner_id: runtime.ownerId ?? null,
    visibility: runtime.visibility,
    profile_id: runtime.profileId ?? null,
    last_seen_at: runtime.lastSeenAt ? rfc3339(runtime.lastSeenAt) : null,
    created_at: rfc3339(runtime.createdAt ?? new Date(0)),
    updated_at: rfc3339(runtime.updatedAt ?? new Date(0)),
  };
}

/**
 * The pending actions a beat popped, as the heartbeat answer (D3) and the
 * socket's ack carry them: each key only when something was popped.
 */
export function pendingActionsJson(beat: HeartbeatResponse) {
  return {
    ...(beat.pendingUpdate ? { pending_update: { id: beat.pendingUpdate.id, target_version: beat.pendingUpdate.targetVersion ?? "" } } : {}),
    ...(beat.pendingModelList ? { pending_model_list: { id: beat.pendingModelList.id } } : {}),
    ...(beat.pendingLocalSkills ? { pending_local_skills: { id: beat.pendingLocalSkills.id } } : {}),
    ...(beat.pendingLocalSkillImport ? { pending_local_skill_import: importJson(beat.pendingLocalSkillImport) } : {}),
    ...(beat.pendingLocalSkillImports.length > 0 ? { pending_local_skill_imports: beat.pendingLocalSkillImports.map(importJson) } : {}),
  };
}

/**
 * The HTTP heartbeat answer (D3): the original built it as a Go map, so its
 * keys are sorted (`pending_*` before `status`). The socket's ack is a struct
 * and keeps pendingActionsJson's declaration order instead.
 */
export function heartbeatAnswerJson(beat: HeartbeatResponse): GoMap {
  return goMap({ status: "ok", ...pendingActionsJson(beat) });
}

/** True when a beat delivers no action: its answer is then the same for every beat (see sendHeartbeatAnswer). */
export function deliversNothing(beat: HeartbeatResponse): boolean {
  return (
    beat.pendingUpdate === undefined &&
    beat.pendingModelList === undefined &&
    beat.pendingLocalSkills === undefined &&
    beat.pendingLocalSkillImport === undefined &&
    beat.pendingLocalSkillImports.length === 0
  );
}

/** The daemon's profile list (D6): a Go map, so `runtime_profiles` before `workspace_id`. */
export function daemonProfileListJson(workspaceId: string, profiles: RuntimeProfile[]): GoMap {
  return goMap({ workspace_id: workspaceId, runtime_profiles: profiles.map(profileJson) });
}

/** Ids of every action a beat popped (to give them back if its answer is never delivered). */
export function poppedActionIds(beat: HeartbeatResponse): string[] {
  const single = [beat.pendingUpdate, beat.pendingModelList, beat.pendingLocalSkills, beat.pendingLocalSkillImport];
  const ids = single.filter((a): a is DeliveredAction => a !== undefined).map((a) => a.id);
  for (const action of beat.pendingLocalSkillImports) if (!ids.includes(action.id)) ids.push(action.id);
  return ids;
}

function importJson(action: DeliveredAction) {
  return { id: action.id, skill_key: action.skillKey ?? "" };
}

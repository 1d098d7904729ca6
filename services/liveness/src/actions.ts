import { randomBytes } from "node:crypto";
import { counter } from "@controlplane/metrics";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, requireUuid, UnavailableError } from "@controlplane/grpc";
import { isUniqueViolation, type DatabaseTransactionConnection } from "@controlplane/db";
import type { EventBody } from "@controlplane/events";
import { parseUuid } from "@controlplane/ids";
import {
  ActionKind,
  type Action,
  type DeliveredAction,
  type EnqueueActionRequest,
  type HeartbeatResponse,
  type ReportActionResultRequest,
  type ReturnActionsRequest,
  type ReturnActionsResponse,
} from "@controlplane/proto/liveness/v1/liveness";
import type { ActionKindName } from "./config.js";
import type { LivenessDeps } from "./deps.js";
import * as repo from "./repository/actions.js";

const KIND_NAMES: Record<number, ActionKindName> = {
  [ActionKind.ACTION_KIND_UPDATE]: "update",
  [ActionKind.ACTION_KIND_MODEL_LIST]: "model_list",
  [ActionKind.ACTION_KIND_LOCAL_SKILLS]: "local_skills",
  [ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT]: "local_skill_import",
};
const KIND_VALUES = Object.fromEntries(Object.entries(KIND_NAMES).map(([value, name]) => [name, Number(value)])) as Record<ActionKindName, ActionKind>;

/** What an action id looks like (32 lower-case hex characters); anything else names no action. */
const ACTION_ID = /^[0-9a-f]{32}$/;

/**
 * Most ids one ReturnActions takes. An ack carries one action per kind plus
 * a batch of imports (IMPORT_BATCH, 10 by default): 100 leaves room, and
 * bounds the statement.
 */
export const RETURN_MAX_IDS = 100;

const returnedTotal = counter({
  name: "liveness_actions_returned_total",
  help: "Popped actions put back in their mailbox because the ack carrying them never reached the daemon.",
  labelNames: [] as const,
});

/** Delivery order on a beat. */
const ORDER: ActionKindName[] = ["update", "model_list", "local_skills", "local_skill_import"];

export function notFoundMessage(kind: ActionKindName): string {
  return kind === "update" ? "update not found" : "request not found";
}

/**
 * Queues an action for a runtime's daemon. Updates: one at a time per
 * runtime. Model and skill requests need the runtime online (a daemon that
 * is away would never answer). Replicas are told the runtime has mail.
 */
export async function enqueueAction(deps: LivenessDeps, req: EnqueueActionRequest): Promise<Action> {
  const kind = KIND_NAMES[req.kind];
  if (!kind) throw new InvalidArgumentError("kind must be update, model_list, local_skills or local_skill_import");
  const runtimeId = requireUuid(req.runtimeId, "runtime_id");
  const runtime = await deps.directory.resolve(runtimeId);
  const request: Record<string, unknown> = {};
  if (kind === "update") {
    if (!req.targetVersion.trim()) throw new InvalidArgumentError("target_version is required");
    request.target_version = req.targetVersion.trim();
  } else if (runtime.status !== "online") {
    throw new UnavailableError("runtime is offline");
  }
  if (kind === "local_skill_import") Object.assign(request, importRequest(req));
  try {
    const row = await repo.insertAction(deps.pool, {
      id: randomBytes(16).toString("hex"),
      runtimeId,
      workspaceId: runtime.workspaceId,
      kind,
      request,
      requestedBy: req.requestedBy ? parseUuid(req.requestedBy) : null,
    });
    deps.state.hintPending(runtimeId);
    deps.broadcast.send("pending", runtimeId);
    return toProto(row);
  } catch (error) {
    if (isUniqueViolation(error)) throw new FailedPreconditionError("an update is already in progress for this runtime");
    throw error;
  }
}

function importRequest(req: EnqueueActionRequest): Record<string, unknown> {
  if (!req.skillKey.trim()) throw new InvalidArgumentError("skill_key is required");
  const request: Record<string, unknown> = { skill_key: req.skillKey.trim() };
  if (req.name !== undefined) request.name = req.name;
  if (req.description !== undefined) request.description = req.description;
  if (req.importAction === "overwrite") {
    Object.assign(request, { action: "overwrite", target_skill_id: requireUuid(req.targetSkillId ?? "", "target_skill_id"), supports_conflict: true });
  } else if (req.importAction !== "") {
    throw new InvalidArgumentError("invalid action");
  } else if (req.supportsConflict) {
    request.supports_conflict = true;
  }
  return request;
}

/** Reads an action, applying its timeout first. */
export async function getAction(deps: LivenessDeps, actionId: string): Promise<Action> {
  const row = await load(deps, actionId);
  if (!row) throw new NotFoundError("action not found");
  return toProto(row);
}

async function load(deps: LivenessDeps, actionId: string) {
  if (!ACTION_ID.test(actionId)) return null;
  const row = await repo.findAction(deps.pool, actionId);
  if (!row || repo.TERMINAL.includes(row.status)) return row;
  // The timeout and its event commit together, or neither does.
  const expired = await deps.outbox.transaction(async (tx) => {
    const timedOut = await repo.expire(tx, row.id, row.kind);
    if (timedOut) await announce(deps, tx, [timedOut]);
    return timedOut;
  });
  return expired ?? row;
}

/**
 * A daemon's report. The action must exist, belong to the runtime named in
 * the path (compared as sent) and be of the route's kind; a terminal action
 * is left as it is. Then per kind: update running is a no-op, completed keeps
 * the output, failed the error; list and import requests complete with their
 * result or fail with the daemon's error.
 */
export async function reportResult(deps: LivenessDeps, req: ReportActionResultRequest) {
  const kind = KIND_NAMES[req.kind];
  if (!kind) throw new InvalidArgumentError("kind must be update, model_list, local_skills or local_skill_import");
  const row = await load(deps, req.actionId);
  if (!row || row.runtime_id !== req.runtimeId || row.kind !== kind) throw new NotFoundError(notFoundMessage(kind));
  if (repo.TERMINAL.includes(row.status)) return { action: toProto(row), changed: false };
  const outcome = decide(kind, req);
  if (!outcome) return { action: toProto(row), changed: false };
  const finished = await deps.outbox.transaction(async (tx) => {
    const done = await repo.finish(tx, row.id, outcome.status, outcome.result, outcome.error);
    if (done) await announce(deps, tx, [done]);
    return done;
  });
  return { action: toProto(finished ?? row), changed: finished !== null };
}

function decide(kind: ActionKindName, req: ReportActionResultRequest): { status: string; result: string | null; error: string | null } | null {
  if (kind === "update") {
    switch (req.status) {
      case "running":
        return null;
      case "completed":
        return { status: "completed", result: JSON.stringify({ output: req.output ?? "" }), error: null };
      case "failed":
        return { status: "failed", result: null, error: req.error ?? "" };
      default:
        throw new InvalidArgumentError(`invalid status: ${req.status}`);
    }
  }
  if (req.status !== "completed") return { status: "failed", result: null, error: req.error ?? "" };
  if (kind === "local_skill_import") {
    const skill = req.resultJson ? (JSON.parse(req.resultJson) as { skill?: unknown }).skill : undefined;
    if (skill === undefined || skill === null) return { status: "failed", result: null, error: "daemon returned an empty skill bundle" };
  }
  return { status: "completed", result: req.resultJson ?? "{}", error: null };
}

/**
 * Puts actions a beat popped back in the runtime's mailbox: the gateway could
 * not write the ack carrying them to the daemon's socket. An ack is thus
 * delivered at most once and its actions are not lost: the next beat pops
 * them again, on whichever replica it lands (the hint is raised here and
 * broadcast, after the rows committed, so no beat clears it before they are
 * back). Ids of other runtimes, malformed or unknown ones are skipped.
 */
export async function returnActions(deps: LivenessDeps, req: ReturnActionsRequest): Promise<ReturnActionsResponse> {
  const runtimeId = requireUuid(req.runtimeId, "runtime_id");
  if (req.actionIds.length > RETURN_MAX_IDS) throw new InvalidArgumentError("too many action_ids");
  const ids = [...new Set(req.actionIds)].filter((id) => ACTION_ID.test(id));
  if (ids.length === 0) return { returnedCount: 0, returnedActionIds: [] };
  const moved = new Set(await repo.unpop(deps.pool, runtimeId, ids));
  if (moved.size > 0) {
    deps.state.hintPending(runtimeId);
    deps.broadcast.send("pending", runtimeId);
    returnedTotal.inc(moved.size);
  }
  const returnedActionIds = ids.filter((id) => moved.has(id));
  return { returnedCount: returnedActionIds.length, returnedActionIds };
}

/**
 * Pops what is pending for the runtime into the beat's answer, kind by kind.
 * The "anything pending?" probe is bounded (a slow store only skips a kind
 * until the next beat); the pop itself is one atomic statement and is never
 * abandoned half-way. Runtimes without a hint are not probed at all.
 */
export async function deliverPending(deps: LivenessDeps, runtimeId: string, batchImports: boolean): Promise<Partial<HeartbeatResponse>> {
  const version = deps.state.pendingVersion(runtimeId);
  if (version === undefined) return {};
  const answer: Partial<HeartbeatResponse> = {};
  let probedAll = true;
  let found = false;
  for (const kind of ORDER) {
    let pending: boolean;
    try {
      pending = await bounded(repo.hasPending(deps.pool, runtimeId, kind), deps.config.PENDING_PROBE_TIMEOUT_MS);
    } catch (error) {
      probedAll = false;
      deps.log.warn({ err: error, runtime_id: runtimeId, kind }, "pending probe skipped");
      continue;
    }
    if (!pending) continue;
    found = true;
    const limit = kind === "local_skill_import" && batchImports ? deps.config.IMPORT_BATCH : 1;
    let popped: readonly repo.ActionRow[];
    try {
      popped = await repo.pop(deps.pool, runtimeId, kind, limit);
    } catch (error) {
      deps.log.warn({ err: error, runtime_id: runtimeId, kind }, "pending pop failed");
      continue;
    }
    place(answer, kind, popped.map(delivered), batchImports);
  }
  if (probedAll && !found) deps.state.clearPending(runtimeId, version);
  return answer;
}

function place(answer: Partial<HeartbeatResponse>, kind: ActionKindName, items: DeliveredAction[], batch: boolean) {
  if (items.length === 0) return;
  if (kind === "update") answer.pendingUpdate = items[0];
  else if (kind === "model_list") answer.pendingModelList = items[0];
  else if (kind === "local_skills") answer.pendingLocalSkills = items[0];
  else {
    answer.pendingLocalSkillImport = items[0];
    if (batch) answer.pendingLocalSkillImports = items;
  }
}

function delivered(row: repo.ActionRow): DeliveredAction {
  const request = JSON.parse(row.request_json) as { target_version?: string; skill_key?: string };
  if (row.kind === "update") return { id: row.id, targetVersion: request.target_version ?? "" };
  if (row.kind === "local_skill_import") return { id: row.id, skillKey: request.skill_key ?? "" };
  return { id: row.id };
}

/**
 * The most `result_json` an `action.finished` carries (64 KiB). A daemon's
 * model or skill list can be far larger, and every consumer of the stream
 * would carry it; a larger result goes out empty and consumers read it in
 * full with GetAction (the event's status still says how it ended).
 */
export const FINISHED_RESULT_MAX_BYTES = 64 * 1024;

/**
 * Records `action.finished` for actions that just became terminal, in the
 * transaction that made them so: the state change and its event commit
 * together or not at all (the outbox rule).
 */
export async function announce(deps: LivenessDeps, tx: DatabaseTransactionConnection, rows: readonly repo.ActionRow[]): Promise<void> {
  await deps.outbox.writeMany(
    tx,
    rows.map((row) => ({ type: "action.finished" as const, body: finishedEvent(row), meta: { workspaceId: row.workspace_id } })),
  );
}

function finishedEvent(row: repo.ActionRow): EventBody<"action.finished"> {
  const result = row.result_json ?? "";
  const tooLarge = Buffer.byteLength(result, "utf8") > FINISHED_RESULT_MAX_BYTES;
  return {
    actionId: row.id,
    runtimeId: row.runtime_id,
    kind: row.kind,
    status: row.status,
    resultJson: tooLarge ? "" : result,
    resultTruncated: tooLarge,
    error: row.error ?? "",
  };
}

export function toProto(row: repo.ActionRow): Action {
  return {
    id: row.id,
    runtimeId: row.runtime_id,
    kind: KIND_VALUES[row.kind],
    status: row.status,
    requestJson: row.request_json,
    resultJson: row.result_json ?? undefined,
    error: row.error ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    runStartedAt: row.run_started_at ?? undefined,
  };
}

function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe took longer than ${ms} ms`)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

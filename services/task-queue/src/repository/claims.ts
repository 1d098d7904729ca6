import { z } from "zod";
import { parseRow, sql, type CommonQueryMethods } from "@controlplane/db";
import { IN_FLIGHT, statusList, taskColumns, taskRow, type TaskRow } from "./rows.js";

/** A runtime a claim may hand work to (it passed the freshness gate). */
export interface ClaimRuntime {
  id: string;
  /** A task resolving to another workspace (or none) is flagged, not handed out. */
  workspaceId: string;
  /** Whom the task token acts for; null: the caller mints one for the agent's owner, or cancels. */
  ownerId: string | null;
}

export interface ClaimTasksRequest {
  runtimes: readonly ClaimRuntime[];
  max: number;
  /** Agents already handed a fresh task by this call (one per agent per call). */
  skipAgents: readonly string[];
  recoveryWindowMs: number;
  prepareLeaseMs: number;
  defaultLimit: number;
  /** At least `max`: the i-th task handed out gets the i-th (hash of its mat_ token). */
  tokenHashes: readonly string[];
  tokenTtlMs: number;
}

/** One task handed out by claim_tasks. */
export interface ClaimedRow {
  task: TaskRow;
  /** A lost answer handed out again, not a new dispatch. */
  redelivered: boolean;
  /** Its workspace is not its runtime's (or resolves to none): cancel it. */
  isolationFailed: boolean;
  /** The token of the same index was stored (the runtime has an owner). */
  tokenMinted: boolean;
  /** The index into tokenHashes its token hash was taken from. */
  tokenIndex: number;
  prior: { sessionId: string | null; workDir: string | null; runtimeId: string | null };
  /** The task's workspace resolved from its work items (contract §0.1). */
  resolvedWorkspaceId: string | null;
  /** The built-in skill set version current at the claim (0: none). */
  builtinSkillsVersion: number;
  /** The latest earlier run of the same work reported its session's rollout missing. */
  priorSessionResumeUnavailable: boolean;
}

export interface ClaimTasksResult {
  claims: ClaimedRow[];
  /** An agent was skipped because another claim held its lock. */
  contended: boolean;
  /** An agent handed a task had room and queued work for another (left for the next call). */
  moreWork: boolean;
}

/** A task handed out, parsed once: the task's columns and what the claim adds. */
const claimedTask = taskRow.extend({
  redelivered: z.boolean(),
  isolation_failed: z.boolean(),
  token_minted: z.boolean(),
  prior_session_id: z.string().nullable(),
  prior_work_dir: z.string().nullable(),
  prior_runtime_id: z.string().nullable(),
  resolved_workspace_id: z.string().nullable(),
  /** bigint: read as a decimal string. */
  builtin_skills_version: z.string().nullable(),
  prior_session_resume_unavailable: z.boolean(),
});
const callReport = z.object({ contended: z.boolean(), more_work: z.boolean() });

const interval = (ms: number) => sql.fragment`make_interval(secs => ${ms / 1000})`;

/**
 * Runs claim_tasks (migration 005): the whole claim, all of its writes, in
 * one statement. Rows come back in claim order (re-deliveries first); the
 * function's last row, with no task, reports the call. Each row is parsed
 * here, once, by what it is (a task handed out, or the report).
 */
export async function claimTasks(db: CommonQueryMethods, r: ClaimTasksRequest): Promise<ClaimTasksResult> {
  const rows: ReadonlyArray<Record<string, unknown>> = await db.any(sql.unsafe`
    SELECT ${CLAIM_COLUMNS}
    FROM taskqueue.claim_tasks(
      ${sql.array(
        r.runtimes.map((x) => x.id),
        "uuid",
      )},
      ${sql.array(
        r.runtimes.map((x) => x.workspaceId),
        "uuid",
      )},
      ${sql.array(
        r.runtimes.map((x) => x.ownerId),
        "uuid",
      )},
      ${r.max},
      ${sql.array([...r.skipAgents], "uuid")},
      ${interval(r.recoveryWindowMs)},
      ${interval(r.prepareLeaseMs)},
      ${r.defaultLimit},
      ${sql.array([...r.tokenHashes], "text")},
      ${interval(r.tokenTtlMs)}) c`);
  return callResult(rows);
}

/** One runtime's claim of at most one task, skipping no agent (see claimEach). */
export interface SingleClaim {
  runtime: ClaimRuntime;
  /** The hash of the mat_ token the task gets. */
  tokenHash: string;
}

export type ClaimSettings = Pick<ClaimTasksRequest, "recoveryWindowMs" | "prepareLeaseMs" | "defaultLimit" | "tokenTtlMs">;

/**
 * claim_tasks once per claim, in one statement: as if the calls ran one
 * after the other in one transaction, each seeing what the earlier ones
 * handed out (a volatile function's statements see the transaction's
 * earlier writes), so none hands out a task another took. Each result is
 * what claimTasks would have answered for that claim alone, in order.
 */
export async function claimEach(db: CommonQueryMethods, claims: readonly SingleClaim[], s: ClaimSettings): Promise<ClaimTasksResult[]> {
  const rows: ReadonlyArray<Record<string, unknown>> = await db.any(sql.unsafe`
    SELECT k.ord::int AS call, ${CLAIM_COLUMNS}
    FROM unnest(${sql.array(
      claims.map((c) => c.runtime.id),
      "uuid",
    )}, ${sql.array(
      claims.map((c) => c.runtime.workspaceId),
      "uuid",
    )}, ${sql.array(
      claims.map((c) => c.runtime.ownerId),
      "uuid",
    )}, ${sql.array(
      claims.map((c) => c.tokenHash),
      "text",
    )}) WITH ORDINALITY AS k(runtime_id, workspace_id, owner_id, token_hash, ord)
    CROSS JOIN LATERAL taskqueue.claim_tasks(
      ARRAY[k.runtime_id], ARRAY[k.workspace_id], ARRAY[k.owner_id], 1, '{}'::uuid[],
      ${interval(s.recoveryWindowMs)}, ${interval(s.prepareLeaseMs)}, ${s.defaultLimit},
      ARRAY[k.token_hash], ${interval(s.tokenTtlMs)}) c`);
  const byCall = claims.map((): Array<Record<string, unknown>> => []);
  for (const row of rows) byCall[(row.call as number) - 1]?.push(row);
  return byCall.map(callResult);
}

/** What a call of claim_tasks returns, as columns: the task's, and what the claim adds. */
const CLAIM_COLUMNS = sql.fragment`
  (c.claimed).id AS claimed_id, c.redelivered, c.isolation_failed, c.token_minted,
  c.prior_session_id, c.prior_work_dir, c.prior_runtime_id, c.resolved_workspace_id,
  c.builtin_skills_version::text AS builtin_skills_version, c.prior_session_resume_unavailable, c.contended, c.more_work,
  (c.claimed).*, (c.claimed).result::text AS result_json`;

/**
 * The rows of one call of claim_tasks: one per task in claim order (re-
 * deliveries first), and the report, the one row with no task (its last).
 * Each row is parsed here, once, by what it is.
 */
function callResult(rows: ReadonlyArray<Record<string, unknown>>): ClaimTasksResult {
  const report = parseRow(
    callReport,
    rows.find((raw) => raw.claimed_id === null),
  );
  const claims = rows
    .filter((raw) => raw.claimed_id !== null)
    .map((raw, index): ClaimedRow => {
      const {
        redelivered,
        isolation_failed,
        token_minted,
        prior_session_id,
        prior_work_dir,
        prior_runtime_id,
        resolved_workspace_id,
        builtin_skills_version,
        prior_session_resume_unavailable,
        ...task
      } = parseRow(claimedTask, raw);
      return {
        task,
        redelivered,
        isolationFailed: isolation_failed,
        tokenMinted: token_minted,
        tokenIndex: index,
        prior: { sessionId: prior_session_id, workDir: prior_work_dir, runtimeId: prior_runtime_id },
        resolvedWorkspaceId: resolved_workspace_id,
        builtinSkillsVersion: Number(builtin_skills_version ?? 0),
        priorSessionResumeUnavailable: prior_session_resume_unavailable,
      };
    });
  return { claims, contended: report.contended, moreWork: report.more_work };
}

/**
 * The prepare lease of a task the runtime is preparing (dispatched or
 * waiting, never started) moves to now + `leaseMs`. Null when the task is in
 * no such state on that runtime.
 */
export function extendPrepareLease(db: CommonQueryMethods, taskId: string, runtimeId: string, leaseMs: number) {
  return db.maybeOne(sql.type(taskRow)`
    UPDATE taskqueue.task
    SET prepare_lease_expires_at = now() + ${interval(leaseMs)}, updated_at = now()
    WHERE id = ${taskId} AND runtime_id = ${runtimeId} AND started_at IS NULL
      AND status = ANY(${statusList(IN_FLIGHT.filter((s) => s !== "running"))})
    RETURNING ${taskColumns}`);
}

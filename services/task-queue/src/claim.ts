import { generateToken, hashToken, TOKEN_PREFIX } from "@controlplane/auth";
import { CallCancelledError, FailedPreconditionError, hasCode, InternalError, InvalidArgumentError, status } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import type { Agent, AgentSkill, Runtime } from "@controlplane/proto/registry/v1/registry";
import type { ClaimedTask } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { requireTask, requireUuid } from "./ids.js";
import { cancelTask, failTask } from "./lifecycle.js";
import * as claims from "./repository/claims.js";
import type { TaskRow } from "./repository/rows.js";
import * as tasks from "./repository/tasks.js";
import { taskRef, taskToProto } from "./task-shape.js";
import { mintTaskToken } from "./tokens.js";

/** Rounds of a claim when other claims held agents' locks for a moment. */
const CONTENDED_RETRIES = 20;
/** In-flight tasks an agent may hold when the registry never told us its limit. */
const DEFAULT_AGENT_LIMIT = 6;
/** Most tasks one batch claim hands out (the contract's cap). */
export const MAX_CLAIM_TASKS = 32;
/** Most runtime ids one batch claim names (a daemon's runtimes; the socket's bound). */
export const MAX_CLAIM_RUNTIMES = 1_000;
/**
 * Time a waiting claim keeps, before its call's deadline, to run the claim
 * statement and build its answer: the wait ends this long before the
 * deadline, so the caller gets an answer instead of DEADLINE_EXCEEDED.
 */
export const CLAIM_ANSWER_MARGIN_MS = 1_000;

/** What a task whose agent is gone is failed with (contract §13.3). */
export const AGENT_GONE = {
  answer: "task agent no longer exists",
  error: "Task identity is invalid: the assigned agent no longer exists.",
};
/** ... and a task whose agent read back as another one. */
export const AGENT_MISMATCH = {
  answer: "task response agent identity mismatch",
  error: "Task identity is invalid: the agent read for the task is not the task's agent.",
};
const INVALID_TASK_IDENTITY = "invalid_task_identity";

/** The caller of a claim, as far as the claim cares: is it still there, and until when. */
export interface Claimer {
  signal?: AbortSignal;
  deadline?: Date;
}

/** A task handed out by a claim round, with its token in clear (shown once). */
type Claim = claims.ClaimedRow & { token: string };

interface Claimed {
  answer: ClaimedTask;
  row: TaskRow;
  redelivered: boolean;
}

/**
 * Hands the runtime its next task. Without a wait it answers at once (the
 * contract). With `waitMs` it listens for wake-ups first, then looks, and
 * looks again on each wake-up until a task comes, the wait (capped, and
 * ended before the call's deadline) runs out, or the caller goes away. A
 * task claimed for a caller that went away meanwhile is put back.
 */
export async function claimTask(deps: TaskQueueDeps, runtimeId: string, waitMs: number, claimer: Claimer = {}): Promise<ClaimedTask | undefined> {
  const id = requireUuid(runtimeId, "runtime_id");
  // Gone before we began (e.g. it waited out a restart): take nothing.
  claimer.signal?.throwIfAborted();
  const runtime = await deps.reads.runtimes.get(id);
  const wait = waitBudget(waitMs, deps.config.CLAIM_LONG_POLL_MAX_MS, claimer.deadline);
  const claimed = wait === 0 ? await claimOnce(deps, runtime) : await claimWaiting(deps, runtime, wait, claimer.signal);
  if (!claimed) return undefined;
  if (claimer.signal?.aborted) {
    await putBack(deps, claimed.row.id, runtime.id);
    throw new CallCancelledError("the claimer went away before its answer left; the task was put back");
  }
  // A re-delivery of a lost answer is not a new dispatch.
  if (!claimed.redelivered) deps.activity.publish("task.dispatched", { task: taskRef(claimed.row) }, claimed.row.workspace_id);
  return claimed.answer;
}

export interface ClaimTasksRequest {
  daemonId: string;
  runtimeIds: readonly string[];
  maxTasks: number;
}

/**
 * The batch claim (contract §13.2): up to `maxTasks` (at most 32) tasks
 * across the daemon's runtimes, in one statement. Runtimes that are not
 * UUIDs, do not exist, belong to another daemon, or are not online and
 * fresh are skipped. A task that cannot be answered is settled (failed,
 * cancelled or put back, as the per-runtime claim would) and left out; the
 * rest is answered. When the one-claim-per-agent rule left work an agent had
 * room for, and the daemon still has free slots, its runtimes are woken so
 * it asks again at once.
 */
export async function claimTasks(deps: TaskQueueDeps, request: ClaimTasksRequest, claimer: Claimer = {}): Promise<ClaimedTask[]> {
  if (!request.daemonId) throw new InvalidArgumentError("daemon_id is required");
  if (request.runtimeIds.length > MAX_CLAIM_RUNTIMES) throw new InvalidArgumentError("too many runtime_ids");
  const max = Math.min(request.maxTasks, MAX_CLAIM_TASKS);
  if (max <= 0) return [];
  claimer.signal?.throwIfAborted();
  const ids = [...new Set(request.runtimeIds.map(parseUuid).filter((id): id is string => id !== null))];
  const runtimes = (await loadRuntimes(deps, ids)).filter((r) => !r.daemonId || r.daemonId === request.daemonId);
  const fresh = (await Promise.all(runtimes.map(async (r) => ((await deps.freshness.fresh(r)) ? r : undefined)))).filter((r): r is Runtime => r !== undefined);
  if (fresh.length === 0) return [];

  const round = await claimRounds(deps, fresh, max);
  const byId = new Map(fresh.map((r) => [r.id, r]));
  const settled = await Promise.all(
    round.claims.map(async (claim) => {
      try {
        return await answer(deps, byId.get(claim.task.runtime_id)!, claim);
      } catch (error) {
        // Settled by `answer` (failed, cancelled or put back): only left out.
        deps.log.warn({ err: error, task_id: claim.task.id, runtime_id: claim.task.runtime_id }, "claimed task left out of the batch answer");
        return undefined;
      }
    }),
  );
  const answered = round.claims.flatMap((claim, i) => (settled[i] ? [{ claim, answer: settled[i] }] : []));
  if (claimer.signal?.aborted) {
    await Promise.all(answered.map(({ claim }) => putBack(deps, claim.task.id, claim.task.runtime_id)));
    throw new CallCancelledError("the claimer went away before its answer left; the tasks were put back");
  }
  for (const { claim } of answered) {
    if (!claim.redelivered) deps.activity.publish("task.dispatched", { task: taskRef(claim.task) }, claim.task.workspace_id);
  }
  if (round.moreWork && answered.length < max) {
    for (const runtimeId of new Set(round.claims.filter((c) => !c.redelivered).map((c) => c.task.runtime_id))) deps.wake.notify(runtimeId);
  }
  return answered.map(({ answer }) => answer);
}

/** The runtimes that exist among `ids` (a missing one is skipped); any other failure fails the claim. */
async function loadRuntimes(deps: TaskQueueDeps, ids: readonly string[]): Promise<Runtime[]> {
  const found = await Promise.all(
    ids.map(async (id) => {
      try {
        return await deps.reads.runtimes.get(id);
      } catch (error) {
        if (hasCode(error, status.NOT_FOUND)) return undefined;
        deps.log.warn({ err: error, runtime_id: id }, "runtime read failed at batch claim");
        throw new InternalError("failed to load runtimes");
      }
    }),
  );
  return found.filter((r): r is Runtime => r !== undefined);
}

/** How long a claim may wait: what was asked, capped, and ending before the call's deadline. */
export function waitBudget(askedMs: number, capMs: number, deadline: Date | undefined, now = Date.now()): number {
  const asked = Math.min(Math.max(askedMs, 0), capMs);
  if (!deadline) return asked;
  return Math.max(0, Math.min(asked, deadline.getTime() - now - CLAIM_ANSWER_MARGIN_MS));
}

async function claimWaiting(deps: TaskQueueDeps, runtime: Runtime, wait: number, signal: AbortSignal | undefined) {
  const waiter = deps.wake.listen(runtime.id);
  try {
    const deadline = Date.now() + wait;
    for (;;) {
      if (signal?.aborted) return undefined;
      const claimed = await claimOnce(deps, runtime);
      if (claimed) return claimed;
      const left = deadline - Date.now();
      if (left <= 0 || !(await waiter.next(left, signal))) return undefined;
    }
  } finally {
    waiter.close();
  }
}

/** One look for the runtime's next task: the batch claim of this runtime alone, for one task. */
async function claimOnce(deps: TaskQueueDeps, runtime: Runtime): Promise<Claimed | undefined> {
  // An offline or silent runtime is handed nothing, not even a re-delivery.
  if (!(await deps.freshness.fresh(runtime))) return undefined;
  const {
    claims: [claim],
  } = await claimRounds(deps, [runtime], 1);
  if (!claim) return undefined;
  return { answer: await answer(deps, runtime, claim), row: claim.task, redelivered: claim.redelivered };
}

/**
 * Runs claim_tasks until `max` tasks are out, nothing more is to be had, or
 * only agents locked by other claims are left (tried again, a few times,
 * after a short pause when a round got nothing). Agents handed a task are
 * not tried again in a later round: one fresh claim per agent per call.
 * A round that fails after an earlier one claimed answers what was claimed.
 */
async function claimRounds(deps: TaskQueueDeps, runtimes: readonly Runtime[], max: number): Promise<{ claims: Claim[]; moreWork: boolean }> {
  const { config } = deps;
  const claimRuntimes = runtimes.map((r) => ({ id: r.id, workspaceId: r.workspaceId, ownerId: r.ownerId ?? null }));
  const out: Claim[] = [];
  const skipAgents: string[] = [];
  let moreWork = false;
  for (let attempt = 0; ; attempt++) {
    const want = max - out.length;
    // Tokens are made up front; each task's hash is stored by the claim itself.
    const tokens = taskTokens(want);
    let round: claims.ClaimTasksResult;
    try {
      const [only, token] = [claimRuntimes[0], tokens[0]];
      round =
        only && token && claimRuntimes.length === 1 && want === 1 && skipAgents.length === 0
          ? await claimAlongsideOthers(deps, { runtime: only, tokenHash: hashToken(token) })
          : await claims.claimTasks(deps.pool, {
              runtimes: claimRuntimes,
              max: want,
              skipAgents,
              ...claimSettings(config),
              tokenHashes: tokens.map(hashToken),
            });
    } catch (error) {
      if (out.length === 0) throw error;
      deps.log.warn({ err: error, claimed: out.length }, "a further claim round failed; what was claimed is answered");
      break;
    }
    for (const claim of round.claims) {
      out.push({ ...claim, token: tokens[claim.tokenIndex]! });
      if (!claim.redelivered) skipAgents.push(claim.task.agent_id);
    }
    moreWork ||= round.moreWork;
    if (!round.contended || out.length >= max || attempt >= CONTENDED_RETRIES) break;
    if (round.claims.length === 0) await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 4));
  }
  return { claims: out, moreWork };
}

/** One runtime's claim of one task, in the statement of the claims queued up with it. */
async function claimAlongsideOthers(deps: TaskQueueDeps, claim: claims.SingleClaim): Promise<claims.ClaimTasksResult> {
  const result = await deps.claims.get(claim);
  if (!result) throw new InternalError("a grouped claim came back without its result");
  return result;
}

/** What every claim_tasks call of this service is given besides its runtimes. */
export function claimSettings(config: TaskQueueDeps["config"]): claims.ClaimSettings {
  return {
    recoveryWindowMs: config.CLAIM_RECOVERY_WINDOW_MS,
    prepareLeaseMs: config.PREPARE_LEASE_MS,
    defaultLimit: DEFAULT_AGENT_LIMIT,
    tokenTtlMs: config.TASK_TOKEN_TTL_MS,
  };
}

/** `count` fresh mat_ tokens. */
function taskTokens(count: number): string[] {
  return Array.from({ length: count }, () => generateToken(TOKEN_PREFIX.task));
}

/**
 * Releases a claim whose answer cannot be delivered. Best effort: if it
 * fails, the task is handed out again after the recovery window.
 */
export async function putBack(deps: TaskQueueDeps, taskId: string, runtimeId: string): Promise<boolean> {
  try {
    const released = await tasks.releaseClaim(deps.pool, taskId, runtimeId);
    if (released) deps.wake.notify(released.runtime_id, released.id);
    return released !== null;
  } catch (error) {
    deps.log.warn({ err: error, task_id: taskId }, "claimed task could not be put back; it is re-delivered after the recovery window");
    return false;
  }
}

/** ReleaseClaim: a caller that got a task it cannot use gives it back. */
export async function releaseClaim(deps: TaskQueueDeps, taskId: string, runtimeId: string): Promise<boolean> {
  const released = await tasks.releaseClaim(deps.pool, requireUuid(taskId, "task_id"), requireUuid(runtimeId, "runtime_id"));
  if (released) deps.wake.notify(released.runtime_id, released.id);
  return released !== null;
}

/**
 * ExtendPrepareLease: the runtime is still preparing the task (dispatched
 * or waiting, never started): its lease runs PREPARE_LEASE_MS from now.
 */
export async function extendPrepareLease(deps: TaskQueueDeps, runtimeId: string, taskId: string): Promise<TaskRow> {
  const runtime = requireUuid(runtimeId, "runtime_id");
  const task = requireUuid(taskId, "task_id");
  const row = await claims.extendPrepareLease(deps.pool, task, runtime, deps.config.PREPARE_LEASE_MS);
  if (row) return row;
  await requireTask(deps.pool, task);
  throw new InvalidArgumentError("extend task prepare lease: no rows in result set");
}

/**
 * Builds the claim answer: fresh agent data (its skills followed by the
 * built-in ones), workspace repos and context, the resume pointer, the task
 * token. A task that cannot be answered is settled before the error goes
 * out (contract §13.3): failed invalid_task_identity when its agent is gone
 * (or reads back as another); cancelled when it fails isolation or has
 * nobody to act for; put back when a read failed for a moment.
 */
async function answer(deps: TaskQueueDeps, runtime: Runtime, claim: Claim): Promise<ClaimedTask> {
  const row = claim.task;
  if (claim.isolationFailed) {
    await cancelTask(deps, row.id);
    throw new InternalError("task workspace isolation check failed");
  }
  const [agentRead, workspace] = await Promise.all([
    deps.reads.agents.get(row.agent_id).then(
      (agent) => ({ agent }),
      (error: unknown) => ({ error }),
    ),
    deps.reads.workspaces.get(row.workspace_id).catch(() => undefined),
  ]);
  const agent = await claimedAgent(deps, runtime, row, agentRead);
  const authToken = claim.tokenMinted ? claim.token : await tokenForAgentOwner(deps, runtime, claim, agent);
  const builtins = await builtinSkills(deps, runtime, claim);
  const task = taskToProto(row);
  deps.knownTasks.remember(row);
  const repos = task.context?.reposJson ?? (workspace && workspace.repos.length > 0 ? reposJson(workspace.repos) : undefined);
  return {
    task,
    agent: withBuiltinSkills(withInstructionsSuffix(agent, task.context?.instructionsSuffix), builtins),
    reposJson: repos,
    workspaceContext: workspace?.context,
    // The session only carries over on the same runtime; the work dir whenever there is one.
    priorSessionId: claim.prior.runtimeId === row.runtime_id ? (claim.prior.sessionId ?? undefined) : undefined,
    priorWorkDir: claim.prior.workDir ?? undefined,
    priorSessionResumeUnavailable: claim.priorSessionResumeUnavailable,
    authToken,
    // Passed the isolation check: the runtime's workspace.
    workspaceId: claim.resolvedWorkspaceId ?? row.workspace_id,
  };
}

/**
 * The task's agent, which every answer carries (today's daemon fails a task
 * without one). Gone from the registry: the task is failed
 * invalid_task_identity (FAILED_PRECONDITION, the contract's 409). A read
 * that failed for a moment: the task is put back (INTERNAL "failed to load
 * task agent").
 */
async function claimedAgent(deps: TaskQueueDeps, runtime: Runtime, row: TaskRow, read: { agent: Agent } | { error: unknown }): Promise<Agent> {
  if ("error" in read) {
    if (hasCode(read.error, status.NOT_FOUND)) {
      await rejectBeforeLaunch(deps, runtime, row, AGENT_GONE.error);
      throw new FailedPreconditionError(AGENT_GONE.answer);
    }
    deps.log.warn({ err: read.error, task_id: row.id }, "agent read failed at claim; the task is put back");
    await putBack(deps, row.id, runtime.id);
    throw new InternalError("failed to load task agent");
  }
  if (read.agent.id !== row.agent_id) {
    await rejectBeforeLaunch(deps, runtime, row, AGENT_MISMATCH.error);
    throw new FailedPreconditionError(AGENT_MISMATCH.answer);
  }
  return read.agent;
}

/** Fails a claimed task that must never run; if even that fails, it is put back. */
async function rejectBeforeLaunch(deps: TaskQueueDeps, runtime: Runtime, row: TaskRow, error: string): Promise<void> {
  try {
    await failTask(deps, row.id, { error, failureReason: INVALID_TASK_IDENTITY });
  } catch (failure) {
    deps.log.error({ err: failure, task_id: row.id }, "a task rejected before launch could not be failed; it is put back");
    await putBack(deps, row.id, runtime.id);
    throw new InternalError("failed to settle a task rejected before launch");
  }
}

/**
 * The built-in skill set current at the claim. Should it not be readable,
 * the task is put back (not left dispatched until the recovery window) and
 * the claim answered INTERNAL.
 */
async function builtinSkills(deps: TaskQueueDeps, runtime: Runtime, claim: Claim): Promise<AgentSkill[]> {
  try {
    return await deps.builtinSkills.forVersion(claim.builtinSkillsVersion);
  } catch (error) {
    deps.log.error({ err: error, task_id: claim.task.id }, "built-in skills could not be read; the claim is put back");
    await putBack(deps, claim.task.id, runtime.id);
    throw new InternalError("failed to load built-in skills");
  }
}

/** The agent's own skills, then the platform's built-in ones (the original's order). */
function withBuiltinSkills(agent: Agent, builtins: AgentSkill[]): Agent {
  return builtins.length === 0 ? agent : { ...agent, skills: [...agent.skills, ...builtins] };
}

/**
 * A runtime registered with a daemon token has no owner: the agent then acts
 * for its own owner. With neither, there is nobody to act for: the task is
 * cancelled. A token that cannot be stored puts the task back.
 */
async function tokenForAgentOwner(deps: TaskQueueDeps, runtime: Runtime, claim: Claim, agent: Agent): Promise<string> {
  const row = claim.task;
  if (!agent.ownerId) {
    await cancelTask(deps, row.id);
    throw new InternalError("runtime owner required to mint task token");
  }
  try {
    return await mintTaskToken(
      deps.pool,
      { taskId: row.id, agentId: row.agent_id, workspaceId: claim.resolvedWorkspaceId ?? row.workspace_id, userId: agent.ownerId },
      deps.config.TASK_TOKEN_TTL_MS,
    );
  } catch (error) {
    deps.log.error({ err: error, task_id: row.id }, "task token insert failed; the task is put back");
    await putBack(deps, row.id, runtime.id);
    throw new InternalError("failed to finalize task claim");
  }
}

function reposJson(repos: Array<{ url: string; description: string }>): string {
  return JSON.stringify(repos.map((r) => (r.description ? { url: r.url, description: r.description } : { url: r.url })));
}

/** A briefing the enqueuer attached goes after the agent's instructions, separated by a blank line. */
function withInstructionsSuffix(agent: Agent, suffix: string | undefined): Agent {
  if (!suffix) return agent;
  return { ...agent, instructions: agent.instructions ? `${agent.instructions}\n\n${suffix}` : suffix };
}

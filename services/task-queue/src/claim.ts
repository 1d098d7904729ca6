import { generateToken, hashToken, TOKEN_PREFIX } from "@controlplane/auth";
import { CallCancelledError, InternalError } from "@controlplane/grpc";
import type { Agent, AgentSkill, Runtime } from "@controlplane/proto/registry/v1/registry";
import type { ClaimedTask } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { publishActivity } from "./activity.js";
import type { TaskQueueDeps } from "./deps.js";
import { requireUuid } from "./ids.js";
import { cancelTask } from "./lifecycle.js";
import * as tasks from "./repository/tasks.js";
import { taskRef, taskToProto } from "./task-shape.js";
import { mintTaskToken } from "./tokens.js";

/** Attempts when another claim held an agent's lock for a moment. */
const CONTENDED_RETRIES = 20;
/** In-flight tasks an agent may hold when the registry never told us its limit. */
const DEFAULT_AGENT_LIMIT = 6;
/**
 * Time a waiting claim keeps, before its call's deadline, to run the claim
 * statement and build its answer: the wait ends this long before the
 * deadline, so the caller gets an answer instead of DEADLINE_EXCEEDED.
 */
export const CLAIM_ANSWER_MARGIN_MS = 1_000;

type Claim = Awaited<ReturnType<typeof tasks.claim>> & { task: NonNullable<Awaited<ReturnType<typeof tasks.claim>>["task"]> };

/** The caller of a claim, as far as the claim cares: is it still there, and until when. */
export interface Claimer {
  signal?: AbortSignal;
  deadline?: Date;
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
  if (!claimed.redelivered) publishActivity(deps, "task.dispatched", { task: taskRef(claimed.row) }, claimed.row.workspace_id);
  return claimed.answer;
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

interface Claimed {
  answer: ClaimedTask;
  row: Claim["task"];
  redelivered: boolean;
}

async function claimOnce(deps: TaskQueueDeps, runtime: Runtime): Promise<Claimed | undefined> {
  for (let attempt = 0; ; attempt++) {
    // The token is made up front and stored (hashed) by the claim itself.
    const token = generateToken(TOKEN_PREFIX.task);
    const result = await tasks.claim(deps.pool, {
      runtimeId: runtime.id,
      recoveryWindowMs: deps.config.CLAIM_RECOVERY_WINDOW_MS,
      defaultLimit: DEFAULT_AGENT_LIMIT,
      runtimeWorkspaceId: runtime.workspaceId,
      tokenHash: hashToken(token),
      tokenUserId: runtime.ownerId ?? null,
      tokenTtlMs: deps.config.TASK_TOKEN_TTL_MS,
    });
    if (result.task) {
      const claim = result as Claim;
      const built = await answer(deps, runtime, claim, token);
      return { answer: built, row: claim.task, redelivered: claim.redelivered };
    }
    if (!result.contended || attempt >= CONTENDED_RETRIES) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 4));
  }
}

/**
 * Builds the claim answer: fresh agent data (its skills followed by the
 * built-in ones), workspace repos and context, the resume pointer, the task
 * token. A task that fails isolation (its work item's workspace is not the
 * runtime's), or has nobody to act for, is cancelled and answered with the
 * contract's 500.
 */
async function answer(deps: TaskQueueDeps, runtime: Runtime, claim: Claim, token: string): Promise<ClaimedTask> {
  const row = claim.task;
  if (claim.isolationFailed) {
    await cancelTask(deps, row.id);
    throw new InternalError("task workspace isolation check failed");
  }
  const [agent, workspace] = await Promise.all([
    deps.reads.agents.get(row.agent_id).catch((error: unknown) => {
      deps.log.warn({ err: error, task_id: row.id }, "agent read failed; claim answered without agent");
      return undefined;
    }),
    deps.reads.workspaces.get(row.workspace_id).catch(() => undefined),
  ]);
  let authToken = token;
  if (!claim.tokenMinted) authToken = await tokenForAgentOwner(deps, row, agent);
  const builtins = agent ? await builtinSkills(deps, runtime, claim) : [];
  const task = taskToProto(row);
  const repos = task.context?.reposJson ?? (workspace && workspace.repos.length > 0 ? reposJson(workspace.repos) : undefined);
  return {
    task,
    agent: agent ? withBuiltinSkills(withInstructionsSuffix(agent, task.context?.instructionsSuffix), builtins) : undefined,
    reposJson: repos,
    workspaceContext: workspace?.context,
    // The session only carries over on the same runtime; the work dir whenever there is one.
    priorSessionId: claim.prior.runtimeId === row.runtime_id ? (claim.prior.sessionId ?? undefined) : undefined,
    priorWorkDir: claim.prior.workDir ?? undefined,
    authToken,
    // Passed the isolation check: the runtime's workspace.
    workspaceId: claim.resolvedWorkspaceId ?? row.workspace_id,
  };
}

/**
 * The built-in skill set current at the claim. Should it not be readable,
 * the task is put back (not left dispatched until the recovery window) and
 * the claim answered INTERNAL.
 */
async function builtinSkills(deps: TaskQueueDeps, runtime: Runtime, claim: Claim): Promise<AgentSkill[]> {
  try {
    return await deps.builtinSkills.forVersion(claim.builtinSkillsVersion ?? 0);
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
 * for its own owner. With neither, there is nobody to act for.
 */
async function tokenForAgentOwner(deps: TaskQueueDeps, row: Claim["task"], agent: Agent | undefined): Promise<string> {
  if (!agent?.ownerId) {
    await cancelTask(deps, row.id);
    throw new InternalError("runtime owner required to mint task token");
  }
  try {
    return await mintTaskToken(
      deps.pool,
      { taskId: row.id, agentId: row.agent_id, workspaceId: row.workspace_id, userId: agent.ownerId },
      deps.config.TASK_TOKEN_TTL_MS,
    );
  } catch (error) {
    // The task stays dispatched and is handed out again after the recovery window.
    deps.log.error({ err: error, task_id: row.id }, "task token insert failed");
    throw new InternalError("failed to persist task token");
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

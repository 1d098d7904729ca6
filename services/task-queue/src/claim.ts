import { generateToken, hashToken, TOKEN_PREFIX } from "@controlplane/auth";
import { InternalError } from "@controlplane/grpc";
import type { Agent, Runtime } from "@controlplane/proto/registry/v1/registry";
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

type Claim = Awaited<ReturnType<typeof tasks.claim>> & { task: NonNullable<Awaited<ReturnType<typeof tasks.claim>>["task"]> };

/**
 * Hands the runtime its next task. Without a wait it answers at once (the
 * contract). With `waitMs` it listens for wake-ups first, then looks, and
 * looks again on each wake-up until a task comes or the wait (capped) ends.
 */
export async function claimTask(deps: TaskQueueDeps, runtimeId: string, waitMs: number): Promise<ClaimedTask | undefined> {
  const id = requireUuid(runtimeId, "runtime_id");
  const runtime = await deps.reads.runtimes.get(id);
  const wait = Math.min(Math.max(waitMs, 0), deps.config.CLAIM_LONG_POLL_MAX_MS);
  if (wait === 0) return claimOnce(deps, runtime);
  const waiter = deps.wake.listen(id);
  try {
    const deadline = Date.now() + wait;
    for (;;) {
      const claimed = await claimOnce(deps, runtime);
      if (claimed) return claimed;
      const left = deadline - Date.now();
      if (left <= 0 || !(await waiter.next(left))) return undefined;
    }
  } finally {
    waiter.close();
  }
}

async function claimOnce(deps: TaskQueueDeps, runtime: Runtime): Promise<ClaimedTask | undefined> {
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
    if (result.task) return answer(deps, runtime, result as Claim, token);
    if (!result.contended || attempt >= CONTENDED_RETRIES) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 4));
  }
}

/**
 * Builds the claim answer: fresh agent data, workspace repos and context, the
 * resume pointer, the task token. A task that fails isolation, or has nobody
 * to act for, is cancelled and answered with the contract's 500.
 */
async function answer(deps: TaskQueueDeps, runtime: Runtime, claim: Claim, token: string): Promise<ClaimedTask> {
  const row = claim.task;
  if (claim.isolationFailed) {
    await cancelTask(deps, row.id);
    throw new InternalError("task workspace isolation check failed");
  }
  // A re-delivery of a lost answer is not a new dispatch.
  if (!claim.redelivered) publishActivity(deps, "task.dispatched", { task: taskRef(row) }, row.workspace_id);
  const [agent, workspace] = await Promise.all([
    deps.reads.agents.get(row.agent_id).catch((error: unknown) => {
      deps.log.warn({ err: error, task_id: row.id }, "agent read failed; claim answered without agent");
      return undefined;
    }),
    deps.reads.workspaces.get(row.workspace_id).catch(() => undefined),
  ]);
  let authToken = token;
  if (!claim.tokenMinted) authToken = await tokenForAgentOwner(deps, row, agent);
  const task = taskToProto(row);
  const repos = task.context?.reposJson ?? (workspace && workspace.repos.length > 0 ? reposJson(workspace.repos) : undefined);
  return {
    task,
    agent: agent ? withInstructionsSuffix(agent, task.context?.instructionsSuffix) : undefined,
    reposJson: repos,
    workspaceContext: workspace?.context,
    // The session only carries over on the same runtime; the work dir whenever there is one.
    priorSessionId: claim.prior.runtimeId === row.runtime_id ? (claim.prior.sessionId ?? undefined) : undefined,
    priorWorkDir: claim.prior.workDir ?? undefined,
    authToken,
    workspaceId: row.workspace_id,
  };
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

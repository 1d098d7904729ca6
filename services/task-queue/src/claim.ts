import { InternalError } from "@controlplane/grpc";
import type { Agent, Runtime } from "@controlplane/proto/registry/v1/registry";
import type { ClaimedTask } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { TaskQueueDeps } from "./deps.js";
import { requireUuid } from "./ids.js";
import { cancelTask } from "./lifecycle.js";
import type { TaskRow } from "./repository/rows.js";
import * as tasks from "./repository/tasks.js";
import { taskRef, taskToProto } from "./task-shape.js";
import { mintTaskToken } from "./tokens.js";

/** Attempts when another claim held an agent's lock for a moment. */
const CONTENDED_RETRIES = 20;

/**
 * Hands the runtime its next task. Without a wait it answers at once (the
 * contract). With `waitMs` it listens for wake-ups first, then looks, and
 * looks again on each wake-up until a task comes or the wait (capped) ends.
 */
export async function claimTask(deps: TaskQueueDeps, runtimeId: string, waitMs: number): Promise<ClaimedTask | undefined> {
  const id = requireUuid(runtimeId, "runtime_id");
  const { runtime } = await deps.registry.getRuntime({ runtimeId: id });
  const wait = Math.min(Math.max(waitMs, 0), deps.config.CLAIM_LONG_POLL_MAX_MS);
  if (wait === 0) return claimOnce(deps, runtime!);
  const waiter = deps.wake.listen(id);
  try {
    const deadline = Date.now() + wait;
    for (;;) {
      const claimed = await claimOnce(deps, runtime!);
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
    const { task, contended } = await deps.outbox.transaction(async (tx) => {
      const result = await tasks.claim(tx, runtime.id, deps.config.CLAIM_RECOVERY_WINDOW_MS, 6);
      // A re-delivery of a lost answer is not a new dispatch.
      if (result.task && !result.redelivered) {
        await deps.outbox.write(tx, "task.dispatched", { task: taskRef(result.task) }, { workspaceId: result.task.workspace_id });
      }
      return result;
    });
    if (task) return answer(deps, runtime, task);
    if (!contended || attempt >= CONTENDED_RETRIES) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 4));
  }
}

/**
 * Builds the claim answer: workspace isolation, fresh agent data, workspace
 * repos and context, the resume pointer, and the task token. A task that
 * fails isolation or has nobody to act for is cancelled.
 */
async function answer(deps: TaskQueueDeps, runtime: Runtime, row: TaskRow): Promise<ClaimedTask> {
  if (row.workspace_id !== runtime.workspaceId) {
    await cancelTask(deps, row.id);
    throw new InternalError("task workspace isolation check failed");
  }
  const [agent, workspace, prior] = await Promise.all([
    deps.registry.getAgent({ agentId: row.agent_id }).then(
      (r) => r.agent,
      (error: unknown) => {
        deps.log.warn({ err: error, task_id: row.id }, "agent read failed; claim answered without agent");
        return undefined;
      },
    ),
    deps.identity.getWorkspace({ workspaceId: row.workspace_id }).then(
      (r) => r.workspace,
      () => undefined,
    ),
    resumePointer(deps, row),
  ]);
  // The agent acts for the runtime's owner; a runtime registered with a daemon
  // token has none, and then for the agent's owner.
  const userId = runtime.ownerId ?? agent?.ownerId;
  if (!userId) {
    await cancelTask(deps, row.id);
    throw new InternalError("runtime owner required to mint task token");
  }
  let authToken: string;
  try {
    authToken = await mintTaskToken(
      deps.pool,
      { taskId: row.id, agentId: row.agent_id, workspaceId: row.workspace_id, userId },
      deps.config.TASK_TOKEN_TTL_MS,
    );
  } catch (error) {
    // The task stays dispatched and is handed out again after the recovery window.
    deps.log.error({ err: error, task_id: row.id }, "task token insert failed");
    throw new InternalError("failed to persist task token");
  }
  const task = taskToProto(row);
  const repos = task.context?.reposJson ?? (workspace && workspace.repos.length > 0 ? reposJson(workspace.repos) : undefined);
  return {
    task,
    agent: agent ? withInstructionsSuffix(agent, task.context?.instructionsSuffix) : undefined,
    reposJson: repos,
    workspaceContext: workspace?.context,
    priorSessionId: prior.sessionId,
    priorWorkDir: prior.workDir,
    authToken,
    workspaceId: row.workspace_id,
  };
}

/**
 * Where a resumed run continues: the latest resumable earlier task of the
 * same agent and issue (or chat session). The session only carries over on
 * the same runtime; the work dir whenever there is one.
 */
async function resumePointer(deps: TaskQueueDeps, row: TaskRow): Promise<{ sessionId?: string; workDir?: string }> {
  if (row.force_fresh_session) return {};
  const prior = row.issue_id
    ? await tasks.priorForIssue(deps.pool, row.agent_id, row.issue_id, row.id)
    : row.chat_session_id
      ? await tasks.priorForChat(deps.pool, row.chat_session_id, row.id)
      : null;
  if (!prior) return {};
  return {
    sessionId: prior.runtime_id === row.runtime_id ? (prior.session_id ?? undefined) : undefined,
    workDir: prior.work_dir ?? undefined,
  };
}

function reposJson(repos: Array<{ url: string; description: string }>): string {
  return JSON.stringify(repos.map((r) => (r.description ? { url: r.url, description: r.description } : { url: r.url })));
}

/** A briefing the enqueuer attached goes after the agent's instructions, separated by a blank line. */
function withInstructionsSuffix(agent: Agent, suffix: string | undefined): Agent {
  if (!suffix) return agent;
  return { ...agent, instructions: agent.instructions ? `${agent.instructions}\n\n${suffix}` : suffix };
}

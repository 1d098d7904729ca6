import { requireBatchSize, settleEach, type UnaryHandlers } from "@controlplane/grpc";
import type {
  CompleteTaskRequest,
  CompleteTaskResponse,
  StartTaskRequest,
  StartTaskResponse,
  TaskQueueServiceService,
} from "@controlplane/proto/taskqueue/v1/taskqueue";
import * as builtinSkills from "./builtin-skills.js";
import { claimTask, claimTasks, extendPrepareLease, releaseClaim } from "./claim.js";
import type { TaskQueueDeps } from "./deps.js";
import { enqueueTask } from "./enqueue.js";
import { requireTask } from "./ids.js";
import * as lifecycle from "./lifecycle.js";
import * as messages from "./messages.js";
import * as taskLists from "./task-lists.js";
import { taskToProto } from "./task-shape.js";
import { resolveTaskToken } from "./tokens.js";
import * as usage from "./usage.js";
import * as workItems from "./work-items.js";

/** A batch item's task, named in the log when it fails. */
const taskOf = (req: { taskId: string }) => ({ task_id: req.taskId });

/** The gRPC face of the task queue: decode, call the use case, encode. */
export function taskQueueHandlers(deps: TaskQueueDeps): UnaryHandlers<typeof TaskQueueServiceService> {
  const { pool } = deps;

  async function startOne(req: StartTaskRequest): Promise<StartTaskResponse> {
    return { task: taskToProto(await lifecycle.startTask(deps, req.taskId)) };
  }

  async function completeOne(req: CompleteTaskRequest): Promise<CompleteTaskResponse> {
    const { task, transitioned } = await lifecycle.completeTask(deps, req.taskId, {
      prUrl: req.prUrl,
      output: req.output,
      sessionId: req.sessionId,
      workDir: req.workDir,
      branchName: req.branchName,
      durableWorkDir: req.durableWorkDir,
      sessionRolloutMissing: req.sessionRolloutMissing,
      retiredSessionId: req.retiredSessionId,
    });
    return { task: taskToProto(task), transitioned };
  }

  return {
    enqueueTask: (req) => enqueueTask(deps, req),
    async claimTask(req, call) {
      return { claimed: await claimTask(deps, req.runtimeId, req.waitMs, call) };
    },
    async claimTaskBatch(req, call) {
      requireBatchSize(req.runtimeIds, "runtime_ids");
      const claimOne = async (runtimeId: string) => ({ claimed: await claimTask(deps, runtimeId, 0, call) });
      return { outcomes: await settleEach("answer", req.runtimeIds, claimOne, call.log, (runtimeId) => ({ runtime_id: runtimeId })) };
    },
    async releaseClaim(req) {
      return { released: await releaseClaim(deps, req.taskId, req.runtimeId) };
    },
    async claimTasks(req, call) {
      return { claimed: await claimTasks(deps, req, call) };
    },
    async extendPrepareLease(req) {
      return { task: taskToProto(await extendPrepareLease(deps, req.runtimeId, req.taskId)) };
    },
    async getTask(req) {
      return { task: taskToProto(await requireTask(pool, req.taskId)) };
    },
    startTask: startOne,
    async startTaskBatch(req, call) {
      requireBatchSize(req.starts, "starts");
      return { outcomes: await settleEach("answer", req.starts, startOne, call.log, taskOf) };
    },
    async waitLocalDirectory(req) {
      return { task: taskToProto(await lifecycle.waitLocalDirectory(deps, req.taskId, req.reason)) };
    },
    async reportProgress(req) {
      await messages.reportProgress(deps, req.taskId, req.summary, req.step, req.total);
      return {};
    },
    async appendMessages(req) {
      return { stored: await messages.appendMessages(deps, req.taskId, req.messages) };
    },
    listMessages: (req) => messages.listMessages(deps, req.taskId, req.since, req),
    async reportUsage(req) {
      await usage.reportUsage(deps, req.taskId, req.usage);
      return {};
    },
    completeTask: completeOne,
    async completeTaskBatch(req, call) {
      requireBatchSize(req.completions, "completions");
      return { outcomes: await settleEach("answer", req.completions, completeOne, call.log, taskOf) };
    },
    async failTask(req) {
      const { task, transitioned, retryTaskId } = await lifecycle.failTask(deps, req.taskId, {
        error: req.error,
        sessionId: req.sessionId,
        workDir: req.workDir,
        failureReason: req.failureReason,
        branchName: req.branchName,
        durableWorkDir: req.durableWorkDir,
        sessionRolloutMissing: req.sessionRolloutMissing,
        retiredSessionId: req.retiredSessionId,
      });
      return { task: taskToProto(task), transitioned, retryTaskId };
    },
    async acknowledgeCancel(req) {
      return { recorded: await lifecycle.acknowledgeCancel(deps, req.taskId, req) };
    },
    async cancelTask(req) {
      const { task, transitioned } = await lifecycle.cancelTask(deps, req.taskId, {
        workspaceId: req.workspaceId,
        issueId: req.issueId,
      });
      return { task: taskToProto(task), transitioned };
    },
    listPendingTasks: (req) => taskLists.listPendingTasks(deps, req.runtimeId, req),
    listTasks: (req) => taskLists.listTasks(deps, req, req),
    async pinSession(req) {
      await lifecycle.pinSession(deps, req.taskId, req.sessionId, req.workDir);
      return {};
    },
    recoverOrphans: (req) => lifecycle.recoverOrphans(deps, req.runtimeId),
    getIssueUsage: (req) => usage.issueUsage(deps, req.workspaceId, req.issueId),
    async recordWorkItem(req) {
      await workItems.recordWorkItem(deps, req.item);
      return {};
    },
    async getWorkItem(req) {
      return { item: await workItems.getWorkItem(deps, req.kind, req.id) };
    },
    async checkIssues(req) {
      return { issues: await workItems.checkIssues(deps, req.workspaceId, req.issueIds) };
    },
    async deleteWorkItem(req) {
      return { cancelledTasks: await workItems.deleteWorkItem(deps, req.kind, req.id, req.deletedAt) };
    },
    async resolveIssue(req) {
      return { issueId: await workItems.resolveIssue(deps, req.workspaceId, req.issueRef) };
    },
    setBuiltinSkills: (req) => builtinSkills.setBuiltinSkills(deps, req.version, req.skills),
    getBuiltinSkills: () => builtinSkills.getBuiltinSkills(deps),
    resolveTaskToken: (req) => resolveTaskToken(pool, req.token),
  };
}

import type { Command } from "commander";
import type { Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { tasksClient } from "../clients.js";
import { fields, print, table } from "../output.js";
import { context } from "../program.js";

function describe(t: Task): string {
  return fields([
    ["id", t.id],
    ["status", t.status],
    ["kind", t.kind],
    ["agent_id", t.agentId],
    ["runtime_id", t.runtimeId],
    ["issue_id", t.issueId],
    ["priority", t.priority],
    ["attempt", `${t.attempt}/${t.maxAttempts}`],
    ["error", t.error],
    ["failure_reason", t.failureReason],
    ["created_at", t.createdAt],
    ["completed_at", t.completedAt],
  ]);
}

export function registerTaskCommands(program: Command): void {
  const task = program.command("task").description("enqueue and inspect tasks");

  task
    .command("enqueue <agent-id>")
    .description("queue a task for an agent (on the agent's runtime); waiting daemons are woken")
    .option("--issue <issue-id>", "the issue the task works on (one pending task per agent and issue)")
    .option("--chat-session <id>", "the chat session the task answers")
    .option("--prompt <text>", "a quick-create task: the prompt (no issue or chat session)")
    .option("--title <text>", "thread name shown to the agent")
    .option("--priority <n>", "0 (none) to 4 (urgent)", "0")
    .option("--max-attempts <n>", "attempts including retries (default 2)", "0")
    .option("--fresh", "do not resume an earlier session", false)
    .action(async (agentId: string, opts) => {
      const { addresses, out } = context();
      const client = tasksClient(addresses);
      try {
        const quickCreate = opts.prompt ? { prompt: opts.prompt, requesterId: "", attachmentIds: [] } : undefined;
        const result = await client.enqueueTask({
          agentId,
          issueId: opts.issue,
          chatSessionId: opts.chatSession,
          priority: Number(opts.priority),
          maxAttempts: Number(opts.maxAttempts),
          forceFreshSession: opts.fresh,
          context: { threadName: opts.title, quickCreate },
        });
        print(out, result, () => `${result.deduplicated ? "already pending" : "queued"}\n${describe(result.task!)}`);
      } finally {
        client.close();
      }
    });

  task
    .command("list <workspace-id>")
    .description("list a workspace's tasks, newest first")
    .option("--issue <issue-id>")
    .option("--active", "only queued, dispatched, running and waiting tasks", false)
    .action(async (workspaceId: string, opts: { issue?: string; active: boolean }) => {
      const { addresses, out } = context();
      const client = tasksClient(addresses);
      try {
        const { tasks } = await client.listTasks({ workspaceId, issueId: opts.issue, activeOnly: opts.active });
        print(out, tasks, () => table(tasks.map((t) => ({ ...t })), ["id", "status", "kind", "agentId", "issueId", "createdAt"]));
      } finally {
        client.close();
      }
    });

  task
    .command("show <task-id>")
    .description("show one task")
    .action(async (taskId: string) => {
      const { addresses, out } = context();
      const client = tasksClient(addresses);
      try {
        const { task: t } = await client.getTask({ taskId });
        print(out, t, () => describe(t!));
      } finally {
        client.close();
      }
    });

  task
    .command("cancel <task-id>")
    .description("cancel a task that has not finished (a finished one is left as it is)")
    .action(async (taskId: string) => {
      const { addresses, out } = context();
      const client = tasksClient(addresses);
      try {
        const { task: t, transitioned } = await client.cancelTask({ taskId });
        print(out, { task: t, transitioned }, () => `${transitioned ? "cancelled" : "already finished"}\n${describe(t!)}`);
      } finally {
        client.close();
      }
    });
}

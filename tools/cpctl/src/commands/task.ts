import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { BuiltinSkill, Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
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
        print(out, tasks, () =>
          table(
            tasks.map((t) => ({ ...t })),
            ["id", "status", "kind", "agentId", "issueId", "createdAt"],
          ),
        );
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

  const builtin = task.command("builtin-skills").description("the product's built-in skills, added to every claimed task's agent");

  builtin
    .command("set <file>")
    .description(
      'register the built-in skill set from a JSON file: {"version": N, "skills": [{"name", "description"?, "content", ' +
        '"files"?: [{"path", "content"}]}]}; stored only when N is higher than the stored version',
    )
    .action(async (file: string) => {
      const { addresses, out } = context();
      const { version, skills } = parseBuiltinSkills(await readFile(file, "utf8"), file);
      const client = tasksClient(addresses);
      try {
        const result = await client.setBuiltinSkills({ version, skills });
        print(out, result, () =>
          result.replaced
            ? `stored version ${result.storedVersion} (${skills.length} skills)`
            : `not stored: version ${result.storedVersion} is already stored (asked ${version})`,
        );
      } finally {
        client.close();
      }
    });

  builtin
    .command("show")
    .description("show the stored built-in skill set (version 0: none)")
    .action(async () => {
      const { addresses, out } = context();
      const client = tasksClient(addresses);
      try {
        const set = await client.getBuiltinSkills({});
        print(out, set, () =>
          [
            fields([
              ["version", set.version],
              ["updated_at", set.updatedAt],
            ]),
            table(
              set.skills.map((s) => ({ name: s.name, files: s.files.length, chars: s.content.length })),
              ["name", "files", "chars"],
            ),
          ].join("\n"),
        );
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

/** A built-in skill set file, checked enough to say what is wrong with it; the service checks the rest. */
export function parseBuiltinSkills(text: string, file: string): { version: number; skills: BuiltinSkill[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON: ${(error as Error).message}`);
  }
  const set = value as { version?: unknown; skills?: unknown };
  if (typeof set !== "object" || set === null || !Number.isSafeInteger(set.version) || !Array.isArray(set.skills)) {
    throw new Error(`${file}: expected {"version": <positive integer>, "skills": [...]}`);
  }
  const str = (v: unknown, where: string, required: boolean) => {
    if (v === undefined && !required) return "";
    if (typeof v !== "string") throw new Error(`${file}: ${where} must be a string`);
    return v;
  };
  const skills = set.skills.map((raw, i): BuiltinSkill => {
    const skill = (raw ?? {}) as Record<string, unknown>;
    const files = skill.files ?? [];
    if (!Array.isArray(files)) throw new Error(`${file}: skills[${i}].files must be an array`);
    return {
      name: str(skill.name, `skills[${i}].name`, true),
      description: str(skill.description, `skills[${i}].description`, false),
      content: str(skill.content, `skills[${i}].content`, true),
      files: files.map((f, j) => {
        const entry = (f ?? {}) as Record<string, unknown>;
        return { path: str(entry.path, `skills[${i}].files[${j}].path`, true), content: str(entry.content, `skills[${i}].files[${j}].content`, true) };
      }),
    };
  });
  return { version: set.version as number, skills };
}

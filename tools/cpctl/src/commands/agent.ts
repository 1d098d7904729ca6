import type { Command } from "commander";
import type { Agent } from "@controlplane/proto/registry/v1/registry";
import { registryClient } from "../clients.js";
import { fields, print, table } from "../output.js";
import { context } from "../program.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** KEY=VALUE pairs into an object. */
function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--env expects KEY=VALUE, got "${pair}"`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

function describe(a: Agent): string {
  return fields([
    ["id", a.id],
    ["name", a.name],
    ["runtime_id", a.runtimeId],
    ["model", a.model],
    ["max_concurrent_tasks", a.maxConcurrentTasks],
    ["custom_args", a.customArgs],
    ["custom_env", Object.keys(a.customEnv)],
    ["archived_at", a.archivedAt],
  ]);
}

export function registerAgentCommands(program: Command): void {
  const agent = program.command("agent").description("manage agents bound to runtimes");

  agent
    .command("upsert <workspace-id> <runtime-id>")
    .description("create an agent on a runtime, or update one with --id (all fields are replaced)")
    .requiredOption("--name <name>")
    .option("--id <agent-id>", "update this agent instead of creating one")
    .option("--instructions <text>", "system instructions", "")
    .option("--env <KEY=VALUE>", "environment variable (repeatable)", collect, [])
    .option("--arg <arg>", "extra CLI argument (repeatable)", collect, [])
    .option("--mcp-config <json>", "MCP configuration as JSON")
    .option("--runtime-config <json>", "runtime configuration as a JSON object", "")
    .option("--model <model>")
    .option("--thinking-level <level>")
    .option("--max-concurrent-tasks <n>", "in-flight tasks across runtimes (default 6)", "0")
    .option("--visibility <visibility>", "workspace or private", "")
    .option("--owner <user-id>")
    .action(async (workspaceId: string, runtimeId: string, opts) => {
      const { addresses, out } = context();
      const client = registryClient(addresses);
      try {
        const result = await client.upsertAgent({
          agentId: opts.id,
          workspaceId,
          runtimeId,
          name: opts.name,
          instructions: opts.instructions,
          customEnv: parseEnv(opts.env),
          customArgs: opts.arg,
          mcpConfigJson: opts.mcpConfig,
          runtimeConfigJson: opts.runtimeConfig,
          model: opts.model,
          thinkingLevel: opts.thinkingLevel,
          skills: [],
          maxConcurrentTasks: Number(opts.maxConcurrentTasks),
          visibility: opts.visibility,
          ownerId: opts.owner,
        });
        print(out, result, () => `${result.created ? "created" : "updated"}\n${describe(result.agent!)}`);
      } finally {
        client.close();
      }
    });

  agent
    .command("list <workspace-id>")
    .description("list a workspace's agents")
    .option("--runtime <runtime-id>", "only agents of this runtime")
    .option("--all", "include archived agents", false)
    .action(async (workspaceId: string, opts: { runtime?: string; all: boolean }) => {
      const { addresses, out } = context();
      const client = registryClient(addresses);
      try {
        const { agents } = await client.listAgents({ workspaceId, runtimeId: opts.runtime, includeArchived: opts.all });
        print(out, agents, () =>
          table(
            agents.map((a) => ({ ...a })),
            ["id", "name", "runtimeId", "model", "archivedAt"],
          ),
        );
      } finally {
        client.close();
      }
    });

  agent
    .command("archive <workspace-id> <agent-id>")
    .description("archive an agent")
    .action(async (workspaceId: string, agentId: string) => {
      const { addresses, out } = context();
      const client = registryClient(addresses);
      try {
        const { agent: a } = await client.archiveAgent({ workspaceId, agentId });
        print(out, a, () => describe(a!));
      } finally {
        client.close();
      }
    });
}

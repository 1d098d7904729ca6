import type { Command } from "commander";
import type { Workspace } from "@controlplane/proto/registry/v1/identity";
import { identityClient } from "../clients.js";
import { context } from "../program.js";
import { fields, print, table } from "../output.js";

/** "url" or "url=description". */
function parseRepo(value: string, previous: Array<{ url: string; description: string }> = []) {
  const at = value.indexOf("=");
  const repo = at < 0 ? { url: value, description: "" } : { url: value.slice(0, at), description: value.slice(at + 1) };
  return [...previous, repo];
}

function describe(ws: Workspace): string {
  return fields([
    ["id", ws.id],
    ["name", ws.name],
    ["slug", ws.slug],
    ["issue_prefix", ws.issuePrefix || undefined],
    ["repos", ws.repos.map((r) => r.url)],
    ["settings", ws.settingsJson],
    ["created_at", ws.createdAt],
  ]);
}

export function registerWorkspaceCommands(program: Command): void {
  const workspace = program.command("workspace").description("create and inspect workspaces");

  workspace
    .command("create <name>")
    .description("create a workspace")
    .option("--slug <slug>", "URL-safe short name (derived from the name by default)", "")
    .option("--description <text>", "description", "")
    .option("--repo <url[=description]>", "a repository (repeatable)", parseRepo, [])
    .option("--settings <json>", "settings as a JSON object", "{}")
    .option("--context <text>", "workspace system prompt for agents")
    .option("--issue-prefix <prefix>", "issue identifier prefix", "")
    .option("--owner <user-id>", "make this user the owner")
    .action(async (name: string, opts) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const { workspace: ws } = await client.createWorkspace({
          name,
          slug: opts.slug,
          description: opts.description,
          repos: opts.repo,
          settingsJson: opts.settings,
          context: opts.context,
          issuePrefix: opts.issuePrefix,
          ownerUserId: opts.owner,
        });
        print(out, ws, () => describe(ws!));
      } finally {
        client.close();
      }
    });

  workspace
    .command("update <workspace-id>")
    .description("change a workspace's fields (only those given)")
    .option("--name <name>")
    .option("--description <text>")
    .option("--repo <url[=description]>", "replace the repositories (repeatable)", parseRepo)
    .option("--clear-repos", "remove every repository")
    .option("--settings <json>", "settings as a JSON object")
    .option("--context <text>")
    .option("--issue-prefix <prefix>")
    .action(async (workspaceId: string, opts) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const repos = opts.clearRepos ? { repos: [] } : opts.repo ? { repos: opts.repo } : undefined;
        const { workspace: ws } = await client.updateWorkspace({
          workspaceId,
          name: opts.name,
          description: opts.description,
          repos,
          settingsJson: opts.settings,
          context: opts.context,
          issuePrefix: opts.issuePrefix,
        });
        print(out, ws, () => describe(ws!));
      } finally {
        client.close();
      }
    });

  workspace
    .command("show <workspace-id>")
    .description("show one workspace")
    .action(async (workspaceId: string) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const { workspace: ws } = await client.getWorkspace({ workspaceId });
        print(out, ws, () => describe(ws!));
      } finally {
        client.close();
      }
    });

  workspace
    .command("list")
    .description("list the workspaces a user is a member of")
    .requiredOption("--user <user-id>", "the member")
    .action(async (opts) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const { workspaces } = await client.listWorkspaces({ userId: opts.user });
        print(out, workspaces, () =>
          table(
            workspaces.map((w) => ({ ...w })),
            ["id", "name", "slug"],
          ),
        );
      } finally {
        client.close();
      }
    });
}

import type { Command } from "commander";
import type { RuntimeProfile } from "@controlplane/proto/profiles/v1/profiles";
import { profilesClient } from "../clients.js";
import { context } from "../program.js";
import { fields, print, table } from "../output.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

function describe(p: RuntimeProfile): string {
  return fields([
    ["id", p.id],
    ["display_name", p.displayName],
    ["protocol_family", p.protocolFamily],
    ["command_name", p.commandName],
    ["fixed_args", p.fixedArgs],
    ["visibility", p.visibility],
    ["enabled", p.enabled],
    ["description", p.description],
  ]);
}

export function registerProfileCommands(program: Command): void {
  const profile = program.command("profile").description("manage custom runtime profiles");

  profile
    .command("list <workspace-id>")
    .description("list a workspace's runtime profiles, oldest first")
    .option("--enabled-only", "only enabled profiles (what daemons see)", false)
    .action(async (workspaceId: string, opts: { enabledOnly: boolean }) => {
      const { addresses, out } = context();
      const client = profilesClient(addresses);
      try {
        const { profiles } = await client.listProfiles({ workspaceId, enabledOnly: opts.enabledOnly });
        print(out, profiles, () =>
          table(
            profiles.map((p) => ({ ...p })),
            ["id", "displayName", "protocolFamily", "commandName", "enabled"],
          ),
        );
      } finally {
        client.close();
      }
    });

  profile
    .command("create <workspace-id>")
    .description("create a runtime profile")
    .requiredOption("--name <display-name>", "unique display name in the workspace")
    .requiredOption("--family <protocol-family>", "protocol family, e.g. claude or codex")
    .requiredOption("--command <command-name>", "executable the daemon resolves on PATH")
    .option("--arg <arg>", "fixed argument for every agent (repeatable)", collect, [])
    .option("--description <text>")
    .option("--private", "visibility private instead of workspace", false)
    .option("--disabled", "create it disabled", false)
    .option("--created-by <user-id>")
    .action(async (workspaceId: string, opts) => {
      const { addresses, out } = context();
      const client = profilesClient(addresses);
      try {
        const { profile: p } = await client.createProfile({
          workspaceId,
          displayName: opts.name,
          protocolFamily: opts.family,
          commandName: opts.command,
          description: opts.description,
          fixedArgs: opts.arg,
          visibility: opts.private ? "private" : "workspace",
          enabled: !opts.disabled,
          createdBy: opts.createdBy,
        });
        print(out, p, () => describe(p!));
      } finally {
        client.close();
      }
    });

  profile
    .command("delete <workspace-id> <profile-id>")
    .description("delete a profile and its runtime rows (refused while active agents are bound)")
    .action(async (workspaceId: string, profileId: string) => {
      const { addresses, out } = context();
      const client = profilesClient(addresses);
      try {
        const result = await client.deleteProfile({ workspaceId, profileId });
        print(out, result, () => `deleted (${result.detachedRuntimeCount} runtime rows detached)`);
      } finally {
        client.close();
      }
    });
}

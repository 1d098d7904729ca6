import { type Command, Option } from "commander";
import { MemberRole, memberRoleToJSON } from "@controlplane/proto/registry/v1/identity";
import { identityClient } from "../clients.js";
import { context } from "../program.js";
import { fields, print } from "../output.js";

const ROLES = { owner: MemberRole.MEMBER_ROLE_OWNER, admin: MemberRole.MEMBER_ROLE_ADMIN, member: MemberRole.MEMBER_ROLE_MEMBER };

export function registerMemberCommands(program: Command): void {
  const member = program.command("member").description("manage workspace members");

  member
    .command("add <workspace-id> <user-id>")
    .description("add a member, or change an existing member's role")
    .addOption(new Option("--role <role>", "role in the workspace").choices(Object.keys(ROLES)).default("member"))
    .action(async (workspaceId: string, userId: string, opts: { role: keyof typeof ROLES }) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const { member: m } = await client.addMember({ workspaceId, userId, role: ROLES[opts.role] });
        print(out, m, () =>
          fields([
            ["workspace_id", m!.workspaceId],
            ["user_id", m!.userId],
            ["role", memberRoleToJSON(m!.role).replace("MEMBER_ROLE_", "").toLowerCase()],
          ]),
        );
      } finally {
        client.close();
      }
    });

  member
    .command("remove <workspace-id> <user-id>")
    .description("remove a member (their access ends within the gateway's auth cache TTL)")
    .action(async (workspaceId: string, userId: string) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        await client.removeMember({ workspaceId, userId });
        print(out, { removed: true }, () => "removed");
      } finally {
        client.close();
      }
    });
}

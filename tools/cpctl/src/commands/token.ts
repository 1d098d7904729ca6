import type { Command } from "commander";
import { SignJWT } from "jose";
import { loadConfig } from "@controlplane/config";
import { DEV_JWT_SECRET, registryEnv } from "@controlplane/runtime-registry/config";
import { tokenKindToJSON, type TokenInfo } from "@controlplane/proto/registry/v1/identity";
import { identityClient } from "../clients.js";
import { parseDuration } from "../duration.js";
import { context } from "../program.js";
import { fields, print, table } from "../output.js";

function kindName(info: TokenInfo): string {
  return tokenKindToJSON(info.kind).replace("TOKEN_KIND_", "").toLowerCase();
}

function describe(info: TokenInfo): Array<[string, unknown]> {
  return [
    ["id", info.id],
    ["kind", kindName(info)],
    ["prefix", info.prefix],
    ["workspace_id", info.workspaceId],
    ["daemon_id", info.daemonId],
    ["user_id", info.userId],
    ["expires_at", info.expiresAt ?? "never"],
    ["revoked_at", info.revokedAt],
  ];
}

const SECRET_NOTE = "(shown once: store it now; only its hash is kept)";

/**
 * The registry's own JWT_SECRET setting, parsed with the registry's schema
 * (same default, same validation), so the token signed is one that registry
 * accepts; a bad value stops cpctl naming the variable, as it stops the
 * registry.
 */
function registryJwtSecret(): string {
  const { JWT_SECRET } = loadConfig(registryEnv.pick({ JWT_SECRET: true }));
  if (JWT_SECRET === DEV_JWT_SECRET) {
    process.stderr.write("cpctl: JWT_SECRET is the registry's development default: only a registry running with it accepts this token\n");
  }
  return JWT_SECRET;
}

export function registerTokenCommands(program: Command): void {
  const token = program.command("token").description("issue, list and revoke credentials");

  token
    .command("daemon <workspace-id> <daemon-id>")
    .description("issue a daemon token (mdt_) scoped to one workspace and daemon id")
    .option("--ttl <duration>", "lifetime, e.g. 30d; 0 for no expiry", "0")
    .action(async (workspaceId: string, daemonId: string, opts: { ttl: string }) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const issued = await client.issueDaemonToken({ workspaceId, daemonId, ttlSeconds: parseDuration(opts.ttl) });
        print(out, issued, () => `${fields([["token", issued.token], ...describe(issued.info!)])}\n${SECRET_NOTE}`);
      } finally {
        client.close();
      }
    });

  token
    .command("pat <user-id>")
    .description("issue a personal access token (mul_) for a user")
    .option("--name <name>", "a label for the owner", "")
    .option("--ttl <duration>", "lifetime, e.g. 90d; 0 for no expiry", "90d")
    .action(async (userId: string, opts: { name: string; ttl: string }) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const issued = await client.issuePersonalAccessToken({ userId, name: opts.name, ttlSeconds: parseDuration(opts.ttl) });
        print(out, issued, () => `${fields([["token", issued.token], ...describe(issued.info!)])}\n${SECRET_NOTE}`);
      } finally {
        client.close();
      }
    });

  token
    .command("revoke <token-id>")
    .description("revoke a daemon token or PAT (refused by the gateway within its auth cache TTL)")
    .action(async (tokenId: string) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const { info } = await client.revokeToken({ tokenId });
        print(out, info, () => fields(describe(info!)));
      } finally {
        client.close();
      }
    });

  token
    .command("list")
    .description("list daemon tokens of a workspace and/or PATs of a user (never the secrets)")
    .option("--workspace <workspace-id>")
    .option("--user <user-id>")
    .action(async (opts: { workspace?: string; user?: string }) => {
      const { addresses, out } = context();
      const client = identityClient(addresses);
      try {
        const { tokens } = await client.listTokens({ workspaceId: opts.workspace, userId: opts.user });
        print(out, tokens, () =>
          table(
            tokens.map((t) => ({ ...t, kind: kindName(t), owner: t.workspaceId ? `${t.workspaceId}/${t.daemonId}` : t.userId })),
            ["id", "kind", "prefix", "owner", "expiresAt", "revokedAt"],
          ),
        );
      } finally {
        client.close();
      }
    });

  token
    .command("jwt <user-id>")
    .description("sign a user session JWT (HS256 with JWT_SECRET), for development and tests")
    .option("--ttl <duration>", "lifetime", "12h")
    .option("--email <email>")
    .action(async (userId: string, opts: { ttl: string; email?: string }) => {
      const { out } = context();
      const secret = registryJwtSecret();
      const jwt = await new SignJWT(opts.email ? { email: opts.email } : {})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(userId)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + parseDuration(opts.ttl))
        .sign(new TextEncoder().encode(secret));
      print(out, { token: jwt }, () => jwt);
    });
}

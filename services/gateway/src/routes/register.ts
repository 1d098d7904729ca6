import type { FastifyReply } from "fastify";
import { z } from "zod";
import { LIMITS } from "@controlplane/config";
import { authenticateDaemon, type Caller } from "../auth/checks.js";
import { repoJson, runtimeJson } from "../shapes.js";
import { bodySchema, decodeBody, path, str, strArray, stripNul, text, withoutNul } from "../wire/body.js";
import { clientCapabilities } from "../wire/capabilities.js";
import { call } from "../wire/errors.js";
import { goMap, RawJson } from "../wire/go-json.js";
import { sendJson, sendJsonWithRaw } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/** One runtime as the daemon describes it; a JSON null element reads as empty. */
const runtimeItem = z
  .object({ name: str(), type: str(), version: str(), status: str(), profile_id: str() })
  .passthrough()
  .nullable()
  .transform((v) => v ?? {});

/** A custom profile today's daemon could not register; a JSON null element reads as empty. */
const failedProfileItem = z
  .object({ profile_id: str(), command_name: path(), reason: text(LIMITS.SUMMARY_CHARS) })
  .passthrough()
  .nullable()
  .transform((v) => v ?? {});

const REGISTER_BODY = bodySchema({
  workspace_id: str(),
  daemon_id: str(),
  legacy_daemon_ids: strArray(LIMITS.LEGACY_DAEMON_IDS),
  device_name: str(),
  cli_version: str(),
  launched_by: str(),
  runtimes: z.array(runtimeItem).max(LIMITS.REGISTER_RUNTIMES).nullish(),
  failed_profiles: z.array(failedProfileItem).max(LIMITS.REGISTER_RUNTIMES).nullish(),
});

/**
 * offline_reasons: runtime id (as sent) -> any JSON value, kept as its JSON
 * text (NUL removed from keys and strings), each at most SUMMARY_CHARS.
 */
const offlineReasons = z
  .record(z.unknown())
  .nullish()
  .transform((v, ctx) => {
    if (v == null) return undefined;
    const entries = Object.entries(v);
    if (entries.length > LIMITS.DEREGISTER_RUNTIMES) {
      ctx.addIssue({ code: z.ZodIssueCode.too_big, type: "array", maximum: LIMITS.DEREGISTER_RUNTIMES, inclusive: true });
      return z.NEVER;
    }
    const reasons: Record<string, string> = {};
    for (const [id, value] of entries) {
      const json = JSON.stringify(withoutNul(value)) ?? "null";
      if (json.length > LIMITS.SUMMARY_CHARS) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `too large (at most ${LIMITS.SUMMARY_CHARS} characters as JSON)` });
        return z.NEVER;
      }
      reasons[stripNul(id)] = json;
    }
    return reasons;
  });

const DEREGISTER_BODY = bodySchema({ runtime_ids: strArray(LIMITS.DEREGISTER_RUNTIMES), offline_reasons: offlineReasons });

/**
 * Register (D1) and deregister (D2): the registry checks and writes, in the
 * contract's order. Both daemon generations are served from one route: the
 * X-Client-Capabilities header (today's daemon only) selects today's runtime
 * objects (with custom_name), metadata (with capabilities) and refusal texts;
 * without it every byte is the seed's.
 */
export function registerRegistrationRoutes({ router }: RouteContext): void {
  router.add("POST", "/api/daemon/register", registerDaemon);
  router.add("POST", "/api/daemon/deregister", deregisterRuntimes);
}

/** D1 */
async function registerDaemon(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const body = decodeBody(request.body, REGISTER_BODY);
  const capabilities = clientCapabilities(request);
  const answer = await call(
    clients.registry.registerDaemon({
      workspaceId: body.workspace_id ?? "",
      daemonId: body.daemon_id ?? "",
      legacyDaemonIds: body.legacy_daemon_ids ?? [],
      deviceName: body.device_name ?? "",
      cliVersion: body.cli_version ?? "",
      launchedBy: body.launched_by ?? "",
      runtimes: (body.runtimes ?? []).map((r: { name?: string; type?: string; version?: string; status?: string; profile_id?: string }) => ({
        name: r.name ?? "",
        type: r.type ?? "",
        version: r.version ?? "",
        status: r.status ?? "",
        profileId: r.profile_id ?? "",
      })),
      failedProfiles: (body.failed_profiles ?? []).map((f: { profile_id?: string; command_name?: string; reason?: string }) => ({
        profileId: f.profile_id ?? "",
        commandName: f.command_name ?? "",
        reason: f.reason ?? "",
      })),
      clientCapabilities: capabilities === undefined ? undefined : { names: capabilities },
      ...callerFields(caller),
    }),
    "failed to register runtime",
  );
  const withCustomName = capabilities !== undefined;
  // A Go map in the original: keys sorted (repos, repos_version, runtimes, settings).
  return sendJsonWithRaw(
    reply,
    200,
    goMap({
      runtimes: answer.runtimes.map((runtime) => runtimeJson(runtime, { withCustomName })),
      repos: answer.repos.map(repoJson),
      repos_version: answer.reposVersion,
      settings: new RawJson(answer.settingsJson || "{}"),
    }),
  );
}

/** D2 */
async function deregisterRuntimes(request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const body = decodeBody(request.body, DEREGISTER_BODY);
  await call(
    clients.registry.deregisterRuntimes({
      runtimeIds: body.runtime_ids ?? [],
      offlineReasonsJson: body.offline_reasons ?? {},
      ...callerFields(caller),
    }),
    "failed to deregister runtimes",
  );
  return sendJson(reply, 200, { status: "ok" });
}

/** How the registry learns who calls: a daemon token's workspace, or a user. */
function callerFields(caller: Caller): { callerWorkspaceId?: string; callerUserId?: string } {
  return caller.kind === "daemon_token" ? { callerWorkspaceId: caller.workspaceId ?? "" } : { callerUserId: caller.userId ?? "" };
}

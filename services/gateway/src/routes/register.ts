import { z } from "zod";
import { LIMITS } from "@controlplane/config";
import { authenticateDaemon, type Caller } from "../auth/checks.js";
import { repoJson, runtimeJson } from "../shapes.js";
import { bodySchema, decodeBody, str, strArray } from "../wire/body.js";
import { call } from "../wire/errors.js";
import { goMap, RawJson } from "../wire/go-json.js";
import { sendJson, sendJsonWithRaw } from "../wire/reply.js";
import type { RouteContext } from "./context.js";

/** One runtime as the daemon describes it; a JSON null element reads as empty. */
const runtimeItem = z
  .object({ name: str(), type: str(), version: str(), status: str(), profile_id: str() })
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
});
const DEREGISTER_BODY = bodySchema({ runtime_ids: strArray(LIMITS.DEREGISTER_RUNTIMES) });

/** Register (D1) and deregister (D2): the registry checks and writes, in the contract's order. */
export function registerRegistrationRoutes({ router, clients, auth }: RouteContext): void {
  router.add("POST", "/api/daemon/register", async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const body = decodeBody(request.body, REGISTER_BODY);
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
        ...callerFields(caller),
      }),
      "failed to register runtime",
    );
    // A Go map in the original: keys sorted (repos, repos_version, runtimes, settings).
    return sendJsonWithRaw(reply, 200, goMap({
      runtimes: answer.runtimes.map(runtimeJson),
      repos: answer.repos.map(repoJson),
      repos_version: answer.reposVersion,
      settings: new RawJson(answer.settingsJson || "{}"),
    }));
  });

  router.add("POST", "/api/daemon/deregister", async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const body = decodeBody(request.body, DEREGISTER_BODY);
    await call(
      clients.registry.deregisterRuntimes({ runtimeIds: body.runtime_ids ?? [], ...callerFields(caller) }),
      "failed to deregister runtimes",
    );
    return sendJson(reply, 200, { status: "ok" });
  });
}

/** How the registry learns who calls: a daemon token's workspace, or a user. */
function callerFields(caller: Caller): { callerWorkspaceId?: string; callerUserId?: string } {
  return caller.kind === "daemon_token" ? { callerWorkspaceId: caller.workspaceId ?? "" } : { callerUserId: caller.userId ?? "" };
}

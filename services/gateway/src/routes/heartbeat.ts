import { z } from "zod";
import { hasCode, status } from "@controlplane/grpc";
import { ActionKind } from "@controlplane/proto/liveness/v1/liveness";
import { authenticateDaemon } from "../auth/checks.js";
import { heartbeatAnswerJson } from "../shapes.js";
import type { RouteHandler } from "../router.js";
import { LIMITS } from "@controlplane/config";
import { bodySchema, bool, decodeBody, jsonArray, jsonObject, str, text } from "../wire/body.js";
import { call, HttpError, httpErrorFromGrpc } from "../wire/errors.js";
import { sendJson } from "../wire/reply.js";
import type { Params, RouteContext } from "./context.js";

const HEARTBEAT_BODY = bodySchema({ runtime_id: str(), supports_batch_import: bool() });

/** The heartbeat (D3) and the pending-action result routes (D9–D12). */
export function registerHeartbeatRoutes({ router, clients, auth, resources }: RouteContext): void {
  router.add("POST", "/api/daemon/heartbeat", async (request, reply) => {
    const caller = await authenticateDaemon(request, auth);
    const body = decodeBody(request.body, HEARTBEAT_BODY);
    if (!body.runtime_id) throw new HttpError(400, "runtime_id is required");
    const runtimeId = await resources.runtimeAccess(caller, body.runtime_id);
    let beat;
    try {
      beat = await clients.heartbeats.submit({ runtimeId, supportsBatchImport: body.supports_batch_import ?? false });
    } catch (error) {
      // Only a runtime that truly does not exist answers 404: the daemon re-registers on it.
      if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, "runtime not found");
      throw httpErrorFromGrpc(error, "heartbeat failed");
    }
    return sendJson(reply, 200, heartbeatAnswerJson(beat));
  });

  /**
   * R, then the action must exist for this runtime (path compared as sent);
   * a terminal action answers ok before the body is even read.
   */
  const resultRoute = (
    kind: ActionKind,
    param: string,
    notFound: string,
    shape: z.ZodRawShape,
    toResult: (body: Record<string, unknown>) => string | undefined,
  ): RouteHandler => {
    const resultBody = bodySchema({ status: str(), output: text(LIMITS.TEXT_CHARS), error: text(LIMITS.TEXT_CHARS), ...shape });
    return async (request, reply) => {
      const caller = await authenticateDaemon(request, auth);
      const params = request.params as Params<"runtimeId"> & Record<string, string>;
      await resources.runtime(caller, params.runtimeId);
      const actionId = params[param] ?? "";
      let action;
      try {
        ({ action } = await clients.liveness.getAction({ actionId }));
      } catch (error) {
        if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, notFound);
        throw httpErrorFromGrpc(error, `failed to load ${kind === ActionKind.ACTION_KIND_UPDATE ? "update" : "request"}`);
      }
      if (action!.runtimeId !== params.runtimeId || action!.kind !== kind) throw new HttpError(404, notFound);
      if (["completed", "failed", "timeout", "conflict"].includes(action!.status)) return sendJson(reply, 200, { status: "ok" });
      const body = decodeBody(request.body, resultBody) as Record<string, unknown> & {
        status?: string;
        output?: string;
        error?: string;
      };
      await call(
        clients.liveness.reportActionResult({
          runtimeId: params.runtimeId,
          actionId,
          kind,
          status: body.status ?? "",
          output: body.output,
          error: body.error,
          resultJson: toResult(body),
        }),
        "failed to persist completion",
      );
      return sendJson(reply, 200, { status: "ok" });
    };
  };

  // D10 and D11 keep what either daemon sends: today's adds models[].service_tiers
  // (inside the model list as sent) and `fallback` (a stand-in list, stored as
  // a completed one) to D10, skills[].root, `mcp_servers` and `mcp_supported`
  // (absent: false) to D11. The seed-era daemon sends none of them, and its
  // stored results are unchanged.
  const runtimePath = "/api/daemon/runtimes/:runtimeId";
  router.add("POST", `${runtimePath}/update/:updateId/result`, resultRoute(ActionKind.ACTION_KIND_UPDATE, "updateId", "update not found", {}, () => undefined));
  router.add(
    "POST",
    `${runtimePath}/models/:requestId/result`,
    resultRoute(
      ActionKind.ACTION_KIND_MODEL_LIST,
      "requestId",
      "request not found",
      { models: jsonArray(), supported: bool(), fallback: bool() },
      (b) => JSON.stringify({ models: b.models ?? [], supported: b.supported ?? true, ...(b.fallback === true ? { fallback: true } : {}) }),
    ),
  );
  router.add(
    "POST",
    `${runtimePath}/local-skills/:requestId/result`,
    resultRoute(
      ActionKind.ACTION_KIND_LOCAL_SKILLS,
      "requestId",
      "request not found",
      { skills: jsonArray(), supported: bool(), mcp_servers: jsonArray(), mcp_supported: bool() },
      (b) =>
        JSON.stringify({
          skills: b.skills ?? [],
          supported: b.supported ?? true,
          ...(b.mcp_servers !== undefined || b.mcp_supported !== undefined
            ? { mcp_servers: b.mcp_servers ?? [], mcp_supported: b.mcp_supported ?? false }
            : {}),
        }),
    ),
  );
  router.add(
    "POST",
    `${runtimePath}/local-skills/import/:requestId/result`,
    resultRoute(ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, "requestId", "request not found", { skill: jsonObject() }, (b) =>
      b.skill ? JSON.stringify({ skill: b.skill }) : undefined,
    ),
  );
}

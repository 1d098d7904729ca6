import type { FastifyReply } from "fastify";
import { z } from "zod";
import { LIMITS } from "@controlplane/config";
import { authenticateDaemon } from "../auth/checks.js";
import { bodySchema, decodeBody, str } from "../wire/body.js";
import { HttpError } from "../wire/errors.js";
import { sendJson } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/** Only a task being prepared resolves bundles: claimed, or parked on a local directory. */
const PREPARING = ["dispatched", "waiting_local_directory"];

/** A reference to a skill bundle, as a claim's `agent.skill_refs` carried it; a JSON null reads as empty. */
const skillRef = z
  .object({ id: str(), source: str(), name: str(), hash: str() })
  .passthrough()
  .nullable()
  .transform((v) => v ?? {});

const RESOLVE_BODY = bodySchema({ skills: z.array(skillRef).max(LIMITS.RESULT_LIST_ENTRIES).nullish() });

/**
 * N4, skill-bundle resolve (§13.8): the checks and errors, in the original's
 * order. Today's daemon calls it only for the `agent.skill_refs` of a claim,
 * which only a claim made with `skill-bundles-v1` carries; our claims always
 * carry the skills inline, so no daemon reaches it in normal operation.
 * Bundles keyed by (source, id), with their content, files and hash, are
 * product data the control plane does not hold: every well-formed reference
 * answers what the original answers for one it does not know,
 * 404 `skill bundle not found`.
 */
export function registerSkillBundleRoutes({ router }: RouteContext): void {
  router.add("POST", "/api/daemon/runtimes/:runtimeId/tasks/:taskId/skill-bundles/resolve", resolveSkillBundles);
}

async function resolveSkillBundles(request: RequestWith<"runtimeId" | "taskId">, reply: FastifyReply, { auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const runtime = await resources.runtime(caller, request.params.runtimeId);
  const task = await resources.task(caller, request.params.taskId);
  if (task.runtimeId !== runtime.id || task.workspaceId !== runtime.workspaceId) throw new HttpError(404, "task not found");
  if (!PREPARING.includes(task.status)) throw new HttpError(409, "task is not preparing");
  const body = decodeBody(request.body, RESOLVE_BODY) as { skills?: Array<{ id?: string; source?: string; hash?: string }> };
  const [first] = body.skills ?? [];
  if (first === undefined) return sendJson(reply, 200, { bundles: [] });
  // References are resolved in order and the first failure answers; with
  // no bundle known, the first reference decides.
  if (!first.id?.trim() || !first.source?.trim() || !first.hash?.trim()) throw new HttpError(400, "invalid skill ref");
  throw new HttpError(404, "skill bundle not found");
}

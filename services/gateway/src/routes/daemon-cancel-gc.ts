import { z } from "zod";
import { LIMITS } from "@controlplane/config";
import { parseUuid } from "@controlplane/ids";
import type { FastifyReply, FastifyRequest } from "fastify";
import { authenticateDaemon, requireDaemonWorkspace } from "../auth/checks.js";
import { bodySchema, decodeBody, INVALID_BODY, parseFirstValue, text } from "../wire/body.js";
import { call, HttpError, required } from "../wire/errors.js";
import { goMap, rfc3339Nano } from "../wire/go-json.js";
import { sendJson } from "../wire/reply.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/** The cancel-ack fields, each optional; NUL removed, bounded. */
const CANCEL_ACK_BODY = bodySchema({
  branch_name: text(LIMITS.PATH_CHARS),
  durable_work_dir: text(LIMITS.PATH_CHARS),
  error_message: text(LIMITS.TEXT_CHARS),
  failure_reason: text(LIMITS.NAME_CHARS),
});
const CANCEL_ACK_FIELDS = ["branch_name", "durable_work_dir", "error_message", "failure_reason"] as const;

/** `issue_ids` of a batch gc-check; a null entry reads as "" (which is then not a UUID), as Go decodes it. */
const GC_CHECK_BODY = bodySchema({
  issue_ids: z
    .array(
      z
        .string()
        .nullable()
        .transform((id) => id ?? ""),
    )
    .nullish()
    .transform((ids) => ids ?? []),
});

/**
 * The cancel-ack (N5) and the gc-checks of work items the product recorded:
 * one issue, chat session or autopilot run (D22–D24), or a batch of issues
 * (N6). N5 and N6 are today's daemon's only (contract 13.5, 13.7); neither
 * answers a 404 of its own beyond the access checks: the daemon's fallback
 * to single gc-checks keys on the router's "404 page not found".
 */
export function registerCancelAckAndGcCheckRoutes({ router }: RouteContext): void {
  router.add("GET", "/api/daemon/issues/:issueId/gc-check", issueGcCheck);
  router.add("GET", "/api/daemon/chat-sessions/:sessionId/gc-check", chatSessionGcCheck);
  router.add("GET", "/api/daemon/autopilot-runs/:runId/gc-check", autopilotRunGcCheck);
  router.add("POST", "/api/daemon/tasks/:taskId/cancel-ack", acknowledgeCancel);
  router.add("POST", "/api/daemon/workspaces/:workspaceId/issues/gc-check", checkIssues);
}

/** A kind of work item's gc-check: its kind in the task queue, the 400 for a bad id, the time it answers with. */
interface WorkItemGcCheck {
  kind: string;
  invalid: string;
  field: "updated_at" | "completed_at";
}
const ISSUE: WorkItemGcCheck = { kind: "issue", invalid: "invalid issue_id", field: "updated_at" };
const CHAT_SESSION: WorkItemGcCheck = { kind: "chat_session", invalid: "invalid session_id", field: "updated_at" };
const AUTOPILOT_RUN: WorkItemGcCheck = { kind: "autopilot_run", invalid: "invalid run_id", field: "completed_at" };

/** D22 */
async function issueGcCheck(request: RequestWith<"issueId">, reply: FastifyReply, services: RouteServices) {
  return workItemGcCheck(ISSUE, request.params.issueId, request, reply, services);
}

/** D23 */
async function chatSessionGcCheck(request: RequestWith<"sessionId">, reply: FastifyReply, services: RouteServices) {
  return workItemGcCheck(CHAT_SESSION, request.params.sessionId, request, reply, services);
}

/** D24 */
async function autopilotRunGcCheck(request: RequestWith<"runId">, reply: FastifyReply, services: RouteServices) {
  return workItemGcCheck(AUTOPILOT_RUN, request.params.runId, request, reply, services);
}

/** W on the work item's workspace; the answer is a Go map (keys sorted). */
async function workItemGcCheck(check: WorkItemGcCheck, sentId: string, request: RequestWith, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const id = parseUuid(sentId);
  if (!id) throw new HttpError(400, check.invalid);
  const answer = await call(clients.tasks.getWorkItem({ kind: check.kind, id }), `failed to load ${check.kind.replace("_", " ")}`);
  const item = required(answer.item, "the work item");
  await requireDaemonWorkspace(caller, item.workspaceId, auth);
  const when = check.field === "updated_at" ? item.updatedAt : item.completedAt;
  return sendJson(reply, 200, goMap({ status: item.status, [check.field]: rfc3339Nano(when) }));
}

/** N5: T is the only gate; any status is acknowledged, only a cancelled task records anything. */
async function acknowledgeCancel(request: RequestWith<"taskId">, reply: FastifyReply, { clients, auth, resources }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const taskId = await resources.taskAccess(caller, request.params.taskId);
  const ack = decodeCancelAck(request.body);
  await call(clients.tasks.acknowledgeCancel({ taskId, ...ack }), cancelAckFailure(ack));
  return sendJson(reply, 200, { status: "ok" });
}

/** N6: one answer per requested id, in order, duplicates kept, each id echoed as sent. */
async function checkIssues(request: RequestWith<"workspaceId">, reply: FastifyReply, { clients, auth }: RouteServices) {
  const caller = await authenticateDaemon(request, auth);
  const workspaceId = parseUuid(request.params.workspaceId);
  if (!workspaceId) throw new HttpError(400, "invalid workspace_id");
  await requireDaemonWorkspace(caller, workspaceId, auth);
  if (bodyBytes(request) > LIMITS.GC_CHECK_BODY_BYTES) throw new HttpError(400, INVALID_BODY);
  const requested = decodeBody(request.body, GC_CHECK_BODY).issue_ids;
  if (requested.length > LIMITS.GC_CHECK_ISSUE_IDS) throw new HttpError(400, "too many issue_ids");
  const refs: Array<{ sent: string; id: string }> = [];
  for (const sent of requested) {
    const id = parseUuid(sent);
    if (!id) throw new HttpError(400, "invalid issue_id");
    refs.push({ sent, id });
  }
  if (refs.length === 0) return sendJson(reply, 200, { issues: [] });
  const { issues } = await call(clients.tasks.checkIssues({ workspaceId, issueIds: [...new Set(refs.map((ref) => ref.id))] }), "failed to check issues");
  const found = new Map(issues.map((issue) => [issue.id, issue]));
  return sendJson(reply, 200, {
    issues: refs.map(({ sent, id }) => {
      const issue = found.get(id);
      return issue ? { id: sent, found: true, status: issue.status, updated_at: rfc3339Nano(issue.updatedAt) } : { id: sent, found: false };
    }),
  });
}

/**
 * The cancel-ack body as the original read it: optional, a body that does
 * not decode is ignored (as if empty), and so is a field of the wrong type
 * (Go's decoder fills the others). Our bounds still apply: 400 past one.
 */
function decodeCancelAck(raw: unknown) {
  const text = typeof raw === "string" ? raw : Buffer.isBuffer(raw) ? raw.toString("utf8") : "";
  const value = parseFirstValue(text);
  const given: Record<string, string> = {};
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const field of CANCEL_ACK_FIELDS) {
      const item = (value as Record<string, unknown>)[field];
      if (typeof item === "string") given[field] = item;
    }
  }
  const body = decodeBody(JSON.stringify(given), CANCEL_ACK_BODY);
  return {
    branchName: body.branch_name ?? "",
    durableWorkDir: body.durable_work_dir ?? "",
    errorMessage: body.error_message ?? "",
    failureReason: body.failure_reason ?? "",
  };
}

/** The original's 500 message: that of the first write the ack attempts (its writes ran in this order). */
function cancelAckFailure(ack: { branchName: string; durableWorkDir: string; errorMessage: string }): string {
  if (ack.durableWorkDir.trim()) return "failed to record durable work directory";
  if (ack.branchName.trim()) return "failed to record branch name";
  if (ack.errorMessage.trim()) return "failed to record task error";
  return "failed to load task";
}

/** The body's size as sent: its Content-Length, else its UTF-8 length. */
function bodyBytes(request: FastifyRequest): number {
  const declared = Number(request.headers["content-length"]);
  if (Number.isSafeInteger(declared) && declared >= 0) return declared;
  const body = request.body;
  return typeof body === "string" ? Buffer.byteLength(body) : Buffer.isBuffer(body) ? body.length : 0;
}

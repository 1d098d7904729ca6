import { NotFoundError, requireUuid, settleEach, type UnaryHandlers } from "@controlplane/grpc";
import type { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import * as actions from "./actions.js";
import type { LivenessDeps } from "./deps.js";
import { RUNTIME_NOT_FOUND } from "./directory.js";
import { heartbeat } from "./heartbeat.js";
import * as repo from "./repository/runtimes.js";

/** The gRPC face of liveness: decode, call the use case, encode. */
export function livenessHandlers(deps: LivenessDeps): UnaryHandlers<typeof LivenessServiceService> {
  return {
    heartbeat: (req) => heartbeat(deps, req),
    async heartbeatBatch(req, call) {
      return {
        outcomes: await settleEach(
          "ack",
          req.beats,
          (beat) => heartbeat(deps, beat),
          call.log,
          (beat) => ({ runtime_id: beat.runtimeId }),
        ),
      };
    },
    async getRuntimeLiveness(req) {
      const id = requireUuid(req.runtimeId, "runtime_id");
      const entry = await deps.directory.resolve(id);
      const row = await repo.find(deps.pool, id);
      if (!row) throw new NotFoundError(RUNTIME_NOT_FOUND);
      return {
        runtimeId: row.runtime_id,
        workspaceId: row.workspace_id,
        status: row.status,
        lastSeenAt: row.last_seen_at ?? undefined,
        lastBeatAt: entry.lastBeatAt > 0 ? new Date(entry.lastBeatAt) : undefined,
        lastSocketBeatAt: entry.lastSocketBeatAt > 0 ? new Date(entry.lastSocketBeatAt) : undefined,
        statusChangedAt: row.status_changed_at,
      };
    },
    async enqueueAction(req) {
      return { action: await actions.enqueueAction(deps, req) };
    },
    async getAction(req) {
      return { action: await actions.getAction(deps, req.actionId) };
    },
    reportActionResult: (req) => actions.reportResult(deps, req),
    returnActions: (req) => actions.returnActions(deps, req),
  };
}

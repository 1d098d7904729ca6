import type { HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import { pendingActionsJson } from "../shapes.js";
import { goMarshal } from "../wire/go-json.js";

/**
 * The daemon socket's frames: one JSON object per text frame,
 * `{"type": ..., "payload": ...}`, written as Go's json.Marshal wrote them
 * (keys in the original's struct order, no trailing newline).
 */
export const FRAME_TYPES = {
  taskAvailable: "daemon:task_available",
  heartbeat: "daemon:heartbeat",
  heartbeatAck: "daemon:heartbeat_ack",
  pendingWork: "daemon:pending_work",
  runtimeProfilesChanged: "daemon:runtime_profiles_changed",
  workspacesChanged: "daemon:workspaces_changed",
  rpcRequest: "daemon:rpc_request",
  rpcResponse: "daemon:rpc_response",
} as const;

/** What a heartbeat ack advertises to a daemon that can use it: claims over the socket. */
export const SERVER_CAPABILITIES = ["rpc-v1"];

function frame(type: string, payload: object): string {
  return goMarshal({ type, payload });
}

/** A task is queued for the runtime (`taskId`), or one of its slots was freed (no id). */
export function taskAvailableFrame(runtimeId: string, taskId?: string): string {
  return frame(FRAME_TYPES.taskAvailable, taskId ? { runtime_id: runtimeId, task_id: taskId } : { runtime_id: runtimeId });
}

/** The ack of a beat: `runtime_id` (canonical), status, then the popped actions as in D3. */
export function heartbeatAckFrame(runtimeId: string, beat: HeartbeatResponse, advertise: boolean): string {
  return frame(FRAME_TYPES.heartbeatAck, {
    runtime_id: runtimeId,
    status: "ok",
    ...pendingActionsJson(beat),
    ...(advertise ? { server_capabilities: SERVER_CAPABILITIES } : {}),
  });
}

/**
 * The answer to an RPC: `status` as HTTP's, then the route's body (an HTTP
 * error's `{"error": ...}` included) or, for a failure of the RPC itself,
 * `error`.
 */
export function rpcResponseFrame(requestId: string, status: number, answer: { body: unknown } | { error: string }): string {
  return frame(FRAME_TYPES.rpcResponse, { request_id: requestId, status, ...answer });
}

/** A `daemon:rpc_request`'s payload; undefined (dropped, no answer) without a request id. */
export function rpcRequestPayload(payload: unknown): { requestId: string; method: string; body: unknown; timeoutMs: number } | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const requestId = field(payload, "request_id");
  if (typeof requestId !== "string" || requestId === "") return undefined;
  const method = field(payload, "method");
  const timeout = field(payload, "timeout_ms");
  return {
    requestId: requestId.slice(0, 128),
    method: typeof method === "string" ? method : "",
    body: field(payload, "body"),
    timeoutMs: typeof timeout === "number" && Number.isFinite(timeout) && timeout > 0 ? timeout : 0,
  };
}

/** The runtime does not exist: the daemon re-registers. `runtime_id` is echoed exactly as it was sent. */
export function runtimeGoneAckFrame(sentRuntimeId: string): string {
  return frame(FRAME_TYPES.heartbeatAck, { runtime_id: sentRuntimeId, status: "runtime_gone", runtime_gone: true });
}

/** An action waits for the runtime's daemon: today's daemon beats over HTTP at once to fetch it. */
export function pendingWorkFrame(runtimeId: string): string {
  return frame(FRAME_TYPES.pendingWork, { runtime_id: runtimeId });
}

export function runtimeProfilesChangedFrame(workspaceId: string, profileId?: string): string {
  return frame(FRAME_TYPES.runtimeProfilesChanged, profileId ? { workspace_id: workspaceId, runtime_profile_id: profileId } : { workspace_id: workspaceId });
}

export function workspacesChangedFrame(): string {
  return frame(FRAME_TYPES.workspacesChanged, {});
}

export interface InboundFrame {
  type: string;
  payload: unknown;
}

/**
 * A frame from the daemon, or undefined when it is not a JSON object. Keys
 * match case-insensitively, as Go's decoder matched them.
 */
export function parseInbound(data: string): InboundFrame | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const type = field(value, "type");
  return { type: typeof type === "string" ? type : "", payload: field(value, "payload") };
}

/** The payload of a `daemon:heartbeat`, or undefined when it has no usable runtime id. */
export function heartbeatPayload(payload: unknown): { runtimeId: string; supportsBatchImport: boolean } | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const runtimeId = field(payload, "runtime_id");
  const batch = field(payload, "supports_batch_import");
  if (typeof runtimeId !== "string" || runtimeId === "") return undefined;
  return { runtimeId, supportsBatchImport: batch === true };
}

function field(object: object, name: string): unknown {
  const record = object as Record<string, unknown>;
  if (name in record) return record[name];
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : record[key];
}

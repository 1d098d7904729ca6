import { hasCode, status } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import type { Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { GatewayClients } from "../clients.js";
import { HttpError } from "../wire/errors.js";
import type { Authenticator, Caller } from "./authenticator.js";
import { requireDaemonWorkspace } from "./checks.js";

/**
 * R: the runtime named in a daemon route. Only a real absence answers 404
 * "runtime not found" (the daemon re-registers on it); any other failure is a
 * 500, then W decides access (404 "not found" across workspaces).
 */
export async function requireRuntime(clients: GatewayClients, auth: Authenticator, caller: Caller, runtimeId: string): Promise<Runtime> {
  const id = parseUuid(runtimeId);
  if (!id) throw new HttpError(400, "invalid runtime_id");
  let runtime: Runtime | undefined;
  try {
    ({ runtime } = await clients.registry.getRuntime({ runtimeId: id }));
  } catch (error) {
    if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, "runtime not found");
    throw new HttpError(500, "failed to load runtime");
  }
  await requireDaemonWorkspace(caller, runtime!.workspaceId, auth);
  return runtime!;
}

/** T: the task named in a daemon route; 404 "task not found" only when it does not exist (the daemon stops the agent on it). */
export async function requireTask(clients: GatewayClients, auth: Authenticator, caller: Caller, taskId: string): Promise<Task> {
  const id = parseUuid(taskId);
  if (!id) throw new HttpError(400, "invalid task_id");
  let task: Task | undefined;
  try {
    ({ task } = await clients.tasks.getTask({ taskId: id }));
  } catch (error) {
    if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, "task not found");
    throw new HttpError(500, "failed to load task");
  }
  if (!task!.workspaceId) throw new HttpError(404, "task not found");
  await requireDaemonWorkspace(caller, task!.workspaceId, auth);
  return task!;
}

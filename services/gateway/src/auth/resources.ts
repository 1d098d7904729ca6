import { TtlCache } from "@controlplane/cache";
import { hasCode, status } from "@controlplane/grpc";
import { parseUuid } from "@controlplane/ids";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import type { Task } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { GatewayClients } from "../clients.js";
import { HttpError, httpErrorFromGrpc, required } from "../wire/errors.js";
import type { Authenticator, Caller } from "./authenticator.js";
import { knownDaemonWorkspace, requireDaemonWorkspace } from "./checks.js";

/** A task's or runtime's workspace never changes: remembered this long once seen. */
const WORKSPACE_OF_TTL_MS = 10 * 60_000;

/**
 * R and T, the runtime and task checks of daemon routes. Runtimes are read
 * through a cache the registry's `runtime.deleted` events keep honest (a
 * deleted runtime answers 404 at once; within the TTL should the event be
 * missed); a
 * task's workspace is remembered from claims and reads, so the reports a
 * daemon sends about a task it claimed need no extra lookup.
 */
export class Resources {
  private readonly runtimes: TtlCache<Runtime>;
  private readonly taskWorkspaces = new TtlCache<string>(WORKSPACE_OF_TTL_MS, 200_000);
  private readonly runtimeWorkspaces = new TtlCache<string>(WORKSPACE_OF_TTL_MS, 500_000);

  constructor(
    private readonly clients: GatewayClients,
    private readonly auth: Authenticator,
    runtimeTtlMs: number,
  ) {
    this.runtimes = new TtlCache(runtimeTtlMs);
  }

  /** Only a real absence answers 404 "runtime not found" (the daemon re-registers on it). */
  async runtime(caller: Caller, runtimeId: string): Promise<Runtime> {
    const id = parseUuid(runtimeId);
    if (!id) throw new HttpError(400, "invalid runtime_id");
    let runtime = this.runtimes.get(id);
    if (!runtime) {
      const answer = await this.clients.registry.getRuntime({ runtimeId: id }).catch((error: unknown) => {
        if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, "runtime not found");
        throw httpErrorFromGrpc(error, "failed to load runtime");
      });
      runtime = required(answer.runtime, "the runtime");
      this.runtimes.set(id, runtime);
    }
    await requireDaemonWorkspace(caller, runtime.workspaceId, this.auth);
    return runtime;
  }

  /**
   * R for the heartbeat, the hottest route: only the runtime's workspace is
   * needed, and it never changes, so it is remembered. A new gateway meets a
   * whole fleet at once: its first lookups go to the registry in batches.
   * Whether the runtime still exists is liveness's answer to the beat itself.
   */
  async runtimeAccess(caller: Caller, runtimeId: string): Promise<string> {
    const id = parseUuid(runtimeId);
    if (!id) throw new HttpError(400, "invalid runtime_id");
    const workspaceId = await this.runtimeWorkspace(id, "failed to load runtime");
    if (workspaceId === undefined) throw new HttpError(404, "runtime not found");
    await requireDaemonWorkspace(caller, workspaceId, this.auth);
    return id;
  }

  /** runtime's answer when the runtime and the caller's access are cached, without waiting; undefined: await runtime. */
  knownRuntime(caller: Caller, runtimeId: string): Runtime | undefined {
    const id = parseUuid(runtimeId);
    const runtime = id ? this.runtimes.get(id) : undefined;
    return runtime !== undefined && knownDaemonWorkspace(caller, runtime.workspaceId, this.auth) ? runtime : undefined;
  }

  /** runtimeAccess's answer when all it needs is cached, without waiting; undefined: await runtimeAccess. */
  knownRuntimeAccess(caller: Caller, runtimeId: string): string | undefined {
    const id = parseUuid(runtimeId);
    if (!id) return undefined;
    const workspaceId = this.runtimeWorkspaces.get(id);
    return workspaceId !== undefined && knownDaemonWorkspace(caller, workspaceId, this.auth) ? id : undefined;
  }

  /**
   * The workspace of the runtime with canonical id `id`, remembered once
   * seen; undefined when there is no such runtime. A failed lookup answers
   * 5xx with `failureMessage`.
   */
  async runtimeWorkspace(id: string, failureMessage: string): Promise<string | undefined> {
    let workspaceId = this.runtimeWorkspaces.get(id);
    if (workspaceId !== undefined) return workspaceId;
    try {
      workspaceId = await this.clients.runtimeWorkspaces.submit(id);
    } catch (error) {
      throw httpErrorFromGrpc(error, failureMessage);
    }
    if (workspaceId !== undefined) this.runtimeWorkspaces.set(id, workspaceId);
    return workspaceId;
  }

  /** T with the task's current row (for routes that answer from it). */
  async task(caller: Caller, taskId: string): Promise<Task> {
    const id = parseUuid(taskId);
    if (!id) throw new HttpError(400, "invalid task_id");
    const answer = await this.clients.tasks.getTask({ taskId: id }).catch((error: unknown) => {
      if (hasCode(error, status.NOT_FOUND)) throw new HttpError(404, "task not found");
      throw httpErrorFromGrpc(error, "failed to load task");
    });
    const task = required(answer.task, "the task");
    if (!task.workspaceId) throw new HttpError(404, "task not found");
    this.taskWorkspaces.set(task.id, task.workspaceId);
    await requireDaemonWorkspace(caller, task.workspaceId, this.auth);
    return task;
  }

  /**
   * T for routes that act on the task: access is checked against its known
   * workspace; the service then answers 404 "task not found" itself if the
   * task is gone. Returns the canonical id.
   */
  async taskAccess(caller: Caller, taskId: string): Promise<string> {
    const id = parseUuid(taskId);
    if (!id) throw new HttpError(400, "invalid task_id");
    const workspaceId = this.taskWorkspaces.get(id);
    if (workspaceId === undefined) return (await this.task(caller, id)).id;
    await requireDaemonWorkspace(caller, workspaceId, this.auth);
    return id;
  }

  /** taskAccess's answer when the task's workspace and the caller's access are cached, without waiting; undefined: await taskAccess. */
  knownTaskAccess(caller: Caller, taskId: string): string | undefined {
    const id = parseUuid(taskId);
    if (!id) return undefined;
    const workspaceId = this.taskWorkspaces.get(id);
    return workspaceId !== undefined && knownDaemonWorkspace(caller, workspaceId, this.auth) ? id : undefined;
  }

  /** A deleted runtime (the registry's `runtime.deleted`) answers 404 from its next request on. */
  forgetRuntime(runtimeId: string): void {
    this.runtimes.delete(runtimeId);
  }

  /** Claim answers teach the gateway where their tasks live. */
  rememberTask(taskId: string, workspaceId: string): void {
    this.taskWorkspaces.set(taskId, workspaceId);
  }
}

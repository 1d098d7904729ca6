import { WebSocket } from "ws";

/**
 * Today's daemon's claim loop, as the census describes it (HEAD-DAEMON.md
 * §1.2 H14–H16, §4.3): one machine-level poller with `slots` execution
 * slots. Each cycle it takes every free slot and makes one batch claim
 * (POST /api/daemon/tasks/claim, max_tasks = free slots) for all of its
 * runtimes; each task it gets runs in a slot (start, the agent's run,
 * complete). It asks again at once only when the claim filled every slot it
 * asked for; otherwise it sleeps 30 s, or until a wake-up: a
 * `daemon:task_available` frame on its socket, or one of its tasks ending.
 * Wake-ups coalesce (a one-slot channel), as the daemon's do.
 */
export interface SimulatedDaemonOptions {
  gatewayUrl: string;
  token: string;
  daemonId: string;
  runtimeIds: string[];
  slots: number;
  /** The agent's run: what a slot spends between start and complete. */
  run: (task: ClaimedTask) => Promise<void>;
  /** Called when a task completed. */
  onDone?: (task: ClaimedTask, timing: { claimedAt: number; doneAt: number }) => void;
}

export interface ClaimedTask {
  id: string;
  runtime_id: string;
  agent_id: string;
}

/** The daemon's poll interval when nothing wakes it. */
const POLL_INTERVAL_MS = 30_000;
const CAPABILITIES = "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,remote-mcp-v1,local-worktree-v1,rpc-v1";

export class SimulatedDaemon {
  private busy = 0;
  private stopped = false;
  private woken = false;
  private wakeUp: (() => void) | undefined;
  private socket: WebSocket | undefined;
  private loop: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();
  /** Batch claims made, and tasks they answered. */
  readonly stats = { claims: 0, tasks: 0, wakeups: 0, busySlotMs: 0, pollTimeouts: 0 };
  /** Wall time of each batch claim. */
  readonly claimMs: number[] = [];
  /** Each moment a slot was freed and when it was next filled (refill gaps). */
  readonly refillGapsMs: number[] = [];
  private readonly freedAt: number[] = [];

  constructor(private readonly options: SimulatedDaemonOptions) {}

  /** Opens the socket (wake-ups), then starts the poller. */
  async start(): Promise<void> {
    const { gatewayUrl, token, runtimeIds } = this.options;
    const query = new URLSearchParams({ runtime_ids: [...runtimeIds].sort().join(",") });
    const socket = new WebSocket(`${gatewayUrl.replace(/^http/, "ws")}/api/daemon/ws?${query}`, {
      headers: { authorization: `Bearer ${token}`, "x-client-platform": "daemon", "x-client-capabilities": CAPABILITIES },
    });
    socket.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string };
      if (frame.type === "daemon:task_available") {
        this.stats.wakeups++;
        this.wake();
      }
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    this.socket = socket;
    this.loop = this.poll();
  }

  /** Stops claiming, waits for the tasks in its slots, closes the socket. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
    await Promise.all(this.running);
    this.socket?.close();
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.stats.pollTimeouts++;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = undefined;
    this.woken = false;
  }

  private async poll(): Promise<void> {
    while (!this.stopped) {
      const free = this.options.slots - this.busy;
      if (free === 0) {
        await this.sleep(POLL_INTERVAL_MS);
        continue;
      }
      let tasks: ClaimedTask[] = [];
      try {
        tasks = await this.claim(free);
      } catch {
        // The daemon releases its slots and sleeps 30 s or until a wake-up.
      }
      const now = Date.now();
      for (const task of tasks) {
        const freed = this.freedAt.shift();
        if (freed !== undefined) this.refillGapsMs.push(now - freed);
        this.runInSlot(task, now);
      }
      if (tasks.length > 0 && tasks.length === free) continue;
      await this.sleep(POLL_INTERVAL_MS);
    }
  }

  private async claim(maxTasks: number): Promise<ClaimedTask[]> {
    this.stats.claims++;
    const started = performance.now();
    const answer = await this.post("/api/daemon/tasks/claim", {
      daemon_id: this.options.daemonId,
      runtime_ids: this.options.runtimeIds,
      max_tasks: maxTasks,
    });
    this.claimMs.push(performance.now() - started);
    if (answer.status !== 200) throw new Error(`batch claim: ${answer.status}`);
    const tasks = (answer.json as { tasks: ClaimedTask[] }).tasks;
    this.stats.tasks += tasks.length;
    return tasks;
  }

  private runInSlot(task: ClaimedTask, claimedAt: number): void {
    this.busy++;
    const work = (async () => {
      try {
        await this.post(`/api/daemon/tasks/${task.id}/start`, {});
        await this.options.run(task);
        await this.post(`/api/daemon/tasks/${task.id}/complete`, { output: "done" });
        this.options.onDone?.(task, { claimedAt, doneAt: Date.now() });
      } finally {
        this.busy--;
        this.stats.busySlotMs += Date.now() - claimedAt;
        this.freedAt.push(Date.now());
        // A finished task wakes the poller (D:4807-4815).
        this.wake();
      }
    })();
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  private async post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(this.options.gatewayUrl + path, {
      method: "POST",
      headers: {
        authorization: `Bearer ${this.options.token}`,
        "content-type": "application/json",
        "x-client-capabilities": CAPABILITIES,
      },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as unknown };
  }
}

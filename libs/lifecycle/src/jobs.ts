import { trySessionLock, type AdvisoryLock } from "@controlplane/db";
import type { Logger } from "@controlplane/log";
import { counter, gauge, histogram } from "@controlplane/metrics";

const runs = counter({
  name: "background_job_runs_total",
  help: "Passes of a background job that ran (not those skipped because another replica held its lock), failed ones included.",
  labelNames: ["job_name"] as const,
});
const failures = counter({
  name: "background_job_failures_total",
  help: "Passes of a background job that threw (logged with the cause).",
  labelNames: ["job_name"] as const,
});
const lockBusy = counter({
  name: "background_job_lock_busy_total",
  help: "Passes of a background job skipped because another replica held its advisory lock.",
  labelNames: ["job_name"] as const,
});
const duration = histogram({
  name: "background_job_duration_seconds",
  help: "Duration of the passes of a background job that ran.",
  labelNames: ["job_name"] as const,
});
const lastSuccess = gauge({
  name: "background_job_last_success_timestamp_seconds",
  help: "Unix time the last successful pass of a background job ended (alert when it falls behind its interval).",
  labelNames: ["job_name"] as const,
});

/** What a pass can say about itself to its job. */
export interface JobPass {
  /**
   * The pass took its lock itself (a transaction lock inside its own
   * transaction) and found it held by another replica: counted as lock-busy,
   * not as a run.
   */
  lockBusy(): void;
}

export interface PeriodicJobOptions<R> {
  /** Metric label and log field: `<service>_<job>`, e.g. `taskqueue_sweeper`. */
  name: string;
  /** Time between two timer passes (the first comes one interval after start). */
  intervalMs: number;
  log: Logger;
  /** The pass. */
  run: (pass: JobPass) => Promise<R>;
  /**
   * Held for the whole pass as a session lock on a connection of its own
   * (see trySessionLock); a pass that does not get it is skipped. For passes
   * made of several transactions. A pass that is one transaction takes a
   * transaction lock inside it instead (tryTransactionLock, then lockBusy()).
   */
  sessionLock?: { lock: AdvisoryLock; databaseUrl: string };
  /** Timer passes start only this long after start (a pass called with runOnce is not held back). */
  startDelayMs?: number;
  /** One more pass while stopping, after the running one (e.g. write what is buffered). */
  finalPassOnStop?: boolean;
  /** The info line (message and fields) a successful pass is worth; undefined logs nothing. */
  report?: (result: R) => ({ msg: string } & Record<string, unknown>) | undefined;
}

export type PassOutcome<R> = { status: "ran"; result: R } | { status: "lock_busy" };

/** A failed pass, with what it threw as its cause. */
export class JobPassError extends Error {
  constructor(
    readonly job: string,
    cause: unknown,
  ) {
    // The cause's message is not repeated: loggers and readers append it from `cause`.
    super(`${job}: pass failed`, { cause });
    this.name = "JobPassError";
  }
}

/**
 * A job that runs a pass every interval until stopped. Passes of one job
 * never overlap: a timer tick that finds a pass running (or waiting) is
 * dropped, and runOnce waits for the running pass before starting its own.
 * Across replicas, the optional advisory lock lets one of them act.
 */
export class PeriodicJob<R> {
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  /** The last pass started or queued; every pass chains on it. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Passes running or queued. */
  private pending = 0;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: PeriodicJobOptions<R>) {}

  get name(): string {
    return this.options.name;
  }

  /** Starts the timer; returns the job (to hand to whatever stops it). */
  start(): this {
    if (this.timer || this.stopping) return this;
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    this.timer.unref();
    return this;
  }

  /**
   * Runs one pass now, after the one running if any: for tests and for a
   * pass at start. Counted, timed and logged like a timer pass; a failure is
   * thrown (a JobPassError with the cause) as well as logged.
   */
  runOnce(): Promise<PassOutcome<R>> {
    this.pending++;
    const pass = this.tail.then(() => this.pass());
    this.tail = pass.then(
      () => this.pending--,
      () => this.pending--,
    );
    return pass;
  }

  /** Stops the timer and waits for the running pass (then the final one, if asked for). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.timer);
      this.timer = undefined;
      await this.tail;
      if (this.options.finalPassOnStop) await this.runOnce().catch(() => undefined);
    })();
    return this.stopping;
  }

  private tick(): void {
    if (this.pending > 0) {
      this.options.log.debug({ job: this.name }, "background job still running; tick skipped");
      return;
    }
    if (this.options.startDelayMs && Date.now() - this.startedAt < this.options.startDelayMs) return;
    // Already counted and logged by the pass.
    this.runOnce().catch(() => undefined);
  }

  private async pass(): Promise<PassOutcome<R>> {
    const { name, log } = this.options;
    // Not `job`: the scrape keeps its own job label (the ServiceMonitor honours ours).
    const labels = { job_name: name };
    let held: Awaited<ReturnType<typeof trySessionLock>> = null;
    const started = process.hrtime.bigint();
    try {
      if (this.options.sessionLock) {
        held = await trySessionLock(this.options.sessionLock.databaseUrl, this.options.sessionLock.lock);
        if (!held) {
          lockBusy.inc(labels);
          return { status: "lock_busy" };
        }
      }
      let busy = false;
      const result = await this.options.run({
        lockBusy: () => {
          busy = true;
        },
      });
      if (busy) {
        lockBusy.inc(labels);
        return { status: "lock_busy" };
      }
      runs.inc(labels);
      duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      lastSuccess.set(labels, Date.now() / 1000);
      if (held?.lost) log.warn({ job: name }, "background job lost its lock's connection during the pass; another replica may have run too");
      const line = this.options.report?.(result);
      if (line) {
        const { msg, ...fields } = line;
        log.info({ job: name, ...fields }, msg);
      }
      return { status: "ran", result };
    } catch (error) {
      runs.inc(labels);
      failures.inc(labels);
      duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      const failure = new JobPassError(name, error);
      log.warn({ err: failure, job: name }, "background job pass failed");
      throw failure;
    } finally {
      await held?.release();
    }
  }
}

/** Creates and starts a periodic job. */
export function startPeriodicJob<R>(options: PeriodicJobOptions<R>): PeriodicJob<R> {
  return new PeriodicJob(options).start();
}

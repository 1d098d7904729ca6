import type { Logger } from "@controlplane/log";
import type { Stoppable } from "./stop.js";

export * from "./host.js";
export * from "./jobs.js";
export * from "./stop.js";
export * from "./ports.js";

/** Hard limit on a graceful stop; past it the process exits anyway. */
const STOP_TIMEOUT_MS = 30_000;

/**
 * Runs `start` and keeps the process alive until SIGTERM or SIGINT, then
 * stops what it returned. A start-up failure prints one line (the message
 * names the URL or variable at fault) and exits with status 1.
 */
export async function runUntilSignal(log: Logger, start: () => Promise<Stoppable>): Promise<void> {
  let running: Stoppable;
  try {
    running = await start();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    log.debug({ err: error }, "start failed");
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    const timer = setTimeout(() => {
      log.error("graceful stop timed out; exiting");
      process.exit(1);
    }, STOP_TIMEOUT_MS);
    timer.unref();
    running.stop().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** Runs a one-shot command (migrations, admin tasks): exit 0 on success, one line and exit 1 on failure. */
export async function runOnce(log: Logger, work: () => Promise<void>): Promise<never> {
  try {
    await work();
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    log.debug({ err: error }, "command failed");
    process.exit(1);
  }
}

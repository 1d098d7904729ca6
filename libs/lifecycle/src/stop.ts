import type { Logger } from "@controlplane/log";

/** Something started that must be stopped in reverse order. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** Stops each in reverse order of start, continuing past failures. */
export async function stopAll(log: Logger, parts: Array<Stoppable | (() => Promise<void>)>): Promise<void> {
  for (const part of [...parts].reverse()) {
    try {
      await (typeof part === "function" ? part() : part.stop());
    } catch (error) {
      log.warn({ err: error }, "stop step failed");
    }
  }
}

/**
 * Polls `check` until it returns something other than undefined/false or an
 * empty array, or fails after `timeoutMs` with `description`. The way tests
 * wait for asynchronous effects, instead of sleeping.
 *
 * An empty array is "not yet": a wait for the rows or events matching
 * something would otherwise end at once, before any arrived, and a check
 * like `length === 1` after it would race the effect instead of seeing it.
 *
 * The deadline only ends a wait for something that is not going to happen;
 * it asserts nothing about speed (a test that means "within N ms" checks
 * times derived from its configuration). So the default is generous: on a
 * loaded 2-core machine an event chain the services run in milliseconds
 * can take seconds.
 */
export async function waitFor<T>(
  description: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (arrived(value)) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${lastError ? `: ${String(lastError)}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function arrived<T>(value: T | undefined | false): value is T {
  return value !== undefined && value !== false && !(Array.isArray(value) && value.length === 0);
}

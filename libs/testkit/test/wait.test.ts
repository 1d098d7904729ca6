import test from "ava";
import { waitFor } from "../src/wait.js";

/** A check answering `answers` in turn, then the last one for good, counting its calls. */
function answering<T>(...answers: T[]) {
  let calls = 0;
  return {
    check: () => answers[Math.min(calls++, answers.length - 1)],
    calls: () => calls,
  };
}

test("an empty array is not yet: the wait goes on until something is in it", async (t) => {
  const { check, calls } = answering<number[]>([], [], [7]);
  t.deepEqual(await waitFor("a row", check, { intervalMs: 1 }), [7]);
  t.is(calls(), 3);
});

test("undefined and false are not yet; any other value ends the wait", async (t) => {
  const { check, calls } = answering<number | undefined | false>(undefined, false, 0);
  t.is(await waitFor("a value", check, { intervalMs: 1 }), 0, "zero is a value");
  t.is(calls(), 3);
  t.is(await waitFor("a string", () => ""), "", "so is the empty string");
  t.deepEqual(await waitFor("an object", () => ({})), {});
});

test("a wait whose check only ever finds nothing fails with its description", async (t) => {
  const error = await t.throwsAsync(waitFor("the dispatch event", () => [] as string[], { timeoutMs: 20, intervalMs: 1 }));
  t.regex(error.message, /^timed out after 20 ms waiting for the dispatch event$/);
});

test("a check that keeps throwing fails the wait with its last error", async (t) => {
  let calls = 0;
  const error = await t.throwsAsync(
    waitFor(
      "a reachable service",
      () => {
        throw new Error(`refused ${++calls}`);
      },
      { timeoutMs: 20, intervalMs: 1 },
    ),
  );
  t.regex(error.message, new RegExp(`waiting for a reachable service: Error: refused ${calls}$`));
});

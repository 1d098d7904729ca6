import test from "ava";
import { Coalescer } from "../src/coalesce.js";

/** A stand-in statement whose answers the test releases by hand. */
function heldStatements() {
  const calls: Array<{ keys: string[]; inputs: string[]; answer(values: Record<string, number>): void; fail(error: Error): void }> = [];
  const run = (batch: ReadonlyMap<string, string>) =>
    new Promise<ReadonlyMap<string, number>>((resolve, reject) => {
      const answer = (values: Record<string, number>) => resolve(new Map(Object.entries(values)));
      calls.push({ keys: [...batch.keys()], inputs: [...batch.values()], answer, fail: reject });
    });
  return { calls, run };
}

/** Lets every promise reaction already due run (the coalescer sends its next statement in one). */
const reactionsRun = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a call made while nothing runs goes out at once, alone", async (t) => {
  const { calls, run } = heldStatements();
  const starts = new Coalescer(run, { maxBatch: 10, maxInFlight: 1 });
  const a = starts.get("a", "");
  await Promise.resolve();
  t.deepEqual(
    calls.map((c) => c.keys),
    [["a"]],
    "sent before any timer or I/O could run",
  );
  calls[0]!.answer({ a: 1 });
  t.is(await a, 1);
});

test("calls made in one synchronous run go out together, as a batch call's items arrive", async (t) => {
  const { calls, run } = heldStatements();
  const starts = new Coalescer(run, { maxBatch: 10, maxInFlight: 2 });
  // Each a few reactions into its handler, as items of one gRPC batch reach the coalescer.
  const answers = ["a", "b", "c"].map(async (key) => {
    await Promise.resolve();
    return starts.get(key, "");
  });
  await reactionsRun();
  t.deepEqual(
    calls.map((c) => c.keys),
    [["a", "b", "c"]],
  );
  calls[0]!.answer({ a: 1, b: 2, c: 3 });
  t.deepEqual(await Promise.all(answers), [1, 2, 3]);
});

test("calls that arrive while the statements run share the next one", async (t) => {
  const { calls, run } = heldStatements();
  const starts = new Coalescer(run, { maxBatch: 10, maxInFlight: 2 });
  const a = starts.get("a", "");
  await reactionsRun();
  const b = starts.get("b", "");
  await reactionsRun();
  const rest = ["c", "d", "e"].map((key) => starts.get(key, ""));
  await reactionsRun();
  t.deepEqual(
    calls.map((c) => c.keys),
    [["a"], ["b"]],
    "two go at once, the rest wait",
  );
  calls[1]!.answer({ b: 2 });
  await reactionsRun();
  t.deepEqual(calls[2]?.keys, ["c", "d", "e"], "the waiting three go in one statement when one finishes");
  calls[0]!.answer({ a: 1 });
  calls[2]!.answer({ c: 3, e: 5 });
  t.deepEqual(await Promise.all([a, b, ...rest]), [1, 2, 3, undefined, 5], "a key the statement did not find is undefined");
});

test("a batch holds at most maxBatch keys", async (t) => {
  const { calls, run } = heldStatements();
  const starts = new Coalescer(run, { maxBatch: 2, maxInFlight: 1 });
  const answers = ["a", "b", "c", "d", "e"].map((key) => starts.get(key, ""));
  await reactionsRun();
  t.deepEqual(calls[0]?.keys, ["a", "b"]);
  calls[0]!.answer({ a: 1, b: 2 });
  await reactionsRun();
  t.deepEqual(calls[1]?.keys, ["c", "d"]);
  calls[1]!.answer({ c: 3, d: 4 });
  await reactionsRun();
  t.deepEqual(calls[2]?.keys, ["e"]);
  calls[2]!.answer({ e: 5 });
  t.deepEqual(await Promise.all(answers), [1, 2, 3, 4, 5]);
});

test("a key asked twice in one statement: the first caller gets the value, the second undefined", async (t) => {
  const { calls, run } = heldStatements();
  const starts = new Coalescer(run, { maxBatch: 10, maxInFlight: 1 });
  const first = starts.get("x", "");
  await reactionsRun();
  const again = starts.get("y", "first");
  const twice = starts.get("y", "second");
  calls[0]!.answer({ x: 1 });
  t.is(await first, 1);
  await reactionsRun();
  t.deepEqual(calls[1]?.keys, ["y"], "the key is sent once");
  t.deepEqual(calls[1]?.inputs, ["first"], "with its first caller's input");
  calls[1]!.answer({ y: 7 });
  t.is(await again, 7);
  t.is(await twice, undefined);
});

test("a failed statement fails the calls it carried, and later calls still go out", async (t) => {
  const { calls, run } = heldStatements();
  const starts = new Coalescer(run, { maxBatch: 10, maxInFlight: 1 });
  const first = starts.get("a", "");
  await reactionsRun();
  const second = starts.get("b", "");
  const third = starts.get("c", "");
  const cause = new Error("connection lost");
  calls[0]!.fail(cause);
  t.is(await t.throwsAsync(first), cause);
  await reactionsRun();
  calls[1]!.fail(cause);
  await t.throwsAsync(second);
  await t.throwsAsync(third, { is: cause }, "both keys of the failed statement fail");
  await reactionsRun();
  const later = starts.get("d", "");
  await reactionsRun();
  calls[2]!.answer({ d: 4 });
  t.is(await later, 4);
});

test("maxBatch and maxInFlight below one are refused", (t) => {
  const { run } = heldStatements();
  t.throws(() => new Coalescer(run, { maxBatch: 0, maxInFlight: 1 }), { instanceOf: RangeError });
  t.throws(() => new Coalescer(run, { maxBatch: 1, maxInFlight: 0 }), { instanceOf: RangeError });
});

import test from "ava";
import { currentScope, hasCode, runInScope, status } from "@controlplane/grpc";
import { CodedError, MicroBatcher, type Settled } from "../src/batcher.js";

/** A batcher whose calls are recorded and answered by `answer`. */
function recording<I, R>(answer: (items: I[]) => Promise<Array<Settled<R>>>, maxBatch = 256) {
  const calls: I[][] = [];
  const batcher = new MicroBatcher<I, R>(async (items) => {
    calls.push(items);
    return answer(items);
  }, maxBatch);
  return { calls, batcher };
}

const echo = async (items: string[]) => items.map((item) => ({ ok: true as const, value: `answer to ${item}` }));

/** Submits each item from a callback of its own, all in one check phase, as requests arriving in one loop turn are. */
function submitFromSeparateCallbacks<I, R>(batcher: MicroBatcher<I, R>, items: I[]): Promise<Array<PromiseSettledResult<R>>> {
  return Promise.allSettled(items.map((item) => new Promise<R>((resolve, reject) => setImmediate(() => batcher.submit(item).then(resolve, reject)))));
}

test("items submitted from separate callbacks of one loop turn go out in one call, each answered on its own", async (t) => {
  const { calls, batcher } = recording(echo);
  const results = await submitFromSeparateCallbacks(batcher, ["a", "b", "c"]);
  t.deepEqual(calls, [["a", "b", "c"]]);
  t.deepEqual(results, ["a", "b", "c"].map((item) => ({ status: "fulfilled", value: `answer to ${item}` })));
});

test("a failed item fails only its caller, with its own error", async (t) => {
  const { batcher } = recording<string, string>(async (items) =>
    items.map((item) => (item === "gone" ? { ok: false, error: new CodedError(status.NOT_FOUND, "runtime not found") } : { ok: true, value: item })),
  );
  const [kept, gone] = await submitFromSeparateCallbacks(batcher, ["kept", "gone"]);
  t.deepEqual(kept, { status: "fulfilled", value: "kept" });
  t.is(gone!.status, "rejected");
  t.true(hasCode((gone as PromiseRejectedResult).reason, status.NOT_FOUND));
});

test("a failed call fails every item in it; a short answer fails the items it left out", async (t) => {
  const down = recording<string, string>(async () => {
    throw new CodedError(status.UNAVAILABLE, "liveness down");
  });
  const failed = await submitFromSeparateCallbacks(down.batcher, ["a", "b"]);
  t.true(failed.every((r) => r.status === "rejected" && hasCode(r.reason, status.UNAVAILABLE)));

  const short = recording<string, string>(async (items) => [{ ok: true, value: items[0]! }]);
  const [first, second] = await submitFromSeparateCallbacks(short.batcher, ["a", "b"]);
  t.deepEqual(first, { status: "fulfilled", value: "a" });
  t.is(second?.status, "rejected");
  t.true(hasCode((second as PromiseRejectedResult).reason, status.INTERNAL));
});

test("at most maxBatch items a call, and nothing is memoised: a repeated item is sent again", async (t) => {
  const { calls, batcher } = recording(echo, 2);
  await submitFromSeparateCallbacks(batcher, ["a", "b", "c", "d", "a"]);
  t.deepEqual(calls, [["a", "b"], ["c", "d"], ["a"]]);
  await batcher.submit("a");
  t.is(calls.length, 4);
});

test("the call runs outside the scope of the caller that opened the batch", async (t) => {
  const scopes: unknown[] = [];
  const batcher = new MicroBatcher<string, string>(async (items) => {
    scopes.push(currentScope());
    return echo(items);
  }, 256);
  const controller = new AbortController();
  t.is(await runInScope({ requestId: "first-caller", signal: controller.signal }, () => batcher.submit("a")), "answer to a");
  t.deepEqual(scopes, [undefined]);
});

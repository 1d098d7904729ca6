import test from "ava";
import { ReadThrough, TtlCache } from "../src/index.js";

/** A loader that counts its calls and answers what `next` says. */
function loader<V>(next: (key: string, call: number) => Promise<V>) {
  const counter = { calls: 0 };
  const load = (key: string) => next(key, ++counter.calls);
  return { counter, load };
}

test("concurrent misses of one key share a single load", async (t) => {
  const { counter, load } = loader(async (key) => `value of ${key}`);
  const cache = new ReadThrough(new TtlCache<string>(60_000), load);
  const values = await Promise.all(Array.from({ length: 50 }, () => cache.get("k")));
  t.true(values.every((v) => v === "value of k"));
  t.is(counter.calls, 1);
  t.is(await cache.get("k"), "value of k");
  t.is(counter.calls, 1, "then served from the cache");
});

test("values the keep rule refuses are answered but not cached", async (t) => {
  const { counter, load } = loader<string | null>(async () => null);
  const cache = new ReadThrough(new TtlCache<string | null>(60_000), load, { keep: (v) => v !== null });
  t.is(await cache.get("k"), null);
  t.is(await cache.get("k"), null);
  t.is(counter.calls, 2);
});

test("a failed load is not cached and reaches every waiting reader", async (t) => {
  const { counter, load } = loader<string>(async (_key, call) => {
    if (call === 1) throw new Error("registry down");
    return "ok";
  });
  const cache = new ReadThrough(new TtlCache<string>(60_000), load);
  const results = await Promise.allSettled([cache.get("k"), cache.get("k")]);
  t.deepEqual(
    results.map((r) => r.status),
    ["rejected", "rejected"],
  );
  t.is(await cache.get("k"), "ok");
  t.is(counter.calls, 2);
});

test("an entry near its expiry is served while one background load refreshes it", async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { counter, load } = loader<{ v: number; until: Date }>(async (_key, call) => {
    if (call > 1) await gate;
    // Each value says it expires soon, so every hit is inside the refresh window.
    return { v: call, until: new Date(Date.now() + 5_000) };
  });
  const cache = new ReadThrough(new TtlCache<{ v: number; until: Date }>(60_000), load, {
    notAfter: (value) => value.until,
    refreshAheadMs: 10_000,
  });
  t.is((await cache.get("k")).v, 1);
  const during = await Promise.all(Array.from({ length: 20 }, () => cache.get("k")));
  t.true(
    during.every((value) => value.v === 1),
    "the old value is served while the refresh runs",
  );
  t.is(counter.calls, 2, "twenty hits started one refresh");
  release();
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.is((await cache.get("k")).v, 2, "the refreshed value replaced it");
});

test("peek answers a hit without waiting, a miss with undefined and no load, and refreshes ahead as get does", async (t) => {
  const { counter, load } = loader<{ v: number; until: Date }>(async (_key, call) => ({ v: call, until: new Date(Date.now() + 5_000) }));
  const cache = new ReadThrough(new TtlCache<{ v: number; until: Date }>(60_000), load, {
    notAfter: (value) => value.until,
    refreshAheadMs: 10_000,
  });
  t.is(cache.peek("k"), undefined);
  t.is(counter.calls, 0, "a miss loads nothing: the caller awaits get");
  t.is((await cache.get("k")).v, 1);
  t.is(cache.peek("k")?.v, 1, "a hit is the value itself, not a promise");
  t.is(counter.calls, 2, "a hit inside the refresh window started a reload");
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.is(cache.peek("k")?.v, 2, "the reloaded value replaced it");
  cache.forget("k");
  t.is(cache.peek("k"), undefined, "a forgotten entry is a miss at once");
});

test("a failed refresh leaves the entry to expire on time", async (t) => {
  const { counter, load } = loader<string>(async (_key, call) => {
    if (call > 1) throw new Error("registry down");
    return "first";
  });
  const cache = new ReadThrough(new TtlCache<string>(60_000), load, { refreshAheadMs: 120_000 });
  t.is(await cache.get("k"), "first");
  t.is(await cache.get("k"), "first");
  t.is(await cache.get("k"), "first");
  t.true(counter.calls >= 2, "refreshes were tried");
  t.is(cache.cache.get("k"), "first");
});

test("forget drops the entry; a load that started before it is not stored and its readers get a fresh one", async (t) => {
  let release!: (value: string) => void;
  const { counter, load } = loader<string>((_key, call) => (call === 1 ? new Promise((resolve) => (release = resolve)) : Promise.resolve("fresh")));
  const cache = new ReadThrough(new TtlCache<string>(60_000), load);
  cache.cache.set("k", "cached");
  cache.forget("k");
  t.is(cache.cache.get("k"), undefined, "the entry is gone at once");
  const overtaken = cache.get("k");
  cache.forget("k");
  release("stale");
  t.is(await overtaken, "fresh", "the answer that may predate the forget is not handed out");
  t.is(counter.calls, 2);
  t.is(cache.cache.get("k"), "fresh", "only the fresh answer was stored");
});

test("the TTL cache drops its least recently used entry when full and never keeps a value past notAfter", (t) => {
  const cache = new TtlCache<number>(60_000, 2);
  cache.set("a", 1);
  cache.set("b", 2);
  t.is(cache.get("a"), 1, "a is now the most recently used");
  cache.set("c", 3);
  t.is(cache.get("b"), undefined);
  t.is(cache.get("a"), 1);
  t.is(cache.get("c"), 3);
  cache.set("d", 4, new Date(Date.now() - 1));
  t.is(cache.get("d"), undefined, "already expired: not stored");
});

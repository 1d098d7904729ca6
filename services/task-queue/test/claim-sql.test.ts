import { createHash, randomUUID } from "node:crypto";
import test from "ava";
import pg from "pg";
import { hashToken } from "@controlplane/auth";
import { openServiceHost, type ServiceHost } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { status } from "@controlplane/grpc";
import { Agent, Runtime } from "@controlplane/proto/registry/v1/registry";
import { createTestDatabase, createTestEvents, query, testEnv, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { ActivityEvents } from "../src/activity.js";
import { BuiltinSkillsCache } from "../src/builtin-skills.js";
import { claimSettings, claimTask, claimTasks } from "../src/claim.js";
import { loadTaskQueueConfig } from "../src/config.js";
import type { TaskQueueDeps } from "../src/deps.js";
import { RuntimeFreshness } from "../src/freshness.js";
import { claimsInGroups, completionsInGroups, startsInGroups } from "../src/groups.js";
import { KnownTasks } from "../src/task-refs.js";
import type { RegistryReads } from "../src/reads.js";
import * as claims from "../src/repository/claims.js";
import * as tasks from "../src/repository/tasks.js";
import { MIGRATIONS_DIR, SCHEMA } from "../src/service.js";
import { WakeHub } from "../src/wake.js";

// claim_tasks (migration 005) and the claim use cases over it, against real
// Postgres and NATS; the registry and liveness are stand-ins the tests steer.
let db: TestDatabase;
let events: TestEvents;
let host: ServiceHost;
let wake: WakeHub;
const log = createLogger("test", process.env.TEST_LOG_LEVEL ?? "silent");
const config = () => loadTaskQueueConfig(testEnv(db, events, { REGISTRY_GRPC_ADDR: "127.0.0.1:1", LIVENESS_GRPC_ADDR: "127.0.0.1:1" }));

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  host = await openServiceHost({ name: "task-queue-test", schema: SCHEMA, migrationsDir: MIGRATIONS_DIR, config: config(), log });
  wake = new WakeHub(host.bus.nc, WakeHub.subjectPrefix(events.subjectRoot), log);
});
test.after.always(async () => {
  wake?.close();
  await host?.stop();
  await events?.close();
  await db?.drop();
});

/** A runtime (online, fresh) in a workspace of its own, with an owner. */
function newRuntime(extra: Partial<Runtime> = {}): Runtime {
  return Runtime.fromPartial({ id: randomUUID(), workspaceId: randomUUID(), ownerId: randomUUID(), status: "online", daemonId: "d", ...extra });
}

/** Queues a task straight into the table (enqueue's checks are not under test here). */
async function queue(runtime: Runtime, agentId: string, extra: Partial<tasks.NewTask> = {}) {
  const row = await tasks.insertTask(host.pool, {
    workspaceId: runtime.workspaceId,
    agentId,
    runtimeId: runtime.id,
    issueId: randomUUID(),
    chatSessionId: null,
    autopilotRunId: null,
    triggerCommentId: null,
    triggerSummary: null,
    priority: 0,
    context: null,
    claimContext: {},
    forceFreshSession: false,
    initiatorUserId: null,
    maxAttempts: 2,
    ...extra,
  });
  return row!;
}

const hashes = (n: number) => Array.from({ length: n }, () => createHash("sha256").update(randomUUID()).digest("hex"));

/** One claim_tasks call with the defaults a claim uses. */
function run(runtimes: Runtime[], max: number, extra: Partial<claims.ClaimTasksRequest> = {}) {
  return claims.claimTasks(host.pool, {
    runtimes: runtimes.map((r) => ({ id: r.id, workspaceId: r.workspaceId, ownerId: r.ownerId ?? null })),
    max,
    skipAgents: [],
    recoveryWindowMs: 90_000,
    prepareLeaseMs: 45_000,
    defaultLimit: 6,
    tokenHashes: hashes(max),
    tokenTtlMs: 3_600_000,
    ...extra,
  });
}

const row = async (id: string) =>
  (
    await query<{ status: string; lease_ahead: number | null; delivered: string[]; dispatched_ago: number | null }>(
      db.url,
      `SELECT status, extract(epoch FROM prepare_lease_expires_at - now())::float8 AS lease_ahead, delivered_comment_ids::text[] AS delivered,
            extract(epoch FROM now() - dispatched_at)::float8 AS dispatched_ago FROM taskqueue.task WHERE id = $1`,
      [id],
    )
  )[0]!;

test("one statement hands out up to N tasks across runtimes, one fresh claim per agent, each leased, receipted and tokened", async (t) => {
  const [r1, r2] = [newRuntime(), newRuntime()];
  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
  const comment = randomUUID();
  const a1 = await queue(r1, a, { priority: 5, triggerCommentId: comment });
  await queue(r1, a, { priority: 5 });
  const b1 = await queue(r2, b, { priority: 3 });
  const c1 = await queue(r2, c, { priority: 1 });
  const tokenHashes = hashes(10);
  const result = await run([r1, r2], 10, { tokenHashes });
  t.deepEqual(
    result.claims.map((x) => x.task.id),
    [a1.id, b1.id, c1.id],
    "agents in the order of their best task; one each",
  );
  t.true(result.claims.every((x) => x.task.status === "dispatched" && x.tokenMinted && !x.redelivered && !x.isolationFailed));
  t.true(result.moreWork, "agent a had room and work left");
  t.false(result.contended);
  const a1Row = await row(a1.id);
  t.true(a1Row.lease_ahead! > 44 && a1Row.lease_ahead! <= 45);
  t.deepEqual(a1Row.delivered, [comment]);
  t.deepEqual((await row(b1.id)).delivered, []);
  const stored = await query<{ task_id: string; token_hash: string; workspace_id: string }>(
    db.url,
    "SELECT task_id, token_hash, workspace_id FROM taskqueue.task_token WHERE task_id = ANY($1::uuid[])",
    [[a1.id, b1.id, c1.id]],
  );
  t.deepEqual(Object.fromEntries(stored.map((s) => [s.task_id, s.token_hash])), { [a1.id]: tokenHashes[0], [b1.id]: tokenHashes[1], [c1.id]: tokenHashes[2] });
  t.is(stored.find((s) => s.task_id === b1.id)!.workspace_id, r2.workspaceId);
  // The next call takes a's second task; skipAgents keeps a later round of the same call off it.
  t.deepEqual((await run([r1, r2], 10, { skipAgents: [a] })).claims, []);
  t.is((await run([r1, r2], 10)).claims.length, 1);
});

test("claims made together: each as if alone and in turn, its own runtime's task, its own token; one runtime claimed twice gets two", async (t) => {
  const [r1, r2, r3, idle] = [newRuntime(), newRuntime(), newRuntime(), newRuntime()];
  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
  const a1 = await queue(r1, a, { priority: 2 });
  const a2 = await queue(r1, a, { priority: 1 });
  const b1 = await queue(r2, b);
  const c1 = await queue(r3, c, { issueId: null, chatSessionId: null });
  const c2 = await queue(r3, c, { issueId: null, chatSessionId: null });
  const single = (runtime: Runtime) => ({
    runtime: { id: runtime.id, workspaceId: runtime.workspaceId, ownerId: runtime.ownerId ?? null },
    tokenHash: hashes(1)[0]!,
  });
  const calls = [single(r1), single(r2), single(idle), single(r1), single(r3), single(r3)];
  const results = await claims.claimEach(host.pool, calls, { recoveryWindowMs: 90_000, prepareLeaseMs: 45_000, defaultLimit: 6, tokenTtlMs: 3_600_000 });
  t.deepEqual(
    results.map((r) => r.claims.map((x) => x.task.id)),
    [[a1.id], [b1.id], [], [a2.id], [c1.id], []],
    "the second claim of r1 sees the first's task taken; c's second quick task waits for its sibling (one at a time)",
  );
  t.true(results.every((r) => !r.contended));
  const stored = await query<{ task_id: string; token_hash: string }>(
    db.url,
    "SELECT task_id, token_hash FROM taskqueue.task_token WHERE task_id = ANY($1::uuid[])",
    [[a1.id, a2.id, b1.id, c1.id]],
  );
  t.deepEqual(Object.fromEntries(stored.map((s) => [s.task_id, s.token_hash])), {
    [a1.id]: calls[0]!.tokenHash,
    [b1.id]: calls[1]!.tokenHash,
    [a2.id]: calls[3]!.tokenHash,
    [c1.id]: calls[4]!.tokenHash,
  });
  t.is((await row(c2.id)).status, "queued");
});

test("an agent's limit counts its in-flight tasks on every runtime, and the sibling rule holds", async (t) => {
  const [r1, r2] = [newRuntime(), newRuntime()];
  const agent = randomUUID();
  await tasks.upsertAgentLimit(host.pool, agent, 2);
  const issue = randomUUID();
  const running = await queue(r2, agent);
  await query(db.url, "UPDATE taskqueue.task SET status = 'running', started_at = now() WHERE id = $1", [running.id]);
  const sameIssue1 = await queue(r1, agent, { issueId: issue, priority: 9 });
  await query(db.url, "UPDATE taskqueue.task SET status = 'running', started_at = now() WHERE id = $1", [sameIssue1.id]);
  const sameIssue2 = await queue(r1, agent, { issueId: issue, priority: 9 });
  t.is((await run([r1], 5)).claims.length, 0, "at its limit of 2 (one running on another runtime)");
  await query(db.url, "UPDATE taskqueue.task SET status = 'completed' WHERE id = $1", [running.id]);
  const other = await queue(r1, agent, { priority: 1 });
  const got = await run([r1], 5);
  t.deepEqual(
    got.claims.map((x) => x.task.id),
    [other.id],
    "the same issue is in flight: its sibling waits",
  );
  t.is((await row(sameIssue2.id)).status, "queued");
});

test("re-deliveries come first, skip the agent checks, count toward N, and wait for the lease", async (t) => {
  const r = newRuntime();
  const agent = randomUUID();
  await tasks.upsertAgentLimit(host.pool, agent, 1);
  const lost = await queue(r, agent);
  const leased = await queue(r, randomUUID());
  const fresh = await queue(r, randomUUID());
  await query(db.url, "UPDATE taskqueue.task SET status = 'dispatched', dispatched_at = now() - interval '120 s' WHERE id = ANY($1::uuid[])", [
    [lost.id, leased.id],
  ]);
  await query(db.url, "UPDATE taskqueue.task SET prepare_lease_expires_at = now() + interval '10 s' WHERE id = $1", [leased.id]);
  const got = await run([r], 2);
  t.deepEqual(
    got.claims.map((x) => [x.task.id, x.redelivered]),
    [
      [lost.id, true],
      [fresh.id, false],
    ],
  );
  t.true((await row(lost.id)).dispatched_ago! < 5);
  t.true((await row(leased.id)).dispatched_ago! > 100, "under its lease: left alone");
});

test("a task of another workspace is flagged, not tokened; the runtime's owner missing leaves the token to the caller", async (t) => {
  const r = newRuntime();
  const foreign = await queue({ ...r, workspaceId: randomUUID() } as Runtime, randomUUID());
  const ownerless = newRuntime({ ownerId: undefined });
  const mine = await queue(ownerless, randomUUID());
  const got = await run([r, ownerless], 5);
  t.deepEqual(
    got.claims.map((x) => [x.task.id, x.isolationFailed, x.tokenMinted]),
    [
      [foreign.id, true, false],
      [mine.id, false, false],
    ],
  );
  t.is((await query(db.url, "SELECT 1 FROM taskqueue.task_token WHERE task_id = ANY($1::uuid[])", [[foreign.id, mine.id]])).length, 0);
});

test("an agent locked by another claim is skipped and reported contended", async (t) => {
  const r = newRuntime();
  const [locked, free] = [randomUUID(), randomUUID()];
  await queue(r, locked, { priority: 9 });
  const freeTask = await queue(r, free);
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(21585, hashtext($1))", [locked]);
    const got = await run([r], 5);
    t.deepEqual(
      got.claims.map((x) => x.task.id),
      [freeTask.id],
    );
    t.true(got.contended);
  } finally {
    await holder.end();
  }
});

test("H-22 (in one statement): a claim whose token cannot be stored rolls back whole: nothing dispatched, no token", async (t) => {
  const r = newRuntime();
  const first = await queue(r, randomUUID(), { priority: 2 });
  const second = await queue(r, randomUUID());
  const same = hashes(1)[0]!;
  await t.throwsAsync(run([r], 2, { tokenHashes: [same, same] }));
  t.is((await row(first.id)).status, "queued");
  t.is((await row(second.id)).status, "queued");
  t.is((await query(db.url, "SELECT 1 FROM taskqueue.task_token WHERE task_id = ANY($1::uuid[])", [[first.id, second.id]])).length, 0);
});

test("the lease ends whenever a task leaves dispatched or waiting, whatever statement moves it", async (t) => {
  const r = newRuntime();
  const task = await queue(r, randomUUID());
  await run([r], 1);
  await query(db.url, "UPDATE taskqueue.task SET status = 'waiting_local_directory' WHERE id = $1", [task.id]);
  t.true((await row(task.id)).lease_ahead! > 0, "kept while waiting");
  await query(db.url, "UPDATE taskqueue.task SET status = 'cancelled' WHERE id = $1", [task.id]);
  t.is((await row(task.id)).lease_ahead, null);
});

// The use cases over the statement, with stand-ins for the registry and liveness.

interface Fakes {
  agents?: Map<string, Agent | Error>;
  runtimes?: Runtime[];
  fresh?: (runtime: Runtime) => boolean;
  /** Wraps the pool's `any` (claim_tasks runs through it). */
  any?: (original: TaskQueueDeps["pool"]["any"], calls: number) => TaskQueueDeps["pool"]["any"];
}

function depsWith(fakes: Fakes): TaskQueueDeps {
  const cfg = config();
  let calls = 0;
  const pool = fakes.any
    ? (new Proxy(host.pool, {
        get(target, key, receiver) {
          if (key === "any") return (...args: unknown[]) => fakes.any!(target.any.bind(target), ++calls)(...(args as [never]));
          const value = Reflect.get(target, key, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }) as TaskQueueDeps["pool"])
    : host.pool;
  const read = <V>(lookup: (id: string) => V | Error | undefined) => ({
    async get(id: string) {
      const found = lookup(id);
      if (found === undefined) throw Object.assign(new Error("not found"), { code: status.NOT_FOUND, details: "not found" });
      if (found instanceof Error) throw found;
      return found;
    },
  });
  const reads = {
    runtimes: read((id) => fakes.runtimes?.find((r) => r.id === id)),
    workspaces: read(() => undefined),
    agents: read((id) => fakes.agents?.get(id) ?? Agent.fromPartial({ id, name: "a", ownerId: randomUUID() })),
  } as unknown as RegistryReads;
  const freshness = { fresh: async (runtime: Runtime) => fakes.fresh?.(runtime) ?? true } as unknown as RuntimeFreshness;
  return {
    pool,
    outbox: host.outbox,
    bus: host.bus,
    activity: new ActivityEvents(host.bus, log),
    registry: undefined as never,
    identity: undefined as never,
    wake,
    reads,
    freshness,
    builtinSkills: new BuiltinSkillsCache(host.pool),
    claims: claimsInGroups(pool, claimSettings(cfg)),
    starts: startsInGroups(pool),
    completions: completionsInGroups(pool, host.outbox),
    knownTasks: new KnownTasks(60_000),
    config: cfg,
    log,
  };
}

const unavailable = () => Object.assign(new Error("registry down"), { code: status.UNAVAILABLE, details: "registry down" });

test("H-22: an answer that cannot be built for a moment puts the task back: queued, no token, no receipt, no lease", async (t) => {
  const r = newRuntime();
  const agent = randomUUID();
  const comment = randomUUID();
  const task = await queue(r, agent, { triggerCommentId: comment });
  const deps = depsWith({ runtimes: [r], agents: new Map([[agent, unavailable()]]) });
  await t.throwsAsync(claimTask(deps, r.id, 0), { message: "failed to load task agent" });
  const state = await row(task.id);
  t.deepEqual(state, { status: "queued", lease_ahead: null, delivered: [], dispatched_ago: null });
  t.is((await query(db.url, "SELECT 1 FROM taskqueue.task_token WHERE task_id = $1", [task.id])).length, 0);
  // In a batch the same task is left out and put back, and the others are answered.
  const other = await queue(r, randomUUID());
  const answered = await claimTasks(deps, { daemonId: "d", runtimeIds: [r.id], maxTasks: 5 });
  t.deepEqual(
    answered.map((c) => c.task!.id),
    [other.id],
  );
  t.is((await row(task.id)).status, "queued");
});

test("H-17: a later round that fails after an earlier one claimed answers what was claimed", async (t) => {
  const r = newRuntime();
  const [locked, free] = [randomUUID(), randomUUID()];
  await queue(r, locked, { priority: 9 });
  const freeTask = await queue(r, free);
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    // Round 1 meets `locked` held (contended) and claims `free`; round 2 fails.
    await holder.query("SELECT pg_advisory_lock(21585, hashtext($1))", [locked]);
    const deps = depsWith({
      runtimes: [r],
      any: (any, n) =>
        n === 1
          ? any
          : async () => {
              throw new Error("connection lost");
            },
    });
    const answered = await claimTasks(deps, { daemonId: "d", runtimeIds: [r.id], maxTasks: 5 });
    t.deepEqual(
      answered.map((c) => c.task!.id),
      [freeTask.id],
    );
    t.is((await row(freeTask.id)).status, "dispatched");
  } finally {
    await holder.end();
  }
});

test("H-18: a re-delivery made before a failing round is answered", async (t) => {
  const r = newRuntime();
  const [locked, lostAgent] = [randomUUID(), randomUUID()];
  await queue(r, locked);
  const lost = await queue(r, lostAgent);
  await query(db.url, "UPDATE taskqueue.task SET status = 'dispatched', dispatched_at = now() - interval '120 s' WHERE id = $1", [lost.id]);
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(21585, hashtext($1))", [locked]);
    const deps = depsWith({
      runtimes: [r],
      any: (any, n) =>
        n === 1
          ? any
          : async () => {
              throw new Error("connection lost");
            },
    });
    const answered = await claimTasks(deps, { daemonId: "d", runtimeIds: [r.id], maxTasks: 5 });
    t.deepEqual(
      answered.map((c) => c.task!.id),
      [lost.id],
    );
  } finally {
    await holder.end();
  }
});

test("a failure before anything was claimed is the claim's error", async (t) => {
  const r = newRuntime();
  await queue(r, randomUUID());
  const deps = depsWith({
    runtimes: [r],
    any: () => async () => {
      throw new Error("connection lost");
    },
  });
  await t.throwsAsync(claimTasks(deps, { daemonId: "d", runtimeIds: [r.id], maxTasks: 5 }), { message: "connection lost" });
});

test("the batch skips runtimes of another daemon and runtimes that are not fresh; none at all is an empty answer", async (t) => {
  const mine = newRuntime({ daemonId: "d" });
  const theirs = newRuntime({ daemonId: "other" });
  const cloud = newRuntime({ daemonId: undefined });
  const silent = newRuntime({ daemonId: "d" });
  const tasksByRuntime = await Promise.all([mine, theirs, cloud, silent].map((r) => queue(r, randomUUID())));
  const deps = depsWith({ runtimes: [mine, theirs, cloud, silent], fresh: (r) => r.id !== silent.id });
  const answered = await claimTasks(deps, { daemonId: "d", runtimeIds: [mine.id, theirs.id, cloud.id, silent.id, randomUUID(), "x"], maxTasks: 10 });
  t.deepEqual(answered.map((c) => c.task!.id).sort(), [tasksByRuntime[0]!.id, tasksByRuntime[2]!.id].sort());
  t.deepEqual(await claimTasks(deps, { daemonId: "d", runtimeIds: [silent.id], maxTasks: 10 }), []);
  await t.throwsAsync(claimTasks(deps, { daemonId: "", runtimeIds: [], maxTasks: 1 }), { message: "daemon_id is required" });
  t.deepEqual(await claimTasks(deps, { daemonId: "d", runtimeIds: [mine.id], maxTasks: 0 }), []);
});

test("freshness: online and seen within the window; the newest of flushed and beaten; liveness down trusts the registry", async (t) => {
  const now = Date.now();
  const window = 150_000;
  const answers = new Map<string, unknown>();
  const liveness = {
    async getRuntimeLiveness({ runtimeId }: { runtimeId: string }) {
      const answer = answers.get(runtimeId);
      if (answer instanceof Error) throw answer;
      if (!answer) throw Object.assign(new Error("runtime not found"), { code: status.NOT_FOUND, details: "runtime not found" });
      return answer;
    },
  };
  const freshness = new RuntimeFreshness(liveness as never, window, 1, log);
  const at = (ms: number) => new Date(now - ms);
  const cases: Array<[string, unknown, boolean]> = [
    ["fresh", { status: "online", lastSeenAt: at(10_000), statusChangedAt: at(900_000) }, true],
    ["stale", { status: "online", lastSeenAt: at(600_000), statusChangedAt: at(900_000) }, false],
    ["stale in the database, beaten just now", { status: "online", lastSeenAt: at(600_000), lastBeatAt: at(1_000), statusChangedAt: at(900_000) }, true],
    ["never seen, just online", { status: "online", statusChangedAt: at(5_000) }, true],
    ["offline", { status: "offline", lastSeenAt: at(1_000), statusChangedAt: at(1_000) }, false],
    ["unknown to liveness", undefined, false],
  ];
  for (const [name, answer, fresh] of cases) {
    const runtime = newRuntime();
    answers.set(runtime.id, answer);
    t.is(await freshness.fresh(runtime, now), fresh, name);
  }
  const down = newRuntime();
  answers.set(down.id, unavailable());
  t.true(await freshness.fresh(down, now), "liveness down: the registry says online");
  const downOffline = randomUUID();
  answers.set(downOffline, unavailable());
  t.false(await freshness.fresh({ ...down, id: downOffline, status: "offline" }, now));
});

test("token hashes: what the statement stores is the hash of the token the answer carries", async (t) => {
  const r = newRuntime();
  const task = await queue(r, randomUUID());
  const deps = depsWith({ runtimes: [r] });
  const [answer] = await claimTasks(deps, { daemonId: "d", runtimeIds: [r.id], maxTasks: 3 });
  t.is(answer!.task!.id, task.id);
  const [stored] = await query<{ token_hash: string }>(db.url, "SELECT token_hash FROM taskqueue.task_token WHERE task_id = $1", [task.id]);
  t.is(stored!.token_hash, hashToken(answer!.authToken));
});

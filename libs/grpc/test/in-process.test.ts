import test, { type ExecutionContext } from "ava";
import {
  createClient,
  currentScope,
  GrpcServer,
  NotFoundError,
  serveInProcess,
  status,
  type ServiceDefinitionOf,
  type UnaryHandlers,
} from "@controlplane/grpc";
import { freePort } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";

// The in-process transport must be indistinguishable from loopback gRPC to
// callers and handlers: each behaviour is checked over both, same server.
const log = createLogger("test", "silent");
type Profiles = typeof ProfileCatalogServiceService;

function unusedHandlers<D extends ServiceDefinitionOf>(definition: D): UnaryHandlers<D> {
  return Object.fromEntries(
    Object.keys(definition).map((key) => [key, async () => Promise.reject(new Error(`unexpected call ${key}`))]),
  ) as unknown as UnaryHandlers<D>;
}

/**
 * One server listening on a port declared in-process under "localhost", and
 * two clients of it: one in process ("localhost:port"), one over loopback
 * gRPC ("127.0.0.1:port", not declared).
 */
async function serveBoth(t: ExecutionContext, handlers: Partial<UnaryHandlers<Profiles>>) {
  const server = new GrpcServer(log).add(ProfileCatalogServiceService, { ...unusedHandlers(ProfileCatalogServiceService), ...handlers });
  const port = await freePort();
  serveInProcess([`localhost:${port}`]);
  await server.listen(port, "127.0.0.1");
  const clients = {
    "in-process": createClient(ProfileCatalogServiceService, `localhost:${port}`, { maxAttempts: 1 }),
    loopback: createClient(ProfileCatalogServiceService, `127.0.0.1:${port}`, { maxAttempts: 1 }),
  };
  t.teardown(async () => {
    for (const client of Object.values(clients)) client.close();
    await server.shutdown(1_000);
  });
  return { server, clients };
}

/** What a caller can observe of a failed call. */
const observed = (error: unknown) => {
  const { code, details, message, metadata } = error as { code: number; details: string; message: string; metadata?: unknown };
  return { code, details, message, hasMetadata: metadata !== undefined };
};

test("answers, domain errors and unexpected errors look the same in process and over loopback", async (t) => {
  const { clients } = await serveBoth(t, {
    getProfile: async (request) => {
      if (request.profileId === "missing") throw new NotFoundError("runtime profile not found");
      if (request.profileId === "broken") throw new Error("relation profiles.secret does not exist");
      return { profile: { id: request.profileId, workspaceId: request.workspaceId, displayName: "Claude", fixedArgs: ["-p"] } } as never;
    },
  });
  const seen: Record<string, unknown[]> = {};
  for (const [name, client] of Object.entries(clients)) {
    const answer = await client.getProfile({ workspaceId: "w", profileId: "p1" });
    const failures = await Promise.all(
      ["missing", "broken"].map((profileId) =>
        client.getProfile({ workspaceId: "w", profileId }).then(
          () => "answered",
          (error: unknown) => observed(error),
        ),
      ),
    );
    seen[name] = [answer, ...failures];
  }
  t.deepEqual(seen["in-process"], seen.loopback);
  t.like(seen.loopback?.[1] as object, { code: status.NOT_FOUND, details: "runtime profile not found" });
  t.like(seen.loopback?.[2] as object, { code: status.INTERNAL, details: "internal error" });
});

test("the handler gets a copy of the request, and the caller a copy of the answer", async (t) => {
  const kept = { id: "p1", workspaceId: "w", displayName: "Claude", fixedArgs: ["-p"] };
  let received: unknown;
  const { clients } = await serveBoth(t, {
    getProfile: async (request) => {
      received = request;
      return { profile: kept } as never;
    },
  });
  const request = { workspaceId: "w", profileId: "p1" };
  const answer = await clients["in-process"].getProfile(request);
  t.not(received, request, "the handler's request is decoded from the bytes, not the caller's object");
  t.not(answer.profile, kept);
  answer.profile!.fixedArgs.push("--mutated");
  t.deepEqual(kept.fixedArgs, ["-p"], "the caller cannot change what the handler holds");
});

test("request id and deadline reach the handler in process", async (t) => {
  const seen: Array<{ requestId: string; deadline?: number; scoped?: string }> = [];
  const { clients } = await serveBoth(t, {
    deleteProfile: async (_request, call) => {
      seen.push({ requestId: call.requestId, deadline: call.deadline?.getTime(), scoped: currentScope()?.requestId });
      return { detachedRuntimeCount: 1 };
    },
  });
  const before = Date.now();
  await clients["in-process"].deleteProfile({ workspaceId: "w", profileId: "p" }, { deadlineMs: 60_000 });
  t.is(seen.length, 1);
  t.regex(seen[0]!.requestId, /^[0-9a-f-]{36}$/);
  t.is(seen[0]!.scoped, seen[0]!.requestId, "the handler runs in the call's scope");
  t.true(seen[0]!.deadline! >= before + 60_000 && seen[0]!.deadline! <= Date.now() + 60_000);
});

test("a passed deadline ends the call DEADLINE_EXCEEDED and aborts the handler's signal, both ways", async (t) => {
  // Long enough for the call to reach its handler on a loaded machine; the handler then waits for it to pass.
  const deadlineMs = 1_000;
  const reasons: unknown[] = [];
  const { clients } = await serveBoth(t, {
    deleteProfile: async (_request, call) => {
      const { signal } = call;
      // A handler that runs late may find its deadline already passed: its signal is aborted then, and fires no event.
      const aborted = signal.aborted
        ? Promise.resolve(signal.reason)
        : new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason), { once: true }));
      reasons.push(await aborted);
      return { detachedRuntimeCount: 0 };
    },
  });
  for (const client of Object.values(clients)) {
    const error = await t.throwsAsync(client.deleteProfile({ workspaceId: "w", profileId: "p" }, { deadlineMs }));
    t.is(observed(error).code, status.DEADLINE_EXCEEDED);
    t.regex(observed(error).details, /^Deadline exceeded/);
  }
  const deadline = Date.now() + 20 * deadlineMs;
  while (reasons.length < 2 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(
    reasons.map((reason) => (reason as Error).name),
    ["CallCancelledError", "CallCancelledError"],
  );
});

test("a caller that goes away cancels the call and the handler's signal, both ways", async (t) => {
  const reasons: string[] = [];
  let handlerStarted: () => void = () => undefined;
  const { clients } = await serveBoth(t, {
    deleteProfile: async (_request, call) => {
      handlerStarted();
      await new Promise((resolve) => call.signal.addEventListener("abort", resolve, { once: true }));
      reasons.push((call.signal.reason as Error).message);
      return { detachedRuntimeCount: 0 };
    },
  });
  for (const client of Object.values(clients)) {
    const started = new Promise<void>((resolve) => {
      handlerStarted = resolve;
    });
    const caller = new AbortController();
    const answer = client.deleteProfile({ workspaceId: "w", profileId: "p" }, { signal: caller.signal, deadlineMs: 60_000 });
    await started;
    caller.abort();
    const error = await t.throwsAsync(answer);
    t.like(observed(error), { code: status.CANCELLED, details: "Cancelled on client" });
  }
  const deadline = Date.now() + 10_000;
  while (reasons.length < 2 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(reasons, ["the caller cancelled the call", "the caller cancelled the call"]);
});

test("messages over 8 MiB are refused RESOURCE_EXHAUSTED both ways, in either direction", async (t) => {
  const big = "x".repeat(8 * 1024 * 1024 + 1);
  let handled = 0;
  const { clients } = await serveBoth(t, {
    getProfile: async (request) => {
      handled++;
      return { profile: { id: request.profileId, workspaceId: "w", displayName: big, fixedArgs: [] } } as never;
    },
  });
  for (const client of Object.values(clients)) {
    const tooBigRequest = await t.throwsAsync(client.getProfile({ workspaceId: big, profileId: "p" }));
    t.is(observed(tooBigRequest).code, status.RESOURCE_EXHAUSTED);
    const tooBigAnswer = await t.throwsAsync(client.getProfile({ workspaceId: "w", profileId: "p" }));
    t.is(observed(tooBigAnswer).code, status.RESOURCE_EXHAUSTED);
  }
  t.is(handled, 2, "an oversized request never reaches the handler");
});

test("in process, a port nobody serves is UNAVAILABLE at once, or waited for with waitForReady", async (t) => {
  const port = await freePort();
  serveInProcess([`localhost:${port}`]);
  const impatient = createClient(ProfileCatalogServiceService, `localhost:${port}`, { maxAttempts: 1 });
  const patient = createClient(ProfileCatalogServiceService, `localhost:${port}`, { waitForReady: true, deadlineMs: 60_000 });
  const server = new GrpcServer(log).add(ProfileCatalogServiceService, {
    ...unusedHandlers(ProfileCatalogServiceService),
    listProfiles: async () => ({ profiles: [] }),
  });
  t.teardown(async () => {
    impatient.close();
    patient.close();
    await server.shutdown(1_000);
  });
  const unavailable = await t.throwsAsync(impatient.listProfiles({ workspaceId: "w", enabledOnly: false }));
  t.is(observed(unavailable).code, status.UNAVAILABLE);
  const waited = patient.listProfiles({ workspaceId: "w", enabledOnly: false });
  await server.listen(port, "127.0.0.1");
  t.deepEqual(await waited, { profiles: [] });
});

test("shutdown lets in-process calls in flight finish, then refuses new ones", async (t) => {
  let release: () => void = () => undefined;
  let handlerStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    handlerStarted = resolve;
  });
  const { server, clients } = await serveBoth(t, {
    deleteProfile: async () => {
      handlerStarted();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return { detachedRuntimeCount: 3 };
    },
  });
  const inFlight = clients["in-process"].deleteProfile({ workspaceId: "w", profileId: "p" }, { deadlineMs: 60_000 });
  await started;
  let stopped = false;
  const stopping = server.shutdown(60_000).then(() => {
    stopped = true;
  });
  const refused = await t.throwsAsync(clients["in-process"].listProfiles({ workspaceId: "w", enabledOnly: false }));
  t.is(observed(refused).code, status.UNAVAILABLE);
  t.false(stopped, "shutdown waits for the call in flight");
  release();
  t.deepEqual(await inFlight, { detachedRuntimeCount: 3 });
  await stopping;
  t.true(stopped);
});

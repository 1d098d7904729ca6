import test from "ava";
import {
  createClient,
  currentScope,
  GrpcServer,
  InvalidArgumentError,
  NotFoundError,
  status,
  UnavailableError,
  type ServiceDefinitionOf,
  type UnaryHandlers,
} from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { checkHealth, listReflectedServices } from "@controlplane/testkit";

// The kit is exercised with real generated service definitions and small
// handlers written for the test: what is under test is the server/client kit.
const log = createLogger("test", "silent");

function unusedHandlers<D extends ServiceDefinitionOf>(definition: D): UnaryHandlers<D> {
  return Object.fromEntries(
    Object.keys(definition).map((key) => [key, async () => Promise.reject(new Error(`unexpected call ${key}`))]),
  ) as unknown as UnaryHandlers<D>;
}

test("health reports SERVING per service and overall once listening, NOT_SERVING once stopping", async (t) => {
  const server = new GrpcServer(log).add(RuntimeRegistryServiceService, unusedHandlers(RuntimeRegistryServiceService));
  const port = await server.listen(0, "127.0.0.1");
  const address = `127.0.0.1:${port}`;
  t.is(await checkHealth(address), "SERVING");
  t.is(await checkHealth(address, "controlplane.registry.v1.RuntimeRegistryService"), "SERVING");
  await t.throwsAsync(checkHealth(address, "no.such.Service"), { message: /NOT_FOUND/ });
  server.health.setStatus("", "NOT_SERVING");
  t.is(await checkHealth(address), "NOT_SERVING");
  await server.shutdown(1_000);
});

test("reflection lists the services a server hosts", async (t) => {
  const server = new GrpcServer(log).add(RuntimeRegistryServiceService, unusedHandlers(RuntimeRegistryServiceService));
  const port = await server.listen(0, "127.0.0.1");
  t.teardown(() => server.shutdown(1_000));
  const services = await listReflectedServices(`127.0.0.1:${port}`);
  t.true(services.includes("controlplane.registry.v1.RuntimeRegistryService"));
  t.true(services.includes("grpc.health.v1.Health"));
  t.false(services.includes("controlplane.profiles.v1.ProfileCatalogService"), "only hosted services are listed");
});

test("domain errors keep their code and message; unknown errors become a generic INTERNAL", async (t) => {
  const server = new GrpcServer(log).add(ProfileCatalogServiceService, {
    ...unusedHandlers(ProfileCatalogServiceService),
    getProfile: async () => {
      throw new NotFoundError("runtime profile not found");
    },
    createProfile: async () => {
      throw new InvalidArgumentError("display_name is required");
    },
    listProfiles: async () => {
      throw new Error("relation profiles.secret does not exist");
    },
  });
  const port = await server.listen(0, "127.0.0.1");
  t.teardown(() => server.shutdown(1_000));
  const client = createClient(ProfileCatalogServiceService, `127.0.0.1:${port}`);
  t.teardown(() => client.close());
  const notFound = await t.throwsAsync(client.getProfile({ workspaceId: "w", profileId: "p" }));
  t.like(notFound as object, { code: status.NOT_FOUND, details: "runtime profile not found" });
  const invalid = await t.throwsAsync(
    client.createProfile({ workspaceId: "w", displayName: "", protocolFamily: "", commandName: "", fixedArgs: [], visibility: "" }),
  );
  t.like(invalid as object, { code: status.INVALID_ARGUMENT, details: "display_name is required" });
  const error = await t.throwsAsync(client.listProfiles({ workspaceId: "w", enabledOnly: false }));
  t.like(error as object, { code: status.INTERNAL, details: "internal error" });
});

test("request id and deadline travel from an inbound call to the calls it makes", async (t) => {
  const seen: Array<{ requestId: string; deadline?: number }> = [];
  const downstream = new GrpcServer(log).add(RuntimeRegistryServiceService, {
    ...unusedHandlers(RuntimeRegistryServiceService),
    detachProfile: async (_req, call) => {
      seen.push({ requestId: call.requestId, deadline: call.deadline?.getTime() });
      return { deletedRuntimeCount: 7 };
    },
  });
  const downstreamPort = await downstream.listen(0, "127.0.0.1");
  const registry = createClient(RuntimeRegistryServiceService, `127.0.0.1:${downstreamPort}`, { deadlineMs: 60_000 });
  let upstreamDeadline: number | undefined;
  let upstreamRequestId = "";
  const upstream = new GrpcServer(log).add(ProfileCatalogServiceService, {
    ...unusedHandlers(ProfileCatalogServiceService),
    deleteProfile: async (_req, call) => {
      upstreamDeadline = currentScope()?.deadline?.getTime();
      upstreamRequestId = call.requestId;
      const { deletedRuntimeCount } = await registry.detachProfile({ workspaceId: "w", profileId: "p" });
      return { detachedRuntimeCount: deletedRuntimeCount };
    },
  });
  const upstreamPort = await upstream.listen(0, "127.0.0.1");
  const client = createClient(ProfileCatalogServiceService, `127.0.0.1:${upstreamPort}`, { deadlineMs: 2_000 });
  t.teardown(async () => {
    client.close();
    registry.close();
    await upstream.shutdown(1_000);
    await downstream.shutdown(1_000);
  });
  const answer = await client.deleteProfile({ workspaceId: "w", profileId: "p" });
  t.is(answer.detachedRuntimeCount, 7);
  t.is(seen.length, 1);
  t.is(seen[0]!.requestId, upstreamRequestId, "same request id downstream");
  t.truthy(upstreamDeadline);
  t.true(seen[0]!.deadline! <= upstreamDeadline! + 50, "the downstream deadline is the inbound one, not its own 60 s");
});

test("RPCs the proto marks NO_SIDE_EFFECTS are retried on UNAVAILABLE; others are not", async (t) => {
  let reads = 0;
  let writes = 0;
  const server = new GrpcServer(log).add(ProfileCatalogServiceService, {
    ...unusedHandlers(ProfileCatalogServiceService),
    listProfiles: async () => {
      reads++;
      if (reads < 3) throw new UnavailableError("warming up");
      return { profiles: [] };
    },
    deleteProfile: async () => {
      writes++;
      throw new UnavailableError("warming up");
    },
  });
  const port = await server.listen(0, "127.0.0.1");
  const client = createClient(ProfileCatalogServiceService, `127.0.0.1:${port}`, { maxAttempts: 3 });
  t.teardown(async () => {
    client.close();
    await server.shutdown(1_000);
  });
  t.deepEqual(await client.listProfiles({ workspaceId: "w", enabledOnly: false }), { profiles: [] });
  t.is(reads, 3);
  const unavailable = await t.throwsAsync(client.deleteProfile({ workspaceId: "w", profileId: "p" }));
  t.like(unavailable as object, { code: status.UNAVAILABLE });
  t.is(writes, 1);
});

test("a dns:/// address balances over the name's addresses and skips those that do not answer", async (t) => {
  let calls = 0;
  const server = new GrpcServer(log).add(ProfileCatalogServiceService, {
    ...unusedHandlers(ProfileCatalogServiceService),
    listProfiles: async () => {
      calls++;
      return { profiles: [] };
    },
  });
  // Only IPv4 loopback listens; "localhost" may also resolve to ::1, where nobody does.
  const port = await server.listen(0, "127.0.0.1");
  t.teardown(() => server.shutdown(1_000));
  const client = createClient(ProfileCatalogServiceService, `dns:///localhost:${port}`);
  t.teardown(() => client.close());
  for (let i = 0; i < 10; i++) t.deepEqual((await client.listProfiles({ workspaceId: "w", enabledOnly: false })).profiles, []);
  t.is(calls, 10);
});

/** A profile-catalog server whose deleteProfile runs `handle`, and a client of it. */
async function serveDeleteProfile(t: import("ava").ExecutionContext, handle: UnaryHandlers<typeof ProfileCatalogServiceService>["deleteProfile"]) {
  const server = new GrpcServer(log).add(ProfileCatalogServiceService, { ...unusedHandlers(ProfileCatalogServiceService), deleteProfile: handle });
  const port = await server.listen(0, "127.0.0.1");
  const client = createClient(ProfileCatalogServiceService, `127.0.0.1:${port}`);
  t.teardown(async () => {
    client.close();
    await server.shutdown(1_000);
  });
  return client;
}

/** Resolves with the signal's reason once it aborts. */
const abortReason = (signal: AbortSignal) =>
  new Promise<unknown>((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });

test("a handler's signal aborts when the call's deadline passes, also when asked for after it", async (t) => {
  const deadlineMs = 300;
  const reasons: unknown[] = [];
  const client = await serveDeleteProfile(t, async (req, call) => {
    if (req.profileId === "late") {
      // Ask only once the deadline is behind us: the signal must be born aborted.
      const left = (call.deadline?.getTime() ?? Date.now()) - Date.now();
      await new Promise((resolve) => setTimeout(resolve, left + 1));
      reasons.push(call.signal.aborted ? call.signal.reason : "not aborted");
    } else {
      reasons.push(await abortReason(call.signal));
    }
    return { detachedRuntimeCount: 0 };
  });
  for (const profileId of ["early", "late"]) {
    const error = await t.throwsAsync(client.deleteProfile({ workspaceId: "w", profileId }, { deadlineMs }));
    t.is((error as { code?: number }).code, status.DEADLINE_EXCEEDED);
  }
  const deadline = Date.now() + 10 * deadlineMs;
  while (reasons.length < 2 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.is(reasons.length, 2);
  // grpc-js may end the call (cancelled) before our deadline timer fires: either way the handler is told.
  for (const reason of reasons) t.is((reason as Error).name, "CallCancelledError");
});

test("a handler's signal aborts when the caller cancels", async (t) => {
  let started!: () => void;
  const handlerStarted = new Promise<void>((resolve) => {
    started = resolve;
  });
  let reason: unknown;
  const handled = new Promise<void>((resolve) => {
    void serveDeleteProfile(t, async (_req, call) => {
      started();
      reason = await abortReason(call.signal);
      resolve();
      return { detachedRuntimeCount: 0 };
    }).then((client) => {
      const caller = new AbortController();
      const answer = client.deleteProfile({ workspaceId: "w", profileId: "p" }, { signal: caller.signal, deadlineMs: 60_000 });
      answer.catch(() => undefined);
      void handlerStarted.then(() => caller.abort());
    });
  });
  await handled;
  t.regex(String((reason as Error).message), /cancelled the call/);
});

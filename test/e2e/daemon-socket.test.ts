import { randomUUID } from "node:crypto";
import test from "ava";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { taskWakeSubject } from "@controlplane/events";
import { loadGatewayConfig } from "@controlplane/gateway/config";
import { startGateway } from "@controlplane/gateway";
import { createLogger } from "@controlplane/log";
import { registry as metrics } from "@controlplane/metrics";
import { ActionKind } from "@controlplane/proto/liveness/v1/liveness";
import { NATS_URL, waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { openSocket, RefusedUpgrade, type TestSocket, untilWatched } from "../support/socket.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// The daemon socket (CONTRACT §12) driven by a real WebSocket client over
// real HTTP, against every service on real gRPC, Postgres and NATS.

// Keepalive is tested on a gateway of its own with these: on the shared
// one, a pong deadline this short would cut the other tests' sockets
// whenever a loaded machine stalls this process for a second.
const PING_MS = 200;
const PONG_TIMEOUT_MS = 5_000;

/** Frames a socket may have waiting to be written (small, so a flood evicts soon). */
const SEND_QUEUE_FRAMES = 16;

let stack: Stack;
let nc: NatsConnection;
const sockets: TestSocket[] = [];

test.before(async () => {
  stack = await startStack({ WS_SEND_QUEUE_FRAMES: String(SEND_QUEUE_FRAMES) });
  nc = await natsConnect({ servers: NATS_URL });
});
test.after.always(async () => {
  for (const socket of sockets) socket.ws.terminate();
  await nc?.close();
  await stack?.stop();
});

async function setup() {
  const ws = await seedWorkspace(stack);
  const daemonId = `daemon-${randomUUID().slice(0, 8)}`;
  const runtimeId = await seedRuntime(stack, ws, daemonId);
  const agentId = await seedAgent(stack, ws, runtimeId, { maxConcurrentTasks: 10 });
  return { ws, daemonId, runtimeId, agentId, token: ws.member.pat };
}

/**
 * Opens a daemon socket; when the gateway's hub is given (the stack's for
 * its own gateway), waits until that replica watches the runtimes at the
 * NATS server, so a task enqueued next is sure to wake the socket.
 */
async function open(
  token: string | undefined,
  runtimeIds: string[],
  options = {},
  baseUrl = stack.gatewayUrl,
  hub: Stack["gatewaySockets"] | undefined = baseUrl === stack.gatewayUrl ? stack.gatewaySockets : undefined,
) {
  const socket = await openSocket(baseUrl, token, runtimeIds, options);
  sockets.push(socket);
  if (hub) await untilWatched(hub, runtimeIds);
  return socket;
}

/** A counter of this process's gateways, summed over the series whose labels include `labels`. */
async function counted(name: string, labels: Record<string, string>): Promise<number> {
  const metric = await metrics.getSingleMetric(name)!.get();
  return metric.values.filter((v) => Object.entries(labels).every(([label, value]) => v.labels[label] === value)).reduce((sum, v) => sum + v.value, 0);
}

function acksWithOutcome(outcome: string): Promise<number> {
  return counted("gateway_daemon_socket_acks_total", { outcome });
}

async function refusal(token: string | undefined, query: string, headers: Record<string, string> = {}) {
  const error = await openSocketRaw(token, query, headers).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof RefusedUpgrade)) throw new Error(`expected a refused upgrade, got ${String(error)}`);
  return error;
}

function openSocketRaw(token: string | undefined, query: string, headers: Record<string, string>) {
  const url = `${stack.gatewayUrl.replace(/^http/, "ws")}/api/daemon/ws${query}`;
  return import("ws").then(
    ({ WebSocket }) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(url, { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });
        ws.once("open", () => {
          ws.terminate();
          resolve();
        });
        ws.once("unexpected-response", (_request, response) => {
          let body = "";
          response.on("data", (chunk: Buffer) => (body += chunk.toString()));
          response.on("end", () => reject(new RefusedUpgrade(response.statusCode ?? 0, response.headers, body)));
        });
        ws.once("error", reject);
      }),
  );
}

test("upgrade refusals answer the contract's errors, in its order, before any handshake", async (t) => {
  const { ws, runtimeId, token } = await setup();
  const other = await seedWorkspace(stack);
  const foreign = await seedRuntime(stack, other);
  const { token: daemonToken } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "another-daemon", ttlSeconds: 3600 });

  const cases: Array<[string | undefined, string, number, string]> = [
    [undefined, `?runtime_ids=${runtimeId}`, 401, '{"error":"missing authorization header"}'],
    [`mul_${"0".repeat(40)}`, `?runtime_ids=${runtimeId}`, 401, '{"error":"invalid token"}'],
    [daemonToken, "", 400, '{"error":"runtime_ids required"}\n'],
    [daemonToken, "?runtime_ids=%20,%20", 400, '{"error":"runtime_ids required"}\n'],
    [token, "?runtime_ids=not-a-uuid", 400, '{"error":"invalid runtime_id"}\n'],
    [token, `?runtime_ids=${randomUUID()}`, 404, '{"error":"runtime not found"}\n'],
    [token, `?runtime_ids=${foreign}`, 404, '{"error":"not found"}\n'],
    [token, `?runtime_id=${runtimeId}&runtime_ids=${randomUUID()}`, 404, '{"error":"runtime not found"}\n'],
    // A daemon token reaches only runtimes of its own daemon.
    [daemonToken, `?runtime_ids=${runtimeId}`, 404, '{"error":"runtime not found"}\n'],
  ];
  for (const [credential, query, status, body] of cases) {
    const refused = await refusal(credential, query);
    t.is(refused.status, status, query);
    t.is(refused.body, body, query);
  }
});

test("a plain GET with good credentials gets the WebSocket library's 400 as text", async (t) => {
  const { runtimeId, token } = await setup();
  const answer = await http(stack.gatewayUrl, "GET", `/api/daemon/ws?runtime_ids=${runtimeId}`, { token });
  t.is(answer.status, 400);
  t.is(answer.text, "Bad Request\n");
  t.is(answer.contentType, "text/plain; charset=utf-8");
  t.is(answer.headers.get("sec-websocket-version"), "13");
  const wrongMethod = await http(stack.gatewayUrl, "POST", `/api/daemon/ws?runtime_ids=${runtimeId}`, { token });
  t.is(wrongMethod.status, 405);
});

test("the upgrade answers 101 with no subprotocol even when one is offered; any origin", async (t) => {
  const { runtimeId, token } = await setup();
  const socket = await open(token, [runtimeId], { protocol: "chat", headers: { origin: "https://evil.example" } } as object);
  t.is(socket.ws.protocol, "");
  t.is(socket.ws.extensions, "");
});

test("a task queued for a watched runtime arrives as task_available with its id, on every socket watching it", async (t) => {
  const { runtimeId, agentId, token, ws } = await setup();
  const first = await open(token, [runtimeId]);
  const second = await open(ws.owner.pat, [runtimeId]);
  const { task } = await enqueue(stack, agentId);
  for (const socket of [first, second]) {
    const frame = await socket.next((f) => f.type === "daemon:task_available" && f.payload.task_id === task.id);
    t.is(frame.raw, `{"type":"daemon:task_available","payload":{"runtime_id":"${runtimeId}","task_id":"${task.id}"}}`);
  }
});

test("a retry wakes the runtime with the retry's id; a finished task wakes it without one", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const socket = await open(token, [runtimeId]);
  const { task } = await enqueue(stack, agentId, { maxAttempts: 2 });
  await claimOverHttp(stack, token, runtimeId);
  // A reason the runtime caused is retried.
  const failed = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/fail`, { token, body: { error: "boom", failure_reason: "timeout" } });
  t.is(failed.status, 200);
  const retry = await socket.next((f) => f.type === "daemon:task_available" && f.payload.task_id !== undefined && f.payload.task_id !== task.id);
  t.is(retry.payload.runtime_id, runtimeId);
  const freed = await socket.next((f) => f.type === "daemon:task_available" && f.payload.task_id === undefined);
  t.is(freed.raw, `{"type":"daemon:task_available","payload":{"runtime_id":"${runtimeId}"}}`);
});

test("a beat over the socket is acked with the shape of §12 and delivers pending actions once", async (t) => {
  const { runtimeId, token } = await setup();
  const socket = await open(token, [runtimeId]);
  socket.beat(runtimeId);
  const plain = await socket.next((f) => f.type === "daemon:heartbeat_ack");
  t.is(plain.raw, `{"type":"daemon:heartbeat_ack","payload":{"runtime_id":"${runtimeId}","status":"ok"}}`);
  const { action } = await stack.liveness.enqueueAction({
    runtimeId,
    kind: ActionKind.ACTION_KIND_UPDATE,
    targetVersion: "1.2.3",
    skillKey: "",
    importAction: "",
    supportsConflict: false,
  });
  // Today's daemon is told at once that something waits for it.
  const hint = await socket.next((f) => f.type === "daemon:pending_work");
  t.is(hint.raw, `{"type":"daemon:pending_work","payload":{"runtime_id":"${runtimeId}"}}`);
  socket.beat(runtimeId);
  const carrying = await socket.next((f) => f.type === "daemon:heartbeat_ack" && f.payload.pending_update !== undefined);
  t.is(
    carrying.raw,
    `{"type":"daemon:heartbeat_ack","payload":{"runtime_id":"${runtimeId}","status":"ok","pending_update":{"id":"${action!.id}","target_version":"1.2.3"}}}`,
  );
  socket.beat(runtimeId);
  await waitFor("the third ack", () => socket.frames.filter((f) => f.type === "daemon:heartbeat_ack").length === 3);
  t.is(socket.frames.filter((f) => f.payload.pending_update !== undefined).length, 1, "popped exactly once");
  const http_ = await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token, body: { runtime_id: runtimeId } });
  t.is(http_.text, '{"status":"ok"}\n', "not again over HTTP either");
});

test("a beat for a runtime outside the socket's set gets no ack; garbage and unknown types are ignored", async (t) => {
  const { runtimeId, token } = await setup();
  const other = await setup();
  const socket = await open(token, [runtimeId]);
  socket.beat(other.runtimeId);
  socket.ws.send("not json at all");
  socket.send("daemon:future_thing", { x: 1 });
  socket.beat(runtimeId);
  const ack = await socket.next((f) => f.type === "daemon:heartbeat_ack");
  t.is(ack.payload.runtime_id, runtimeId);
  // Frames are answered in order on one socket: had the foreign beat been acked, it would have come first.
  t.is(socket.frames.filter((f) => f.type === "daemon:heartbeat_ack").length, 1);
  t.true(socket.ws.readyState === socket.ws.OPEN);
});

test("a runtime deleted after the upgrade is acked runtime_gone, echoing the id as sent", async (t) => {
  const { ws, token } = await setup();
  const oldHost = `old-host-${randomUUID().slice(0, 6)}`;
  const legacy = await seedRuntime(stack, ws, oldHost);
  const upper = legacy.toUpperCase();
  const socket = await open(token, [upper]);
  // The daemon re-registers under its new id: the legacy runtime is folded in and its row deleted.
  const merged = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token,
    body: { workspace_id: ws.workspaceId, daemon_id: `new-${oldHost}`, legacy_daemon_ids: [oldHost], runtimes: [{ type: "claude" }] },
  });
  t.is(merged.status, 200);
  await waitFor(
    "the legacy runtime to be gone",
    async () => {
      socket.beat(upper);
      const ack = await socket.next((f) => f.type === "daemon:heartbeat_ack", 1_000).catch(() => undefined);
      socket.frames.length = 0;
      return ack?.payload.runtime_gone === true ? ack : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  ).then((ack) => {
    t.is(ack.raw, `{"type":"daemon:heartbeat_ack","payload":{"runtime_id":"${upper}","status":"runtime_gone","runtime_gone":true}}`);
  });
});

test("the gateway pings; a socket that answers stays, one that never answers is closed after the pong deadline", async (t) => {
  const { runtimeId, token } = await setup();
  const keepalive = { WS_PING_INTERVAL_MS: String(PING_MS), WS_PONG_TIMEOUT_MS: String(PONG_TIMEOUT_MS) };
  const own = await startGateway(loadGatewayConfig({ ...stack.env, ...keepalive, GATEWAY_PORT: "0" }), createLogger("test", "silent"));
  t.teardown(() => own.stop());
  const url = `http://127.0.0.1:${own.port}`;
  const answering = await open(token, [runtimeId], {}, url, own.sockets);
  let pings = 0;
  answering.ws.on("ping", () => pings++);
  const silent = await open(token, [runtimeId], { autoPong: false }, url, own.sockets);
  const closed = await silent.closed;
  t.is(closed.code, 1006, "cut without a close frame, like a dead peer");
  t.true(pings >= 1, `${pings} pings answered meanwhile`);
  t.is(answering.ws.readyState, answering.ws.OPEN);
});

test("a frame larger than the limit closes the socket with 1009", async (t) => {
  const { runtimeId, token } = await setup();
  const socket = await open(token, [runtimeId]);
  socket.ws.send("x".repeat(64 * 1024 + 1));
  t.is((await socket.closed).code, 1009);
});

/** Wake-ups the gateways of this process have handled so far: passed on, dropped, or for no socket here. */
function wakeupsHandled(): Promise<number> {
  return counted("gateway_daemon_socket_signals_total", { kind: "wake" });
}

/** Wake-ups published at a time while flooding a socket that does not read. */
const FLOOD_BURST = 2_000;

// Serial, on a gateway of its own: the flood of wake-ups must not slow the other tests' sockets.
test.serial("a socket that does not read its wake-ups is evicted, never buffered without bound", async (t) => {
  const { runtimeId, token } = await setup();
  // Its own subject root too: the stack's task queue hears every wake-up of its root, and a backlog
  // of tens of thousands of them would stall this process (and the tests that follow) for seconds.
  const floodRoot = `${stack.env.EVENTS_SUBJECT_ROOT ?? "controlplane"}-flood`;
  const own = await startGateway(loadGatewayConfig({ ...stack.env, EVENTS_SUBJECT_ROOT: floodRoot, GATEWAY_PORT: "0" }), createLogger("test", "silent"));
  t.teardown(() => own.stop());
  const socket = await open(token, [runtimeId], {}, `http://127.0.0.1:${own.port}`, own.sockets);
  // The daemon stops reading: its kernel buffers fill, then the gateway's queue.
  (socket.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const subject = taskWakeSubject(floodRoot, runtimeId);
  const handledBefore = await wakeupsHandled();
  let published = 0;
  await waitFor(
    "the eviction",
    async () => {
      // The next burst goes once the gateway has handled the last one, all but the frames its queue
      // may hold unwritten: the flood stays a burst ahead of the gateway. Unpaced (20,000 a round),
      // it ran far ahead of it, 40,000 wake-ups where 2,000 evict, and the backlog left after the
      // eviction was read by this process, whose stack served the tests that followed.
      const handled = (await wakeupsHandled()) - handledBefore;
      if (handled >= published - SEND_QUEUE_FRAMES - 1) {
        for (let i = 0; i < FLOOD_BURST; i++) nc.publish(subject, randomUUID());
        published += FLOOD_BURST;
        await nc.flush();
      }
      return own.sockets.watching(runtimeId) === 0;
    },
    { timeoutMs: 60_000, intervalMs: 10 },
  );
  t.is(own.sockets.watching(runtimeId), 0);
});

test("a wake-up reaches a socket held by another gateway replica", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const second = await startGateway(loadGatewayConfig({ ...stack.env, GATEWAY_PORT: "0" }), createLogger("test", "silent"));
  try {
    const socket = await open(token, [runtimeId], {}, `http://127.0.0.1:${second.port}`, second.sockets);
    const { task } = await enqueue(stack, agentId);
    const frame = await socket.next((f) => f.type === "daemon:task_available" && f.payload.task_id === task.id);
    t.is(frame.payload.runtime_id, runtimeId);
  } finally {
    await second.stop();
  }
});

test("a gateway shutting down closes its sockets with 1001 so daemons reconnect elsewhere", async (t) => {
  const { runtimeId, token } = await setup();
  const leaving = await startGateway(loadGatewayConfig({ ...stack.env, GATEWAY_PORT: "0" }), createLogger("test", "silent"));
  const socket = await open(token, [runtimeId], {}, `http://127.0.0.1:${leaving.port}`);
  await leaving.stop();
  t.deepEqual(await socket.closed, { code: 1001, reason: "server shutting down" });
});

test("a profile change of the workspace is hinted to its sockets", async (t) => {
  const { ws, runtimeId, token } = await setup();
  const socket = await open(token, [runtimeId]);
  const { profile } = await stack.profiles.createProfile({
    workspaceId: ws.workspaceId,
    displayName: `p-${randomUUID().slice(0, 6)}`,
    protocolFamily: "claude",
    commandName: "claude",
    fixedArgs: [],
    visibility: "",
  });
  const hint = await socket.next((f) => f.type === "daemon:runtime_profiles_changed");
  t.is(hint.raw, `{"type":"daemon:runtime_profiles_changed","payload":{"workspace_id":"${ws.workspaceId}","runtime_profile_id":"${profile!.id}"}}`);
});

test("revoking the socket's token closes it with 1008 at once, and the token is refused over HTTP at once", async (t) => {
  const { ws, runtimeId } = await setup();
  const issued = await stack.identity.issuePersonalAccessToken({ userId: ws.member.userId, name: "revoke-me", ttlSeconds: 3600 });
  const socket = await open(issued.token, [runtimeId]);
  // Used once over HTTP, so the gateway's auth cache holds it.
  t.is((await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: issued.token, body: { runtime_id: runtimeId } })).status, 200);
  const revokedAt = Date.now();
  await stack.identity.revokeToken({ tokenId: issued.info!.id });
  t.deepEqual(await socket.closed, { code: 1008, reason: "credentials revoked" });
  // The event is relayed after the revoke commits: poll, far below the auth cache's TTL (30 s) the old code waited out.
  await waitFor("the first refusal", async () => {
    const answer = await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: issued.token, body: { runtime_id: runtimeId } });
    return answer.status === 401;
  });
  t.log(`revoke to first refusal: ${Date.now() - revokedAt} ms`);
});

test("membership changes: the user's sockets are told; a removed member's socket closes", async (t) => {
  const { ws, runtimeId } = await setup();
  const socket = await open(ws.admin.pat, [runtimeId]);
  const elsewhere = await seedWorkspace(stack);
  await stack.identity.addMember({ workspaceId: elsewhere.workspaceId, userId: ws.admin.userId, role: 3 });
  const hint = await socket.next((f) => f.type === "daemon:workspaces_changed");
  t.is(hint.raw, '{"type":"daemon:workspaces_changed","payload":{}}');
  await stack.identity.removeMember({ workspaceId: ws.workspaceId, userId: ws.admin.userId });
  t.is((await socket.closed).code, 1008);
});

test("an ack that cannot be delivered gives its popped actions back for the next beat", async (t) => {
  const { runtimeId, token } = await setup();
  const { action } = await stack.liveness.enqueueAction({
    runtimeId,
    kind: ActionKind.ACTION_KIND_UPDATE,
    targetVersion: "9.9.9",
    skillKey: "",
    importAction: "",
    supportsConflict: false,
  });
  const undeliveredBefore = await acksWithOutcome("undelivered");
  const socket = await open(token, [runtimeId]);
  socket.beat(runtimeId);
  // The daemon is gone before its ack can be written.
  socket.ws.terminate();
  await socket.closed;
  await waitFor("the beat to be answered to nobody", async () => (await acksWithOutcome("undelivered")) === undeliveredBefore + 1);
  const redelivered = await waitFor("the action to be delivered again over HTTP", async () => {
    const answer = await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token, body: { runtime_id: runtimeId } });
    return (answer.json as { pending_update?: { id: string } }).pending_update;
  });
  t.is(redelivered.id, action!.id);
});

const TODAY = { headers: { "x-client-capabilities": "skill-bundles-v1,rpc-v1" } };

test("acks advertise rpc-v1 only to a daemon that can use it (HC-1)", async (t) => {
  const { runtimeId, token } = await setup();
  const today = await open(token, [runtimeId], TODAY);
  const seed = await open(token, [runtimeId]);
  today.beat(runtimeId);
  seed.beat(runtimeId);
  const advertised = await today.next((f) => f.type === "daemon:heartbeat_ack");
  t.is(advertised.raw, `{"type":"daemon:heartbeat_ack","payload":{"runtime_id":"${runtimeId}","status":"ok","server_capabilities":["rpc-v1"]}}`);
  const plain = await seed.next((f) => f.type === "daemon:heartbeat_ack");
  t.false("server_capabilities" in plain.payload);
});

test("tasks.claim over the socket hands out tasks as the batch claim does; errors come back as RPC answers (H-48, H-49, H-50, HC-2)", async (t) => {
  const { runtimeId, agentId, token, daemonId } = await setup();
  const { task } = await enqueue(stack, agentId);
  const socket = await open(token, [runtimeId], TODAY);
  socket.send("daemon:rpc_request", {
    request_id: "r1",
    method: "tasks.claim",
    body: { daemon_id: daemonId, runtime_ids: [runtimeId], max_tasks: 4 },
    timeout_ms: 5000,
  });
  const claimed = await socket.next((f) => f.type === "daemon:rpc_response" && f.payload.request_id === "r1");
  t.is(claimed.payload.status, 200);
  const tasks = (claimed.payload.body as { tasks: Array<{ id: string; auth_token: string; agent: { id: string } }> }).tasks;
  t.deepEqual(
    tasks.map((x) => x.id),
    [task.id],
  );
  t.regex(tasks[0]!.auth_token, /^mat_/);
  t.is(tasks[0]!.agent.id, agentId);

  socket.send("daemon:rpc_request", { request_id: "r2", method: "tasks.claim", body: { runtime_ids: [runtimeId], max_tasks: 1 } });
  const refused = await socket.next((f) => f.type === "daemon:rpc_response" && f.payload.request_id === "r2");
  t.is(refused.raw, '{"type":"daemon:rpc_response","payload":{"request_id":"r2","status":400,"body":{"error":"daemon_id is required"}}}');

  socket.send("daemon:rpc_request", { request_id: "r3", method: "tasks.steal" });
  const unknown = await socket.next((f) => f.type === "daemon:rpc_response" && f.payload.request_id === "r3");
  t.is(unknown.raw, '{"type":"daemon:rpc_response","payload":{"request_id":"r3","status":404,"error":"unknown rpc method \\"tasks.steal\\""}}');

  // No request id: dropped without an answer (the next answered request proves the order).
  socket.send("daemon:rpc_request", { method: "tasks.claim", body: {} });
  socket.send("daemon:rpc_request", { request_id: "r4", method: "nope" });
  await socket.next((f) => f.payload.request_id === "r4");
  t.is(socket.frames.filter((f) => f.type === "daemon:rpc_response").length, 4);
});

test("more than 8 RPCs in flight on one socket answer 429", async (t) => {
  const { runtimeId, token, daemonId } = await setup();
  const socket = await open(token, [runtimeId], TODAY);
  for (let i = 0; i < 12; i++) {
    socket.send("daemon:rpc_request", { request_id: `q${i}`, method: "tasks.claim", body: { daemon_id: daemonId, runtime_ids: [runtimeId], max_tasks: 1 } });
  }
  await waitFor("every answer", () => socket.frames.filter((f) => f.type === "daemon:rpc_response").length === 12);
  const statuses = socket.frames.filter((f) => f.type === "daemon:rpc_response").map((f) => f.payload.status);
  t.is(statuses.filter((s) => s === 429).length, 4);
  t.is(statuses.filter((s) => s === 200).length, 8);
});

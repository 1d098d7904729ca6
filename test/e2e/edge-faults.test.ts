import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { Writable } from "node:stream";
import test from "ava";
import { LIMITS } from "@controlplane/config";
import { loadGatewayConfig } from "@controlplane/gateway/config";
import { startGateway } from "@controlplane/gateway";
import { createLogger } from "@controlplane/log";
import { registry as metrics } from "@controlplane/metrics";
import { query, waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// Fault-run defects at the gateway's edge: abandoned long-polls, claims past
// their callers' deadlines, out-of-range numbers, NUL bytes, unbounded
// batches, the parser's own errors, and 5xx without a cause.

const REQUEST_TIMEOUT_MS = 400;

let stack: Stack;
test.before(async () => {
  stack = await startStack({ REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
});
test.after.always(async () => {
  await stack?.stop();
});

async function setup() {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId, { maxConcurrentTasks: 10 });
  return { ws, runtimeId, agentId, token: ws.member.pat };
}

async function waitingClaims(): Promise<number> {
  const gauge = await metrics.getSingleMetric("taskqueue_long_poll_waiting")!.get();
  return gauge.values[0]?.value ?? 0;
}

const taskStatus = async (taskId: string) =>
  (await query<{ status: string }>(stack.db.url, "SELECT status FROM taskqueue.task WHERE id = $1", [taskId]))[0]!.status;

test.serial("a long-poll whose client hung up stops waiting and takes no task", async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const clients = Array.from({ length: 5 }, () => new AbortController());
  const polls = clients.map((client) =>
    fetch(`${stack.gatewayUrl}/api/daemon/runtimes/${runtimeId}/tasks/claim?wait=25`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      signal: client.signal,
    }).catch(() => "aborted"),
  );
  await waitFor("five claims waiting", async () => (await waitingClaims()) === 5);
  for (const client of clients) client.abort();
  t.deepEqual(await Promise.all(polls), Array(5).fill("aborted"));
  // The task queue saw every cancellation: nobody is left waiting for these runtimes.
  await waitFor("the waits to end", async () => (await waitingClaims()) === 0);
  const { task } = await enqueue(stack, agentId);
  t.is(await taskStatus(task.id), "queued", "no ghost claim took it");
  const live = await claimOverHttp(stack, ws.member.pat, runtimeId);
  t.is(live.status, 200, live.text);
  t.is((live.json as { task: { id: string } | null }).task?.id, task.id, "the next live claim gets it");
});

test.serial("a claim waits no longer than its caller's deadline, answering before it", async (t) => {
  const { runtimeId } = await setup();
  // The caller will wait 3 s at most: the task queue must answer (no task) before that, not start a 25 s wait.
  const answer = await stack.tasks.claimTask({ runtimeId, waitMs: 25_000 }, { deadlineMs: 3_000 });
  t.is(answer.claimed, undefined);
});

test.serial("a gateway shutting down answers its long-polls with no task instead of cutting them", async (t) => {
  const { runtimeId, token } = await setup();
  const gateway = await startGateway(loadGatewayConfig({ ...stack.env, GATEWAY_PORT: "0", SHUTDOWN_GRACE_MS: "20000" }), createLogger("test", "silent"));
  const before = await waitingClaims();
  const polls = Array.from({ length: 3 }, () =>
    http(`http://127.0.0.1:${gateway.port}`, "POST", `/api/daemon/runtimes/${runtimeId}/tasks/claim?wait=25`, { token }),
  );
  await waitFor("three claims waiting", async () => (await waitingClaims()) === before + 3);
  const stopped = gateway.stop();
  for (const answer of await Promise.all(polls)) {
    t.is(answer.status, 200);
    t.is(answer.text, '{"task":null}\n');
  }
  await stopped;
  await waitFor("the waits to end", async () => (await waitingClaims()) === before);
});

test.serial("out-of-range numbers answer the contract's 400, never a 500", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, token, runtimeId);
  const post = (path: string, rawBody: string) => http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}${path}`, { token, rawBody });
  const progress = await post("/progress", '{"summary":"s","step":2147483648,"total":1}');
  t.is(progress.status, 400);
  t.deepEqual(progress.json, { error: "step: out of range" });
  for (const tokens of ["9007199254740993", "1e308"]) {
    const usage = await post("/usage", `{"usage":[{"provider":"p","model":"m","input_tokens":${tokens}}]}`);
    t.is(usage.status, 400, tokens);
    t.deepEqual(usage.json, { error: "usage.input_tokens: out of range" }, tokens);
  }
  const deep = await post("/messages", `{"messages":[{"seq":1,"type":"text","input":${"[".repeat(10_000)}${"]".repeat(10_000)}}]}`);
  t.is(deep.status, 400);
  t.deepEqual(deep.json, { error: "invalid request body" });
  const batch = { messages: Array.from({ length: 10_000 }, (_, i) => ({ seq: i + 1, type: "text", content: "x" })) };
  const big = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/messages`, { token, body: batch });
  t.is(big.status, 400);
  t.deepEqual(big.json, { error: `messages: too many entries (at most ${LIMITS.MESSAGES_PER_BATCH})` });
  t.deepEqual((await query(stack.db.url, "SELECT 1 FROM taskqueue.task_message WHERE task_id = $1", [task.id])).length, 0);
  // `since` is an int64 as in the original: past every seq it is an empty page; past int64 it is malformed.
  const far = await http(stack.gatewayUrl, "GET", `/api/daemon/tasks/${task.id}/messages?since=999999999999999999`, { token });
  t.is(far.status, 200);
  t.is(far.text, "[]\n");
  const malformed = await http(stack.gatewayUrl, "GET", `/api/daemon/tasks/${task.id}/messages?since=99999999999999999999`, { token });
  t.is(malformed.status, 400);
  t.deepEqual(malformed.json, { error: "invalid since parameter" });
});

test.serial("a NUL in free text is dropped and the task completes; in a name it is a 400", async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, token, runtimeId);
  await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/start`, { token });
  const done = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/complete`, {
    token,
    rawBody: '{"output":"a\\u0000b\\ud800","session_id":"s"}',
  });
  t.is(done.status, 200, done.text);
  t.is((done.json as { status: string }).status, "completed");
  t.deepEqual((done.json as { result: { output: string } }).result.output, "ab\ufffd");
  const register = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token,
    rawBody: JSON.stringify({ workspace_id: ws.workspaceId, daemon_id: "d", device_name: "a\u0000b", runtimes: [{ type: "claude" }] }),
  });
  t.is(register.status, 400);
  t.deepEqual(register.json, { error: "device_name: contains a NUL character" });
});

test.serial("register takes at most the documented number of runtimes and writes nothing past it", async (t) => {
  const { ws, token } = await setup();
  const runtimes = Array.from({ length: LIMITS.REGISTER_RUNTIMES + 1 }, (_, i) => ({ type: `cli-${i}`, version: "1" }));
  const daemonId = `d-${randomUUID()}`;
  const answer = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token,
    body: { workspace_id: ws.workspaceId, daemon_id: daemonId, runtimes },
  });
  t.is(answer.status, 400);
  t.deepEqual(answer.json, { error: `runtimes: too many entries (at most ${LIMITS.REGISTER_RUNTIMES})` });
  t.is((await query(stack.db.url, "SELECT 1 FROM registry.agent_runtime WHERE daemon_id = $1", [daemonId])).length, 0);
  // Internal callers meet the same bound.
  const error = await t.throwsAsync(
    stack.registry.registerDaemon({
      workspaceId: ws.workspaceId,
      daemonId,
      legacyDaemonIds: [],
      deviceName: "",
      cliVersion: "",
      launchedBy: "",
      runtimes: runtimes.map((r) => ({ name: "", type: r.type, version: r.version, status: "", profileId: "" })),
      failedProfiles: [],
      callerWorkspaceId: ws.workspaceId,
    }),
  );
  t.regex(error.message, /too many runtimes/);
});

test.serial("the parser's own refusals answer in the contract's error shape", async (t) => {
  const { token } = await setup();
  const badUrl = await http(stack.gatewayUrl, "GET", "/api/daemon/tasks/%zz/status", { token });
  t.is(badUrl.status, 400);
  t.deepEqual(badUrl.json, { error: "invalid request URL" });
  const longParam = await http(stack.gatewayUrl, "GET", `/api/daemon/tasks/${"a".repeat(2_000)}/status`, { token });
  t.is(longParam.status, 414);
  t.deepEqual(longParam.json, { error: "request URI too long" });
  const shortJunk = await http(stack.gatewayUrl, "GET", `/api/daemon/tasks/${"a".repeat(200)}/status`, { token });
  t.is(shortJunk.status, 400);
  t.deepEqual(shortJunk.json, { error: "invalid task_id" });
  const headers = await rawRequest(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"h".repeat(20_000)}\r\n\r\n`);
  t.regex(headers, /^HTTP\/1\.1 431 /);
  t.true(headers.endsWith('{"error":"request headers too large"}\n'), headers);
  const garbage = await rawRequest("this is not HTTP\r\n\r\n");
  t.regex(garbage, /^HTTP\/1\.1 400 /);
  t.true(garbage.endsWith('{"error":"malformed HTTP request"}\n'), garbage);
});

test.serial("a request body that never finishes arriving is answered 408 and its connection closed", async (t) => {
  const { runtimeId, token } = await setup();
  const head =
    `POST /api/daemon/heartbeat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"runtime_id":"${runtimeId}"`;
  // Only part of the announced body is ever sent: the socket ends when the server gives up on it.
  const answer = await rawRequest(head, { keepOpen: true });
  t.regex(answer, /^HTTP\/1\.1 408 /);
  t.true(answer.endsWith('{"error":"request timed out before it was complete"}\n'), answer);
});

test.serial("every 5xx is logged with its route, gRPC status, cause and request id", async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  const gateway = await startGateway(loadGatewayConfig({ ...stack.env, GATEWAY_PORT: "0" }), createLogger("gateway", "info", sink));
  try {
    // The product records the task's issue in another workspace after it was queued: the claim is the contract's 500.
    const ws = await seedWorkspace(stack);
    const { token: daemonToken } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d1", ttlSeconds: 3600 });
    const register = await http(`http://127.0.0.1:${gateway.port}`, "POST", "/api/daemon/register", {
      token: daemonToken,
      body: { workspace_id: ws.workspaceId, daemon_id: "d1", runtimes: [{ type: "claude" }] },
    });
    const runtimeId = (register.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
    const agentId = await seedAgent(stack, ws, runtimeId, { ownerId: ws.owner.userId });
    const { task } = await enqueue(stack, agentId);
    const elsewhere = await seedWorkspace(stack);
    await stack.tasks.recordWorkItem({ item: { kind: "issue", id: task.issueId!, workspaceId: elsewhere.workspaceId, status: "todo", updatedAt: new Date() } });
    const claim = await http(`http://127.0.0.1:${gateway.port}`, "POST", `/api/daemon/runtimes/${runtimeId}/tasks/claim`, {
      token: daemonToken,
      headers: { "x-request-id": "req-5xx-test" },
    });
    t.is(claim.status, 500);
    const logged = await waitFor("the 5xx log line", () =>
      lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.request_id === "req-5xx-test" && line.level === 50),
    );
    t.is(logged.status, 500);
    t.is(logged.grpc_code, "INTERNAL");
    t.is(logged.route, "/api/daemon/runtimes/:runtimeId/tasks/claim");
    t.is(logged.msg, "task workspace isolation check failed");
    t.truthy((logged.err as { message?: string } | undefined)?.message, "the cause is logged");
  } finally {
    await gateway.stop();
  }
});

/** Sends raw bytes to the gateway and returns everything it answers before closing. */
function rawRequest(bytes: string, options: { keepOpen?: boolean } = {}): Promise<string> {
  const { hostname, port } = new URL(stack.gatewayUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(bytes);
      if (!options.keepOpen) socket.end();
    });
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString()));
    socket.on("close", () => resolve(received));
    socket.on("error", (error) => (received ? resolve(received) : reject(error)));
  });
}

test.serial("an agent with megabytes of skills upserts; its event names it and carries only its limits", async (t) => {
  const { ws, runtimeId } = await setup();
  const content = "s".repeat(600 * 1024);
  const skills = [1, 2, 3].map((n) => ({ id: randomUUID(), name: `skill-${n}`, description: "", content, files: [] }));
  const agentId = await seedAgent(stack, ws, runtimeId, { skills, maxConcurrentTasks: 7 });
  const limit = await waitFor(
    "the task queue to learn the agent's limit from agent.upserted",
    async () =>
      (await query<{ max_concurrent_tasks: number }>(stack.db.url, "SELECT max_concurrent_tasks FROM taskqueue.agent_limit WHERE agent_id = $1", [agentId]))[0],
  );
  t.is(limit.max_concurrent_tasks, 7);
  t.is((await stack.registry.getAgent({ agentId })).agent!.skills.length, 3, "the agent itself is read with GetAgent");
});

test.serial("a body over the limit is answered 413 in the contract's shape, and the client gets to read it", async (t) => {
  const { runtimeId, token } = await setup();
  const bodyBytes = 24 * 1024 * 1024;
  // A gateway with the default request timeout (this file's is short, for the 408 test).
  const gateway = await startGateway(loadGatewayConfig({ ...stack.env, GATEWAY_PORT: "0", REQUEST_TIMEOUT_MS: "30000" }), createLogger("test", "silent"));
  t.teardown(() => gateway.stop());
  const [hostname, port] = ["127.0.0.1", gateway.port];
  // A daemon uploading slowly: the answer must wait for the upload, not reset the connection under it.
  const outcome = await new Promise<{ answer: string; writeError?: string }>((resolve) => {
    let answer = "";
    let writeError: string | undefined;
    const socket = connect(Number(port), hostname, async () => {
      const start = `{"runtime_id":"${runtimeId}","padding":"`;
      socket.write(
        `POST /api/daemon/heartbeat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n\r\n${start}`,
      );
      let left = bodyBytes - start.length - 2;
      const chunk = Buffer.alloc(256 * 1024, "x");
      while (left > 0 && !writeError) {
        const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= part.length;
        if (!socket.write(part)) await new Promise((r) => socket.once("drain", r));
      }
      socket.write('"}');
    });
    socket.on("data", (data) => (answer += data.toString()));
    socket.on("error", (error) => (writeError = error.message));
    socket.on("close", () => resolve({ answer, writeError }));
  });
  t.is(outcome.writeError, undefined, "the upload was not cut");
  t.regex(outcome.answer, /^HTTP\/1\.1 413 /);
  t.true(outcome.answer.endsWith('{"error":"request body too large"}\n'), outcome.answer);
});

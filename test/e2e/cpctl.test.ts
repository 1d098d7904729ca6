import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";
import { isConnectedBySocket, SOCKET_FRESH_MS } from "../../tools/cpctl/src/commands/runtime.js";
import { http } from "../support/http.js";
import { JWT_SECRET, seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { seedRuntime } from "../support/tasks.js";

const run = promisify(execFile);
const CPCTL = fileURLToPath(new URL("../../bin/cpctl.js", import.meta.url));

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

async function cpctl(...args: string[]): Promise<unknown> {
  return JSON.parse(await cpctlText("--json", ...args));
}

/** cpctl's output as a person sees it (or as JSON with "--json" first). */
async function cpctlText(...args: string[]): Promise<string> {
  const { stdout } = await run("node", [
    CPCTL,
    "--registry",
    stack.registryAddr,
    "--profiles",
    stack.profilesAddr,
    "--tasks",
    stack.tasksAddr,
    "--liveness",
    stack.livenessAddr,
    ...args,
  ]);
  return stdout;
}

test("an operator sets up a workspace with cpctl and a daemon token works at the gateway", async (t) => {
  const user = randomUUID();
  const ws = (await cpctl("workspace", "create", "Ops Demo", "--repo", "https://example.com/r=main", "--owner", user)) as { id: string; slug: string };
  t.is(ws.slug, "ops-demo");
  const member = (await cpctl("member", "add", ws.id, randomUUID(), "--role", "admin")) as { role: number };
  t.is(member.role, 2);
  const issued = (await cpctl("token", "daemon", ws.id, "laptop", "--ttl", "30d")) as { token: string; info: { id: string } };
  t.regex(issued.token, /^mdt_[0-9a-f]{40}$/);
  const profile = (await cpctl("profile", "create", ws.id, "--name", "Fast", "--family", "claude", "--command", "claude", "--arg", "--fast")) as { id: string };

  const listed = await http(stack.gatewayUrl, "GET", `/api/daemon/workspaces/${ws.id}/runtime-profiles`, { token: issued.token });
  t.is(listed.status, 200);
  t.deepEqual(
    (listed.json as { runtime_profiles: Array<{ id: string; fixed_args: string[] }> }).runtime_profiles.map((p) => [p.id, p.fixed_args]),
    [[profile.id, ["--fast"]]],
  );

  const registered = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token: issued.token,
    body: { workspace_id: ws.id, daemon_id: "laptop", runtimes: [{ type: "claude", version: "1", status: "online" }] },
  });
  const runtimeId = (registered.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
  const runtimes = (await cpctl("runtime", "list", ws.id)) as Array<{ id: string; status: string }>;
  t.deepEqual(
    runtimes.map((r) => [r.id, r.status]),
    [[runtimeId, "online"]],
  );
  // The runtime came from a daemon token (no owner): tasks act for the agent's owner.
  const agent = (await cpctl("agent", "upsert", ws.id, runtimeId, "--name", "helper", "--env", "A=1", "--arg", "-v", "--owner", user)) as {
    created: boolean;
    agent: { customEnv: Record<string, string> };
  };
  t.true(agent.created);
  t.deepEqual(agent.agent.customEnv, { A: "1" });
  t.is(((await cpctl("agent", "list", ws.id)) as unknown[]).length, 1);
  const agentId = (agent as unknown as { agent: { id: string } }).agent.id;
  const queued = (await cpctl("task", "enqueue", agentId, "--issue", randomUUID(), "--title", "Fix it")) as { task: { id: string } };
  const claim = await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/tasks/claim`, { token: issued.token, body: {} });
  t.is((claim.json as { task: { id: string; thread_name: string } }).task.id, queued.task.id);
  t.is((claim.json as { task: { thread_name: string } }).task.thread_name, "Fix it");
  const cancelled = (await cpctl("task", "cancel", queued.task.id)) as { transitioned: boolean; task: { status: string } };
  t.deepEqual([cancelled.transitioned, cancelled.task.status], [true, "cancelled"]);
  t.is(((await cpctl("task", "list", ws.id, "--active")) as unknown[]).length, 0);

  const beat = await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: issued.token, body: { runtime_id: runtimeId } });
  t.is(beat.text, '{"status":"ok"}\n');
  t.like((await cpctl("runtime", "status", runtimeId)) as object, { status: "online" });
  const update = (await cpctl("action", "enqueue", runtimeId, "--kind", "update", "--target-version", "9.9.9")) as { id: string };
  const delivered = await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: issued.token, body: { runtime_id: runtimeId } });
  t.deepEqual(delivered.json, { status: "ok", pending_update: { id: update.id, target_version: "9.9.9" } });
  t.like((await cpctl("action", "show", update.id)) as object, { status: "running" });

  await cpctl("token", "revoke", issued.info.id);
  const tokens = (await cpctl("token", "list", "--workspace", ws.id)) as Array<{ revokedAt: string | null }>;
  t.truthy(tokens[0]!.revokedAt);
});

test("cpctl reports a refused request on stderr with a non-zero exit", async (t) => {
  const error = await t.throwsAsync(cpctl("workspace", "show", randomUUID()));
  t.like(error as object, { code: 1 });
  t.regex((error as unknown as { stderr: string }).stderr, /^cpctl: workspace not found\n$/);
});

/** `cpctl token jwt` with exactly the given JWT_SECRET (or none) in its environment. */
async function signWithCpctl(userId: string, secret: string | undefined) {
  const env = { ...process.env };
  delete env.JWT_SECRET;
  return run("node", [CPCTL, "token", "jwt", userId], { env: secret === undefined ? env : { ...env, JWT_SECRET: secret } });
}

test("token jwt signs with the registry's JWT_SECRET setting: the gateway accepts the token", async (t) => {
  const ws = await seedWorkspace(stack);
  const { stdout, stderr } = await signWithCpctl(ws.member.userId, JWT_SECRET);
  t.is(stderr, "");
  const answer = await http(stack.gatewayUrl, "GET", "/api/workspaces", { token: stdout.trim() });
  t.is(answer.status, 200);
  t.deepEqual(
    (answer.json as Array<{ id: string }>).map((w) => w.id),
    [ws.workspaceId],
  );
});

test("token jwt without JWT_SECRET says it used the development default, which this registry refuses", async (t) => {
  const ws = await seedWorkspace(stack);
  const { stdout, stderr } = await signWithCpctl(ws.member.userId, undefined);
  t.regex(stderr, /JWT_SECRET is the registry's development default/);
  const answer = await http(stack.gatewayUrl, "GET", "/api/workspaces", { token: stdout.trim() });
  t.is(answer.status, 401);
});

test("token jwt stops naming JWT_SECRET when the value is one the registry would refuse", async (t) => {
  const error = await t.throwsAsync(signWithCpctl(randomUUID(), "short"));
  t.like(error as object, { code: 1 });
  t.regex((error as unknown as { stderr: string }).stderr, /^cpctl: invalid configuration: JWT_SECRET: must be at least 16 characters\n$/);
});

test("runtime status tells a runtime whose daemon beats over a socket from one on HTTP heartbeats", async (t) => {
  const ws = await seedWorkspace(stack);
  const [socketRuntime, httpRuntime] = [await seedRuntime(stack, ws), await seedRuntime(stack, ws)];
  // A socket beat counts for two heartbeat intervals (30 s); a cpctl process can
  // take a good part of that to start on a loaded machine, so each read follows a fresh beat.
  const socketBeat = () => stack.liveness.heartbeat({ runtimeId: socketRuntime, supportsBatchImport: true, viaSocket: true });
  await socketBeat();
  await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: ws.member.pat, body: { runtime_id: httpRuntime } });

  const onSocket = (await cpctl("runtime", "status", socketRuntime)) as { lastSocketBeatAt: string | null; connectedBySocket: boolean };
  t.truthy(onSocket.lastSocketBeatAt);
  t.true(onSocket.connectedBySocket);
  await socketBeat();
  t.regex(await cpctlText("runtime", "status", socketRuntime), /^connection\s+connected by socket$/m);

  const onHttp = (await cpctl("runtime", "status", httpRuntime)) as { lastSocketBeatAt: string | null; connectedBySocket: boolean };
  t.deepEqual([onHttp.lastSocketBeatAt, onHttp.connectedBySocket], [null, false]);
  t.regex(await cpctlText("runtime", "status", httpRuntime), /^connection\s+not on a socket \(HTTP heartbeats\)$/m);
});

test("a socket beat older than two heartbeat intervals no longer counts as connected", (t) => {
  const now = Date.now();
  t.is(SOCKET_FRESH_MS, 30_000);
  t.true(isConnectedBySocket(new Date(now - SOCKET_FRESH_MS), now));
  t.false(isConnectedBySocket(new Date(now - SOCKET_FRESH_MS - 1), now));
  t.false(isConnectedBySocket(undefined, now));
});

import test from "ava";
import { createClient } from "@controlplane/grpc";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { checkHealth } from "@controlplane/testkit";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// The all-in-one's default: the services call each other in process. The
// daemon must not be able to tell: the same answers, byte for byte (the
// goldens of tasks.test.ts), and other processes still reach every service
// on its port.

let stack: Stack;
test.before(async () => {
  stack = await startStack({}, { inProcess: true });
});
test.after.always(async () => {
  await stack?.stop();
});

type TaskJson = Record<string, unknown> & { id: string; auth_token?: string };
const taskOf = (answer: { json: unknown }) => (answer.json as { task: TaskJson | null }).task;

test("a daemon beats, long-polls, starts and completes a task with the same answers as over gRPC", async (t) => {
  const ws = await seedWorkspace(stack);
  await stack.identity.updateWorkspace({
    workspaceId: ws.workspaceId,
    repos: { repos: [{ url: " https://github.com/acme/app ", description: "app" }] },
    context: "Workspace rules: be kind.",
  });
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  const token = ws.member.pat;
  const beat = await http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token, body: { runtime_id: runtimeId } });
  t.is(beat.status, 200);
  t.like(beat.json as object, { status: "ok" });

  // The long-poll waits in the task queue's handler until the enqueue wakes it.
  const waiting = claimOverHttp(stack, token, runtimeId, 25);
  const { task } = await enqueue(stack, agentId);
  const claimed = taskOf(await waiting);
  t.is(claimed?.id, task.id);

  const names = { workspace: ws.workspaceId, agent: agentId, runtime: runtimeId, first: task.id, issue: task.issueId! };
  const started = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/start`, { token });
  t.is(started.status, 200);
  const startedBody = normalize(started.text, names);
  t.is(startedBody, golden(new URL("golden/start.json", import.meta.url), startedBody));

  const completed = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/complete`, {
    token,
    body: {
      pr_url: "https://github.com/acme/app/pull/7",
      output: "Done <3",
      session_id: "sess-1",
      work_dir: `/Users/ada/multica/${ws.workspaceId}/${task.id.replaceAll("-", "").slice(0, 8)}/app`,
      branch_name: "fix-login",
    },
  });
  t.is(completed.status, 200);
  const completedBody = normalize(completed.text, names).replaceAll(task.id.replaceAll("-", "").slice(0, 8), "<first8>");
  t.is(completedBody, golden(new URL("golden/complete.json", import.meta.url), completedBody));
});

test("a domain error crosses in process with the contract's status and message", async (t) => {
  const ws = await seedWorkspace(stack);
  const missing = await http(stack.gatewayUrl, "POST", "/api/daemon/tasks/00000000-0000-4000-8000-000000000000/start", { token: ws.member.pat });
  t.is(missing.status, 404);
  t.deepEqual(missing.json, { error: "task not found" });
});

test("other processes still reach every service over gRPC on its port", async (t) => {
  for (const address of [stack.registryAddr, stack.profilesAddr, stack.tasksAddr, stack.livenessAddr]) {
    // "localhost:port" is not declared in process: this client goes over TCP, as cpctl would.
    const overTcp = address.replace("127.0.0.1", "localhost");
    t.is(await checkHealth(overTcp), "SERVING", overTcp);
  }
  const profiles = createClient(ProfileCatalogServiceService, stack.profilesAddr.replace("127.0.0.1", "localhost"));
  t.teardown(() => profiles.close());
  const ws = await seedWorkspace(stack);
  const listed = await profiles.listProfiles({ workspaceId: ws.workspaceId, enabledOnly: false });
  t.true(Array.isArray(listed.profiles));
});

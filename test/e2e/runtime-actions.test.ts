import { randomUUID } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { waitFor } from "@controlplane/testkit";
import { http, type HttpAnswer } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";
import { seedRuntime } from "../support/tasks.js";

// The user routes of a runtime (§6.2) over real HTTP: queue an update, a
// model list, a local-skill list or a skill import for the runtime's daemon,
// and read each back. seedRuntime registers with the member's PAT, so the
// plain member owns the runtime and the workspace's owner and admin do not.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const ID = /^[0-9a-f]{32}$/;
/** A Go time value: RFC 3339 with the fraction (if any), in UTC. */
const GO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

const runtimePath = (runtimeId: string) => `/api/runtimes/${runtimeId}`;

function post(path: string, token: string, body?: unknown, rawBody?: string) {
  return http(stack.gatewayUrl, "POST", path, { token, body, rawBody });
}
function get(path: string, token: string) {
  return http(stack.gatewayUrl, "GET", path, { token });
}

/** A handler-writer error: JSON with the trailing newline. */
function isError(t: ExecutionContext, answer: HttpAnswer, status: number, message: string, what = "") {
  t.is(answer.status, status, `${what} ${answer.text}`);
  t.is(answer.contentType, "application/json", what);
  t.is(answer.text, `{"error":"${message}"}\n`, what);
}

/** The request's id and times, after checking their form (the rest of the bytes are compared whole). */
function idAndTimes(t: ExecutionContext, answer: HttpAnswer) {
  t.is(answer.status, 200, answer.text);
  t.is(answer.contentType, "application/json");
  const { id, created_at, updated_at } = answer.json as { id: string; created_at: string; updated_at: string };
  t.regex(id, ID, "request ids are 32 lower-case hex characters, not UUIDs");
  t.regex(created_at, GO_TIME);
  t.regex(updated_at, GO_TIME);
  return { id, created: created_at, updated: updated_at };
}

function heartbeat(ws: SeededWorkspace, runtimeId: string) {
  return post("/api/daemon/heartbeat", ws.member.pat, { runtime_id: runtimeId, supports_batch_import: true });
}

/**
 * A runtime its daemon registered as offline, once liveness (whose memory the
 * enqueue goes by) holds it so. Registered offline rather than deregistered:
 * liveness learns a registration from two events, each of which may land after
 * a quick deregister and bring its memory back to online.
 */
async function seedOfflineRuntime(ws: SeededWorkspace): Promise<string> {
  const answer = await post("/api/daemon/register", ws.member.pat, {
    workspace_id: ws.workspaceId,
    daemon_id: `daemon-${randomUUID().slice(0, 8)}`,
    device_name: "box",
    runtimes: [{ type: "claude", version: "2.0", status: "offline" }],
  });
  if (answer.status !== 200) throw new Error(`register failed: ${answer.text}`);
  const runtimeId = (answer.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
  await waitFor(
    "liveness to hold the runtime offline",
    async () =>
      (await stack.liveness.getRuntimeLiveness({ runtimeId })).status === "offline" &&
      stack.livenessService.deps.state.runtimes.get(runtimeId)?.status === "offline",
  );
  return runtimeId;
}

/** Every route of the surface, with a body that would be accepted. */
function everyRoute(runtimeId: string, requestId = "0".repeat(32)) {
  const base = runtimePath(runtimeId);
  return [
    { method: "POST", path: `${base}/update`, body: { target_version: "1.0.0" } },
    { method: "GET", path: `${base}/update/${requestId}` },
    { method: "POST", path: `${base}/models` },
    { method: "GET", path: `${base}/models/${requestId}` },
    { method: "POST", path: `${base}/local-skills` },
    { method: "GET", path: `${base}/local-skills/${requestId}` },
    { method: "POST", path: `${base}/local-skills/import`, body: { skill_key: "pdf" } },
    { method: "GET", path: `${base}/local-skills/import/${requestId}` },
  ];
}

test("POST update queues the update (exact bytes); the read-back follows it to completed", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  // Any member may ask for an update: the admin does not own the runtime.
  const queued = await post(`${runtimePath(runtimeId)}/update`, ws.admin.jwt, { target_version: "v0.2.31", extra: 1 });
  const { id, created, updated } = idAndTimes(t, queued);
  t.is(
    queued.text,
    `{"id":"${id}","runtime_id":"${runtimeId}","status":"pending","target_version":"v0.2.31","created_at":"${created}","updated_at":"${updated}"}\n`,
  );

  const readBack = await get(`${runtimePath(runtimeId)}/update/${id}`, ws.member.pat);
  t.is(readBack.text, queued.text, "read back unchanged while pending");

  t.deepEqual((await heartbeat(ws, runtimeId)).json, { status: "ok", pending_update: { id, target_version: "v0.2.31" } });
  const running = await get(`${runtimePath(runtimeId)}/update/${id}`, ws.owner.pat);
  t.like(running.json as object, { id, status: "running" });

  const report = await post(`/api/daemon/runtimes/${runtimeId}/update/${id}/result`, ws.member.pat, { status: "completed", output: "updated <ok> & done" });
  t.is(report.text, '{"status":"ok"}\n');
  const done = await get(`${runtimePath(runtimeId)}/update/${id}`, ws.member.jwt);
  const after = idAndTimes(t, done);
  t.is(
    done.text,
    `{"id":"${id}","runtime_id":"${runtimeId}","status":"completed","target_version":"v0.2.31","output":"updated \\u003cok\\u003e \\u0026 done",` +
      `"created_at":"${created}","updated_at":"${after.updated}"}\n`,
  );
});

test("a second update while one is in flight answers 409; once it ends, a new one is taken", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const first = await post(`${runtimePath(runtimeId)}/update`, ws.member.pat, { target_version: "1.0.0" });
  const { id } = idAndTimes(t, first);
  isError(
    t,
    await post(`${runtimePath(runtimeId)}/update`, ws.owner.pat, { target_version: "1.0.1" }),
    409,
    "an update is already in progress for this runtime",
    "pending",
  );

  await heartbeat(ws, runtimeId);
  isError(
    t,
    await post(`${runtimePath(runtimeId)}/update`, ws.owner.pat, { target_version: "1.0.1" }),
    409,
    "an update is already in progress for this runtime",
    "running",
  );

  await post(`/api/daemon/runtimes/${runtimeId}/update/${id}/result`, ws.member.pat, { status: "failed", error: "disk full" });
  const failed = await get(`${runtimePath(runtimeId)}/update/${id}`, ws.member.pat);
  t.like(failed.json as object, { status: "failed", error: "disk full" });
  t.false("output" in (failed.json as object), "an empty output is left out");

  const second = await post(`${runtimePath(runtimeId)}/update`, ws.owner.pat, { target_version: "1.0.1" });
  t.not(idAndTimes(t, second).id, id);

  // Concurrent asks: exactly one is taken.
  const other = await seedRuntime(stack, ws);
  const race = await Promise.all(Array.from({ length: 8 }, () => post(`${runtimePath(other)}/update`, ws.member.pat, { target_version: "2.0.0" })));
  t.deepEqual(race.map((a) => a.status).sort(), [200, 409, 409, 409, 409, 409, 409, 409]);
});

test("update: the body is read after access, as the original decoded it", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const path = `${runtimePath(runtimeId)}/update`;
  isError(t, await post(path, ws.member.pat, undefined, ""), 400, "invalid request body", "empty body");
  isError(t, await post(path, ws.member.pat, undefined, "{"), 400, "invalid request body", "malformed");
  isError(t, await post(path, ws.member.pat, { target_version: 5 }), 400, "invalid request body", "wrong type");
  isError(t, await post(path, ws.member.pat, {}), 400, "target_version is required", "absent");
  isError(t, await post(path, ws.member.pat, undefined, "null"), 400, "target_version is required", "null");
  isError(t, await post(path, ws.member.pat, { target_version: "" }), 400, "target_version is required", "empty");
  isError(t, await post(path, ws.member.pat, { target_version: "v".repeat(256) }), 400, "target_version: too long (at most 255 characters)", "bounded");
  // Access comes first: a foreign caller learns nothing from a bad body.
  const stranger = await seedWorkspace(stack);
  isError(t, await post(path, stranger.member.pat, undefined, "{"), 404, "runtime not found", "foreign");
});

test("an update does not need the runtime online", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedOfflineRuntime(ws);
  const queued = await post(`${runtimePath(runtimeId)}/update`, ws.member.pat, { target_version: "3.0.0" });
  t.like(queued.json as object, { status: "pending", target_version: "3.0.0" });
});

test("POST models (any member) queues a model list; the read-back shows the daemon's models in the original's field order", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const queued = await post(`${runtimePath(runtimeId)}/models`, ws.owner.pat);
  const { id, created, updated } = idAndTimes(t, queued);
  t.is(queued.text, `{"id":"${id}","runtime_id":"${runtimeId}","status":"pending","supported":true,"created_at":"${created}","updated_at":"${updated}"}\n`);
  t.is((await get(`${runtimePath(runtimeId)}/models/${id}`, ws.admin.pat)).text, queued.text);

  t.deepEqual((await heartbeat(ws, runtimeId)).json, { status: "ok", pending_model_list: { id } });
  await post(`/api/daemon/runtimes/${runtimeId}/models/${id}/result`, ws.member.pat, {
    status: "completed",
    supported: false,
    models: [
      {
        thinking: {
          default_level: "high",
          supported_levels: [
            { description: "deep", label: "High", value: "high" },
            { label: "Low", value: "low" },
          ],
        },
        default: true,
        label: "Opus",
        id: "opus",
        unknown: 1,
      },
      { provider: "anthropic", label: "Haiku", id: "haiku", default: false, thinking: {} },
    ],
  });
  const done = await get(`${runtimePath(runtimeId)}/models/${id}`, ws.member.pat);
  const after = idAndTimes(t, done);
  t.is(
    done.text,
    `{"id":"${id}","runtime_id":"${runtimeId}","status":"completed","models":[` +
      `{"id":"opus","label":"Opus","default":true,"thinking":{"supported_levels":[{"value":"high","label":"High","description":"deep"},{"value":"low","label":"Low"}],"default_level":"high"}},` +
      `{"id":"haiku","label":"Haiku","provider":"anthropic","thinking":{"supported_levels":null}}` +
      `],"supported":false,"created_at":"${created}","updated_at":"${after.updated}"}\n`,
  );
});

test("a failed model list keeps supported true and carries the daemon's error", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const { id } = idAndTimes(t, await post(`${runtimePath(runtimeId)}/models`, ws.member.pat));
  await heartbeat(ws, runtimeId);
  await post(`/api/daemon/runtimes/${runtimeId}/models/${id}/result`, ws.member.pat, { status: "failed", error: "cli missing" });
  const done = await get(`${runtimePath(runtimeId)}/models/${id}`, ws.member.pat);
  const { created, updated } = idAndTimes(t, done);
  t.is(
    done.text,
    `{"id":"${id}","runtime_id":"${runtimeId}","status":"failed","supported":true,"error":"cli missing","created_at":"${created}","updated_at":"${updated}"}\n`,
  );
});

test("POST local-skills (owner only) queues a list; the read-back shows the skills in the original's field order", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const queued = await post(`${runtimePath(runtimeId)}/local-skills`, ws.member.jwt);
  const { id, created, updated } = idAndTimes(t, queued);
  t.is(queued.text, `{"id":"${id}","runtime_id":"${runtimeId}","status":"pending","supported":true,"created_at":"${created}","updated_at":"${updated}"}\n`);
  t.is((await get(`${runtimePath(runtimeId)}/local-skills/${id}`, ws.member.pat)).text, queued.text);

  t.deepEqual((await heartbeat(ws, runtimeId)).json, { status: "ok", pending_local_skills: { id } });
  await post(`/api/daemon/runtimes/${runtimeId}/local-skills/${id}/result`, ws.member.pat, {
    status: "completed",
    skills: [
      { file_count: 3, provider: "claude", source_path: "/home/u/.claude/skills/pdf", description: "PDF tools", name: "PDF", key: "pdf" },
      { key: "x", name: "X", source_path: "/x", provider: "claude", file_count: 0, description: "" },
    ],
  });
  const done = await get(`${runtimePath(runtimeId)}/local-skills/${id}`, ws.member.pat);
  const after = idAndTimes(t, done);
  t.is(
    done.text,
    `{"id":"${id}","runtime_id":"${runtimeId}","status":"completed","skills":[` +
      `{"key":"pdf","name":"PDF","description":"PDF tools","source_path":"/home/u/.claude/skills/pdf","provider":"claude","file_count":3},` +
      `{"key":"x","name":"X","source_path":"/x","provider":"claude","file_count":0}` +
      `],"supported":true,"created_at":"${created}","updated_at":"${after.updated}"}\n`,
  );
});

test("POST local-skills/import (owner only) queues an import (exact bytes); the read-back carries the daemon's bundle", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const path = `${runtimePath(runtimeId)}/local-skills/import`;
  const plain = await post(path, ws.member.pat, { skill_key: " pdf ", name: "  ", description: " Reads PDFs " });
  const first = idAndTimes(t, plain);
  t.is(
    plain.text,
    `{"id":"${first.id}","runtime_id":"${runtimeId}","skill_key":"pdf","description":"Reads PDFs","status":"pending","created_at":"${first.created}","updated_at":"${first.updated}"}\n`,
    "trimmed; a blank name is no override",
  );

  const target = randomUUID().toUpperCase();
  const overwrite = await post(path, ws.member.pat, { skill_key: "xlsx", name: "Sheets", action: "overwrite", target_skill_id: ` ${target} ` });
  const second = idAndTimes(t, overwrite);
  t.is(
    overwrite.text,
    `{"id":"${second.id}","runtime_id":"${runtimeId}","skill_key":"xlsx","name":"Sheets","action":"overwrite","target_skill_id":"${target.toLowerCase()}",` +
      `"supports_conflict":true,"status":"pending","created_at":"${second.created}","updated_at":"${second.updated}"}\n`,
    "an overwrite implies supports_conflict",
  );
  const opted = await post(path, ws.member.pat, { skill_key: "doc", supports_conflict: true });
  t.like(opted.json as object, { skill_key: "doc", supports_conflict: true, status: "pending" });
  t.is((await get(`${path}/${first.id}`, ws.member.pat)).text, plain.text);

  const ack = (await heartbeat(ws, runtimeId)).json as { pending_local_skill_imports: Array<{ id: string; skill_key: string }> };
  t.deepEqual(
    ack.pending_local_skill_imports.map((i) => i.skill_key),
    ["pdf", "xlsx", "doc"],
  );
  await post(`/api/daemon/runtimes/${runtimeId}/local-skills/import/${first.id}/result`, ws.member.pat, {
    status: "completed",
    skill: { files: [{ content: "x", path: "ref.md" }], provider: "claude", source_path: "/s/pdf", content: "# PDF", description: "d", name: "PDF" },
  });
  await post(`/api/daemon/runtimes/${runtimeId}/local-skills/import/${second.id}/result`, ws.member.pat, { status: "completed" });
  const done = await get(`${path}/${first.id}`, ws.member.pat);
  const after = idAndTimes(t, done);
  t.is(
    done.text,
    `{"id":"${first.id}","runtime_id":"${runtimeId}","skill_key":"pdf","description":"Reads PDFs","status":"completed",` +
      `"skill":{"name":"PDF","description":"d","content":"# PDF","source_path":"/s/pdf","provider":"claude","files":[{"path":"ref.md","content":"x"}]},` +
      `"created_at":"${first.created}","updated_at":"${after.updated}"}\n`,
  );
  t.like((await get(`${path}/${second.id}`, ws.member.pat)).json as object, { status: "failed", error: "daemon returned an empty skill bundle" });
});

test("import: the body's rules, in the original's order", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const path = `${runtimePath(runtimeId)}/local-skills/import`;
  isError(t, await post(path, ws.member.pat, undefined, ""), 400, "invalid request body", "empty");
  isError(t, await post(path, ws.member.pat, { skill_key: ["pdf"] }), 400, "invalid request body", "wrong type");
  isError(t, await post(path, ws.member.pat, { skill_key: "  " }), 400, "skill_key is required", "blank key");
  isError(t, await post(path, ws.member.pat, { action: "bogus" }), 400, "skill_key is required", "the key is checked first");
  isError(t, await post(path, ws.member.pat, { skill_key: "pdf", action: "bogus" }), 400, "invalid action");
  isError(t, await post(path, ws.member.pat, { skill_key: "pdf", action: "Overwrite" }), 400, "invalid action", "compared exactly");
  isError(t, await post(path, ws.member.pat, { skill_key: "pdf", action: "overwrite" }), 400, "invalid target_skill_id", "missing target");
  isError(t, await post(path, ws.member.pat, { skill_key: "pdf", action: "overwrite", target_skill_id: "nope" }), 400, "invalid target_skill_id");
  isError(t, await post(path, ws.member.pat, { skill_key: "k".repeat(256) }), 400, "skill_key: too long (at most 255 characters)", "bounded");
  isError(
    t,
    await post(path, ws.member.pat, { skill_key: "pdf", description: "d".repeat(16_385) }),
    400,
    "description: too long (at most 16384 characters)",
    "bounded",
  );
});

test("an offline runtime: models, local skills and imports answer 503, even for a malformed import body", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedOfflineRuntime(ws);
  const base = runtimePath(runtimeId);
  isError(t, await post(`${base}/models`, ws.owner.pat), 503, "runtime is offline", "models");
  isError(t, await post(`${base}/local-skills`, ws.member.pat), 503, "runtime is offline", "local skills");
  isError(t, await post(`${base}/local-skills/import`, ws.member.pat, { skill_key: "pdf" }), 503, "runtime is offline", "import");
  isError(t, await post(`${base}/local-skills/import`, ws.member.pat, undefined, "{"), 503, "runtime is offline", "the offline check comes before the body");
  isError(t, await post(`${base}/local-skills/import`, ws.member.pat, { skill_key: "" }), 503, "runtime is offline", "and before skill_key");
  // The owner check comes before the offline one.
  isError(t, await post(`${base}/local-skills`, ws.owner.pat), 403, "insufficient permissions", "non-owner");
});

test("a malformed runtime id answers 400 invalid runtime_id on every route", async (t) => {
  const ws = await seedWorkspace(stack);
  for (const bad of ["not-a-uuid", "123", `${randomUUID()}0`, "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"]) {
    for (const route of everyRoute(bad)) {
      const answer = await http(stack.gatewayUrl, route.method, route.path, { token: ws.member.pat, body: route.body });
      isError(t, answer, 400, "invalid runtime_id", `${route.method} ${route.path}`);
    }
  }
  // Either case, hyphenated or bare: a UUID all the same (then simply unknown).
  const bare = randomUUID().replaceAll("-", "").toUpperCase();
  isError(t, await post(`${runtimePath(bare)}/models`, ws.member.pat), 404, "runtime not found", "bare upper-case UUID");
});

test("a foreign or unknown runtime answers 404 runtime not found on every route, like an absent one", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const stranger = await seedWorkspace(stack);
  // Real requests of the runtime, so the 404 cannot come from the request lookup.
  const update = (await post(`${runtimePath(runtimeId)}/update`, ws.member.pat, { target_version: "1" })).json as { id: string };
  for (const [id, token] of [
    [runtimeId, stranger.owner.pat],
    [runtimeId, stranger.member.jwt],
    [randomUUID(), ws.member.pat],
  ] as const) {
    for (const route of everyRoute(id, update.id)) {
      const answer = await http(stack.gatewayUrl, route.method, route.path, { token, body: route.body });
      isError(t, answer, 404, "runtime not found", `${route.method} ${route.path}`);
    }
  }
  const { action } = await stack.liveness.getAction({ actionId: update.id });
  t.is(action!.status, "pending", "nothing was queued or changed by the strangers");
});

test("a request of another runtime, another kind or an unknown id answers 404 on its read-back", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const other = await seedRuntime(stack, ws);
  const base = runtimePath(runtimeId);
  const update = idAndTimes(t, await post(`${base}/update`, ws.member.pat, { target_version: "1" })).id;
  const models = idAndTimes(t, await post(`${base}/models`, ws.member.pat)).id;
  const skills = idAndTimes(t, await post(`${base}/local-skills`, ws.member.pat)).id;
  const imported = idAndTimes(t, await post(`${base}/local-skills/import`, ws.member.pat, { skill_key: "pdf" })).id;

  isError(t, await get(`${runtimePath(other)}/update/${update}`, ws.member.pat), 404, "update not found", "another runtime's update");
  isError(t, await get(`${base}/update/${models}`, ws.member.pat), 404, "update not found", "a model list is no update");
  isError(t, await get(`${base}/update/${"f".repeat(32)}`, ws.member.pat), 404, "update not found", "unknown");
  isError(t, await get(`${base}/update/${update.toUpperCase()}`, ws.member.pat), 404, "update not found", "ids are compared as given");
  isError(t, await get(`${runtimePath(other)}/models/${models}`, ws.member.pat), 404, "request not found", "another runtime's model list");
  isError(t, await get(`${base}/models/${skills}`, ws.member.pat), 404, "request not found", "a skill list is no model list");
  isError(t, await get(`${runtimePath(other)}/local-skills/${skills}`, ws.member.pat), 404, "request not found");
  isError(t, await get(`${base}/local-skills/${imported}`, ws.member.pat), 404, "request not found", "an import is no list");
  isError(t, await get(`${base}/local-skills/import`, ws.member.pat), 404, "request not found", "GET on the import path reads a list named import");
  isError(t, await get(`${runtimePath(other)}/local-skills/import/${imported}`, ws.member.pat), 404, "request not found");
  isError(t, await get(`${base}/local-skills/import/${skills}`, ws.member.pat), 404, "request not found");
});

test("local skills and imports are the runtime owner's: other members get 403, updates and model lists stay open to them", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const base = runtimePath(runtimeId);
  const skills = idAndTimes(t, await post(`${base}/local-skills`, ws.member.pat)).id;
  const imported = idAndTimes(t, await post(`${base}/local-skills/import`, ws.member.pat, { skill_key: "pdf" })).id;
  for (const token of [ws.owner.pat, ws.admin.jwt]) {
    isError(t, await post(`${base}/local-skills`, token), 403, "insufficient permissions", "list");
    isError(t, await get(`${base}/local-skills/${skills}`, token), 403, "insufficient permissions", "list read-back");
    isError(t, await post(`${base}/local-skills/import`, token, { skill_key: "pdf" }), 403, "insufficient permissions", "import");
    isError(t, await post(`${base}/local-skills/import`, token, undefined, "{"), 403, "insufficient permissions", "before the body");
    isError(t, await get(`${base}/local-skills/import/${imported}`, token), 403, "insufficient permissions", "import read-back");
    t.is((await post(`${base}/models`, token)).status, 200);
  }
  t.is((await post(`${base}/update`, ws.admin.pat, { target_version: "1" })).status, 200);

  // Another member re-registering the runtime becomes its owner: the previous one loses it at once.
  const answer = await post("/api/daemon/register", ws.owner.pat, {
    workspace_id: ws.workspaceId,
    daemon_id: (await stack.registry.getRuntime({ runtimeId })).runtime!.daemonId,
    device_name: "box",
    runtimes: [{ type: "claude", version: "2.0", status: "online" }],
  });
  t.is((answer.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id, runtimeId);
  isError(t, await get(`${base}/local-skills/${skills}`, ws.member.pat), 403, "insufficient permissions", "the former owner");
  t.is((await get(`${base}/local-skills/${skills}`, ws.owner.pat)).status, 200, "the new owner");
});

test("the user Auth middleware guards every route (text/plain errors); a daemon token is no user credential", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const { token: daemonToken } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 3600 });
  for (const route of everyRoute(runtimeId)) {
    for (const [token, message] of [
      [undefined, "missing authorization"],
      [daemonToken, "invalid token"],
      [`mul_${"0".repeat(40)}`, "invalid token"],
    ] as const) {
      const answer = await http(stack.gatewayUrl, route.method, route.path, { token, body: route.body });
      t.is(answer.status, 401, `${route.method} ${route.path}`);
      t.is(answer.contentType, "text/plain; charset=utf-8");
      t.is(answer.headers.get("x-content-type-options"), "nosniff");
      t.is(answer.text, `{"error":"${message}"}\n`);
    }
  }
});

test("a wrong method on a known path answers 405 with no body", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  for (const [method, path] of [
    ["GET", `${runtimePath(runtimeId)}/update`],
    ["DELETE", `${runtimePath(runtimeId)}/models/${"0".repeat(32)}`],
    ["PUT", `${runtimePath(runtimeId)}/local-skills/import`],
  ] as const) {
    const answer = await http(stack.gatewayUrl, method, path, { token: ws.member.pat });
    t.is(answer.status, 405, `${method} ${path}`);
    t.is(answer.text, "");
  }
});

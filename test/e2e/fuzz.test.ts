import { randomUUID } from "node:crypto";
import test from "ava";
import fc from "fast-check";
import { http, type HttpAnswer } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// Hostile input over the whole route table: whatever the ids, query, headers
// and body, the gateway answers below 500, in the contract's error shapes.

/** Requests per run: enough to visit every route many times in a few seconds. */
const RUNS = 600;

let stack: Stack;
let ids: Record<string, string[]>;
let tokens: string[];

test.before(async () => {
  stack = await startStack();
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId, { maxConcurrentTasks: 50 });
  const queued = (await enqueue(stack, agentId)).task;
  const claimedTask = (await enqueue(stack, agentId)).task;
  await claimOverHttp(stack, ws.member.pat, runtimeId);
  const { token: daemonToken } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "fuzz", ttlSeconds: 3600 });
  const { profile } = await stack.profiles.createProfile({
    workspaceId: ws.workspaceId,
    displayName: "fuzz",
    protocolFamily: "claude",
    commandName: "claude",
    fixedArgs: [],
    visibility: "",
  });
  ids = {
    workspaceId: [ws.workspaceId],
    runtimeId: [runtimeId],
    taskId: [queued.id, claimedTask.id],
    profileId: [profile!.id],
    issueId: [queued.issueId ?? randomUUID()],
  };
  tokens = [ws.member.pat, ws.owner.pat, ws.owner.jwt, daemonToken];
});
test.after.always(async () => {
  await stack?.stop();
});

/** Strings that have broken parsers, validators and databases before. */
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 50 }),
  fc.constantFrom("\u0000", "a\u0000b", "\ud800", "\udfff\ud800", "%00", "%zz", "../..", "' OR 1=1 --", "x".repeat(5_000), "1e308", "-0"),
);

const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  nasty,
  fc.constantFrom(2 ** 31, 2 ** 53 + 2, 1e308, -1e308, -1, 0.5, Number.MAX_SAFE_INTEGER),
);

/** Field names the routes read, so bodies reach the validators rather than stopping at "unknown field". */
const FIELDS = [
  "runtime_id",
  "runtime_ids",
  "workspace_id",
  "daemon_id",
  "device_name",
  "cli_version",
  "launched_by",
  "legacy_daemon_ids",
  "runtimes",
  "supports_batch_import",
  "reason",
  "summary",
  "step",
  "total",
  "pr_url",
  "output",
  "session_id",
  "work_dir",
  "error",
  "failure_reason",
  "usage",
  "messages",
  "status",
  "models",
  "skills",
  "skill",
  "supported",
  "display_name",
  "protocol_family",
  "command_name",
  "description",
  "fixed_args",
  "visibility",
  "enabled",
  "name",
  "type",
  "version",
];

const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), jsonish, { maxKeys: 6 }).map((value) => JSON.stringify(value)),
  fc
    .dictionary(
      fc.constantFrom(...FIELDS),
      fc.array(fc.dictionary(fc.constantFrom(...FIELDS, "seq", "input", "tool", "content", "provider", "model", "input_tokens"), jsonish), { maxLength: 3 }),
      { maxKeys: 3 },
    )
    .map((value) => JSON.stringify(value)),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.nat({ max: 3_000 }).map((depth) => `{"messages":[{"seq":1,"type":"text","input":${"[".repeat(depth)}${"]".repeat(depth)}}]}`),
  nasty,
  fc.constant(""),
);

function requestFor(route: { method: string; url: string }) {
  const params = route.url.match(/:(\w+)/g)?.map((p) => p.slice(1)) ?? [];
  return fc
    .record({
      values: fc.tuple(...params.map((name) => fc.oneof(fc.constantFrom(...(ids[name] ?? [randomUUID()])), fc.uuid(), nasty))),
      query: fc.option(fc.tuple(fc.constantFrom("since", "wait", "workspace_id", "workspace_slug"), nasty), { nil: undefined }),
      auth: fc.oneof(fc.constantFrom(...tokens), fc.constant(undefined), nasty),
      body: fc.option(body, { nil: undefined }),
      headers: fc.dictionary(fc.constantFrom("x-workspace-id", "x-claim-wait", "x-request-id", "content-type"), fc.string({ maxLength: 40 }), { maxKeys: 2 }),
    })
    .map((parts) => {
      let path = route.url;
      for (const [i, name] of params.entries()) path = path.replace(`:${name}`, encodeURIComponent(String(parts.values[i]).toWellFormed()));
      if (parts.query) path += `?${parts.query[0]}=${encodeURIComponent(parts.query[1].toWellFormed())}`;
      return { method: route.method, path, ...parts };
    });
}

function headerSafe(value: string): string {
  // fetch refuses header values with control or non-Latin-1 characters; what it can send is what a client could send.
  return value.replace(/[^\x20-\x7e]/g, "");
}

test("no route answers 5xx or leaves the contract's error shapes, whatever it is sent", async (t) => {
  const routes = stack.gatewayRoutes.filter((r) => r.url !== "/healthz");
  t.true(routes.length > 30, `${routes.length} routes`);
  const seen = new Set<string>();
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes).chain(requestFor), async (request) => {
      seen.add(`${request.method} ${request.path.split("/").slice(0, 4).join("/")}`);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) headers[name] = headerSafe(value);
      const answer = await http(stack.gatewayUrl, request.method, request.path, {
        token: request.auth === undefined ? undefined : headerSafe(request.auth),
        rawBody: request.method === "GET" ? undefined : request.body,
        headers,
      });
      const problem = shapeProblem(answer, request.path);
      if (problem) throw new Error(`${request.method} ${request.path} -> ${answer.status} ${answer.text.slice(0, 200)}: ${problem}`);
    }),
    { numRuns: RUNS },
  );
  t.pass(`${seen.size} route shapes exercised`);
});

/** Why an answer breaks the rules, or undefined when it keeps them. */
function shapeProblem(answer: HttpAnswer, path: string): string | undefined {
  if (answer.status >= 500) return "a server error";
  if (answer.status < 400) return undefined;
  // The daemon socket refuses a request without a WebSocket handshake as the original's library did (§12.2, step 11).
  if (path.startsWith("/api/daemon/ws") && answer.status === 400 && answer.text === "Bad Request\n") return undefined;
  if (answer.status === 404 && answer.text === "404 page not found\n") return undefined;
  if (answer.status === 405) return answer.text === "" ? undefined : "a 405 with a body";
  const error = (answer.json as { error?: unknown } | undefined)?.error;
  if (typeof error !== "string" || error === "") return 'not an {"error": ...} body';
  if (Object.keys(answer.json as object).length !== 1) return "extra keys next to error";
  return undefined;
}

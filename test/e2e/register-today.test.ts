import { randomUUID } from "node:crypto";
import test from "ava";
import { query, waitFor } from "@controlplane/testkit";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";

// Register and deregister as today's daemon sends them (§13.9): failed
// profiles, X-Client-Capabilities, custom_name, offline reasons; and the
// seed-era daemon's bytes unchanged next to them.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

/** What today's daemon sends on every request (C:189-199). */
const TODAY = "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,remote-mcp-v1,local-worktree-v1,rpc-v1";
const TODAY_LIST = TODAY.split(",");

/** `capabilities` null: no header, as the seed-era daemon sends it. */
const register = (token: string, body: unknown, capabilities: string | null = TODAY) =>
  http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token,
    body,
    headers: capabilities === null ? {} : { "x-client-capabilities": capabilities },
  });
const deregister = (token: string, body: unknown) =>
  http(stack.gatewayUrl, "POST", "/api/daemon/deregister", { token, body, headers: { "x-client-capabilities": TODAY } });

function registration(ws: SeededWorkspace, extra: Record<string, unknown> = {}) {
  return {
    workspace_id: ws.workspaceId,
    daemon_id: "daemon-today",
    legacy_daemon_ids: [],
    device_name: "MacBook",
    cli_version: "0.3.0",
    launched_by: "",
    runtimes: [{ name: "", type: "claude", version: "2.1.0", status: "online" }],
    failed_profiles: [],
    ...extra,
  };
}

async function createProfile(ws: SeededWorkspace, body: Record<string, unknown>) {
  const answer = await http(stack.gatewayUrl, "POST", `/api/workspaces/${ws.workspaceId}/runtime-profiles`, {
    token: ws.admin.pat,
    body: { protocol_family: "codex", command_name: "codex-wrapper", ...body },
  });
  if (answer.status !== 201) throw new Error(`profile: ${answer.text}`);
  return (answer.json as { id: string }).id;
}

interface Row {
  id: string;
  status: string;
  name: string;
  device_info: string;
  provider: string;
  metadata: Record<string, unknown>;
  profile_id: string | null;
  custom_name: string | null;
  owner_id: string | null;
}
const rows = (workspaceId: string) =>
  query<Row>(
    stack.db.url,
    "SELECT id, status, name, device_info, provider, metadata, profile_id, custom_name, owner_id FROM registry.agent_runtime WHERE workspace_id = $1 ORDER BY created_at, id",
    [workspaceId],
  );
const runtimesOf = (answer: { json: unknown }) => (answer.json as { runtimes: Array<{ id: string; custom_name?: string | null }> }).runtimes;

test("today's register answers runtime objects with custom_name (golden); the seed-era one, without the header, does not", async (t) => {
  const ws = await seedWorkspace(stack);
  await stack.identity.updateWorkspace({ workspaceId: ws.workspaceId, repos: { repos: [{ url: "https://github.com/acme/app", description: "" }] } });
  const today = await register(
    ws.member.pat,
    registration(ws, {
      runtimes: [
        { name: "", type: "claude", version: "2.1.0", status: "online" },
        { name: "", type: "codex", version: "0.5", status: "online" },
      ],
    }),
  );
  t.is(today.status, 200);
  t.is(today.contentType, "application/json");
  const body = normalize(today.text, { workspace: ws.workspaceId, owner: ws.member.userId });
  t.is(body, golden(new URL("golden/register-today.json", import.meta.url), body));

  const seed = await register(ws.member.pat, registration(ws, { failed_profiles: undefined }), null);
  t.is(seed.status, 200);
  t.false(seed.text.includes("custom_name"), "the seed-era daemon sees the seed's runtime object");
  t.false(seed.text.includes("capabilities"), "and no capabilities in the metadata");
  t.deepEqual(Object.keys((seed.json as { runtimes: Array<{ metadata: object }> }).runtimes[0]!.metadata), ["cli_version", "launched_by", "version"]);
});

test("H-38: X-Client-Capabilities is stored trimmed in metadata.capabilities; a re-register keeps the row", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "daemon-today", ttlSeconds: 0 });
  const first = await register(token, registration(ws), ` ${TODAY.replaceAll(",", " , ")} ,`);
  t.is(first.status, 200);
  const [row] = await rows(ws.workspaceId);
  t.deepEqual(row!.metadata.capabilities, TODAY_LIST);
  const again = await register(token, registration(ws), "local-worktree-v1");
  t.is(runtimesOf(again)[0]!.id, runtimesOf(first)[0]!.id, "the same row");
  t.deepEqual((await rows(ws.workspaceId))[0]!.metadata.capabilities, ["local-worktree-v1"]);
  await register(token, registration(ws), "");
  t.is((await rows(ws.workspaceId))[0]!.metadata.capabilities, null, "an empty header: capabilities null, as the original stored it");
  await register(token, registration(ws), null);
  t.false("capabilities" in (await rows(ws.workspaceId))[0]!.metadata, "a seed-era register leaves the seed's metadata");
});

test("H-37: a daemon token registers its own workspace (runtimes and a string repos_version); another workspace is 404", async (t) => {
  const ws = await seedWorkspace(stack);
  const other = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "daemon-today", ttlSeconds: 0 });
  const own = await register(token, registration(ws));
  t.is(own.status, 200);
  const answer = own.json as { runtimes: unknown[]; repos_version: unknown };
  t.is(answer.runtimes.length, 1);
  t.is(typeof answer.repos_version, "string");
  const foreign = await register(token, registration(other));
  t.is(foreign.status, 404);
  t.is(foreign.text, '{"error":"workspace not found"}\n');
  t.deepEqual(await rows(other.workspaceId), []);
});

test("H-36: only failed profiles → 200 with runtimes []; the profile's row is offline with the failure and the capabilities", async (t) => {
  const ws = await seedWorkspace(stack);
  const profileId = await createProfile(ws, { display_name: "Codex wrapped", command_name: "codex-wrapper" });
  const answer = await register(
    ws.member.pat,
    registration(ws, {
      runtimes: [],
      failed_profiles: [{ profile_id: profileId, command_name: "missing-codex", reason: "command not found on PATH: missing-codex" }],
    }),
    "local-worktree-v1",
  );
  t.is(answer.status, 200);
  t.deepEqual(runtimesOf(answer), []);
  t.true(answer.text.startsWith('{"repos":[],"repos_version":"'), answer.text);
  const [row] = await rows(ws.workspaceId);
  t.like(row!, {
    status: "offline",
    profile_id: profileId,
    name: "Codex wrapped (MacBook)",
    device_info: "MacBook",
    provider: "codex",
    owner_id: ws.member.userId,
  });
  t.deepEqual(row!.metadata, {
    version: "",
    cli_version: "0.3.0",
    launched_by: "",
    capabilities: ["local-worktree-v1"],
    runtime_profile_registration_error: true,
    runtime_profile_failure_reason: "command not found on PATH: missing-codex",
    command_name: "missing-codex",
  });
});

test("failed profiles: defaults for a blank reason and command; blank ids skipped; unknown, foreign and disabled profiles skipped", async (t) => {
  const ws = await seedWorkspace(stack);
  const other = await seedWorkspace(stack);
  const mine = await createProfile(ws, { display_name: "Mine", command_name: "mine-cli" });
  const disabled = await createProfile(ws, { display_name: "Off", enabled: false });
  const foreign = await createProfile(other, { display_name: "Theirs" });
  const answer = await register(
    ws.member.pat,
    registration(ws, {
      device_name: "",
      failed_profiles: [
        { profile_id: "  " },
        null,
        { profile_id: ` ${mine.toUpperCase()} `, command_name: " ", reason: "  " },
        { profile_id: randomUUID() },
        { profile_id: disabled, reason: "x" },
        { profile_id: foreign, reason: "x" },
      ],
    }),
  );
  t.is(answer.status, 200, answer.text);
  t.is(runtimesOf(answer).length, 1, "the built-in runtime only; failed-profile rows are never in the answer");
  const written = (await rows(ws.workspaceId)).filter((r) => r.profile_id !== null);
  t.deepEqual(
    written.map((r) => r.profile_id),
    [mine],
  );
  t.like(written[0]!, { name: "Mine", device_info: "", status: "offline" });
  t.like(written[0]!.metadata, { runtime_profile_failure_reason: "custom runtime command could not be resolved", command_name: "mine-cli" });
  t.deepEqual(await rows(other.workspaceId), []);
});

test("a failed profile_id that is not a UUID refuses the whole register, and nothing is written (unlike the original, which kept earlier upserts)", async (t) => {
  const ws = await seedWorkspace(stack);
  const answer = await register(ws.member.pat, registration(ws, { failed_profiles: [{ profile_id: "p-1", reason: "x" }] }));
  t.is(answer.status, 400);
  t.is(answer.text, '{"error":"invalid profile_id"}\n');
  t.deepEqual(await rows(ws.workspaceId), [], "not even the valid built-in runtime before it");
});

test("HC-6: no runtimes and no failed profiles: today's text with the header, the seed's without", async (t) => {
  const ws = await seedWorkspace(stack);
  for (const body of [registration(ws, { runtimes: [] }), registration(ws, { runtimes: null, failed_profiles: null })]) {
    const today = await register(ws.member.pat, body);
    t.is(today.status, 400);
    t.is(today.text, '{"error":"at least one runtime or failed profile is required"}\n');
    const seed = await register(ws.member.pat, body, null);
    t.is(seed.text, '{"error":"at least one runtime is required"}\n');
  }
});

test("a profile that registered before and now fails goes offline as on a deregister (runtime.offline), and back online when it registers", async (t) => {
  const ws = await seedWorkspace(stack);
  const profileId = await createProfile(ws, { display_name: "Flaky" });
  const custom = { name: "", type: "codex", version: "1", status: "online", profile_id: profileId };
  const [, online] = runtimesOf(await register(ws.member.pat, registration(ws, { runtimes: [registration(ws).runtimes[0], custom] })));
  const failed = await register(ws.member.pat, registration(ws, { failed_profiles: [{ profile_id: profileId, reason: "gone from PATH" }] }));
  t.is(failed.status, 200);
  const row = (await rows(ws.workspaceId)).find((r) => r.id === online!.id)!;
  t.is(row.status, "offline", "the same row, now offline");
  t.is(row.metadata.runtime_profile_failure_reason, "gone from PATH");
  const offline = await waitFor("runtime.offline for the failed profile", async () => {
    const events = (await stack.events.read("runtime.offline")).filter((e) => e.event.runtimeId === online!.id);
    return events.length > 0 ? events : undefined;
  });
  t.is(offline[0]!.event.reason, 1, "reason: deregister");
  const back = await register(ws.member.pat, registration(ws, { runtimes: [custom] }));
  t.is(runtimesOf(back)[0]!.id, online!.id);
  const restored = (await rows(ws.workspaceId)).find((r) => r.id === online!.id)!;
  t.is(restored.status, "online");
  t.false("runtime_profile_registration_error" in restored.metadata, "the next register replaces the failure");
});

test("a runtime first registered on a machine takes the custom name its other runtimes share", async (t) => {
  const ws = await seedWorkspace(stack);
  const first = runtimesOf(
    await register(
      ws.member.pat,
      registration(ws, {
        runtimes: [
          { name: "", type: "claude", version: "1", status: "online" },
          { name: "", type: "codex", version: "1", status: "online" },
        ],
      }),
    ),
  );
  await query(stack.db.url, "UPDATE registry.agent_runtime SET custom_name = $2 WHERE workspace_id = $1", [ws.workspaceId, " Ada's Mac "]);
  const later = await register(ws.member.pat, registration(ws, { runtimes: [{ name: "", type: "gemini", version: "1", status: "online" }] }));
  t.is(runtimesOf(later)[0]!.custom_name, "Ada's Mac");
  const again = await register(ws.member.pat, registration(ws));
  t.is(runtimesOf(again)[0]!.id, first[0]!.id);
  t.is(runtimesOf(again)[0]!.custom_name, " Ada's Mac ", "an existing row keeps its own");

  // Names that disagree (or a runtime without one) are not inherited.
  await query(stack.db.url, "UPDATE registry.agent_runtime SET custom_name = 'Other' WHERE id = $1", [first[1]!.id]);
  const mixed = await register(ws.member.pat, registration(ws, { runtimes: [{ name: "", type: "kimi", version: "1", status: "online" }] }));
  t.is(runtimesOf(mixed)[0]!.custom_name, null);
  const otherMachine = await register(ws.member.pat, registration(ws, { daemon_id: "elsewhere" }));
  t.is(runtimesOf(otherMachine)[0]!.custom_name, null, "another daemon's names are not this machine's");
});

test("HC-7: deregister stores offline_reasons under the id exactly as sent; the next register drops it", async (t) => {
  const ws = await seedWorkspace(stack);
  const [a, b] = runtimesOf(
    await register(
      ws.member.pat,
      registration(ws, {
        runtimes: [
          { name: "", type: "claude", version: "1", status: "online" },
          { name: "", type: "codex", version: "1", status: "online" },
        ],
      }),
    ),
  );
  const reason = { code: "not_executable", detail: "claude: permission denied", repair: "chmod +x <path>" };
  const answer = await deregister(ws.member.pat, {
    runtime_ids: [a!.id, b!.id.toUpperCase()],
    offline_reasons: { [a!.id]: reason, [b!.id]: { code: "ignored: not the id as sent" }, [randomUUID()]: "unrelated" },
  });
  t.is(answer.status, 200);
  t.is(answer.text, '{"status":"ok"}\n');
  const byId = async (id: string) => (await rows(ws.workspaceId)).find((r) => r.id === id)!;
  const [rowA, rowB] = [await byId(a!.id), await byId(b!.id)];
  t.is(rowA!.status, "offline");
  t.deepEqual(rowA!.metadata.offline_reason, reason);
  t.is(rowB!.status, "offline");
  t.false("offline_reason" in rowB!.metadata, "a reason is matched to the id as sent, case and all");

  await deregister(ws.member.pat, { runtime_ids: [b!.id], offline_reasons: { [b!.id]: "any JSON" } });
  t.is((await byId(b!.id)).metadata.offline_reason, "any JSON");

  await register(
    ws.member.pat,
    registration(ws, {
      runtimes: [
        { name: "", type: "claude", version: "1", status: "online" },
        { name: "", type: "codex", version: "1", status: "online" },
      ],
    }),
  );
  // Both rows by id: an empty or different row set must not pass.
  const after = await Promise.all([a!.id, b!.id].map(byId));
  t.deepEqual(
    after.map((r) => [r.status, "offline_reason" in r.metadata]),
    [
      ["online", false],
      ["online", false],
    ],
    "register replaces the metadata",
  );
});

test("deregister's offline_reasons are bounded, and checked by the registry for internal callers too", async (t) => {
  const ws = await seedWorkspace(stack);
  const [runtime] = runtimesOf(await register(ws.member.pat, registration(ws)));
  const big = await deregister(ws.member.pat, { runtime_ids: [runtime!.id], offline_reasons: { [runtime!.id]: { detail: "x".repeat(20_000) } } });
  t.is(big.status, 400);
  t.is(big.text, '{"error":"offline_reasons: too large (at most 16384 characters as JSON)"}\n');
  const many = Object.fromEntries(Array.from({ length: 101 }, () => [randomUUID(), 1]));
  const tooMany = await deregister(ws.member.pat, { runtime_ids: [runtime!.id], offline_reasons: many });
  t.is(tooMany.text, '{"error":"offline_reasons: too many entries (at most 100)"}\n');
  const wrongType = await deregister(ws.member.pat, { runtime_ids: [runtime!.id], offline_reasons: [1] });
  t.is(wrongType.text, '{"error":"invalid request body"}\n');
  t.is((await rows(ws.workspaceId))[0]!.status, "online", "nothing changed");

  const nul = await deregister(ws.member.pat, { runtime_ids: [runtime!.id], offline_reasons: { [runtime!.id]: { code: "a\u0000b" } } });
  t.is(nul.status, 200, "NUL is dropped from the reason, as from all free text");
  t.deepEqual((await rows(ws.workspaceId))[0]!.metadata.offline_reason, { code: "ab" });

  const internal = await t.throwsAsync(stack.registry.deregisterRuntimes({ runtimeIds: [runtime!.id], offlineReasonsJson: { [runtime!.id]: "{not json" } }));
  t.like(internal as object, { details: "invalid offline_reasons" });
});

test("failed profiles and capabilities are bounded", async (t) => {
  const ws = await seedWorkspace(stack);
  const tooMany = await register(ws.member.pat, registration(ws, { failed_profiles: Array.from({ length: 101 }, () => ({ profile_id: "" })) }));
  t.is(tooMany.text, '{"error":"failed_profiles: too many entries (at most 100)"}\n');
  const longReason = await register(ws.member.pat, registration(ws, { failed_profiles: [{ profile_id: randomUUID(), reason: "r".repeat(16_385) }] }));
  t.is(longReason.text, '{"error":"failed_profiles.reason: too long (at most 16384 characters)"}\n');
  const header = await register(ws.member.pat, registration(ws), Array.from({ length: 65 }, (_, i) => `cap-${i}`).join(","));
  t.is(header.text, '{"error":"x-client-capabilities: too many entries (at most 64)"}\n');
  t.deepEqual(await rows(ws.workspaceId), []);
});

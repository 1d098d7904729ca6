import { randomUUID } from "node:crypto";
import test from "ava";
import { LIMITS } from "@controlplane/config";
import { isServiceError, status } from "@controlplane/grpc";
import { listAllMessages, listAllPendingTasks, listAllTasks } from "../../services/gateway/src/paging.js";
import { ListMessagesResponse, ListTasksResponse, type ListMessagesRequest, type TaskMessage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { query, waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

/** gRPC's default receive limit, which the clients keep: one answer must stay below it. */
const GRPC_MAX_MESSAGE = 8 * 1024 * 1024;

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

async function setup() {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  return { ws, runtimeId, agentId, token: ws.member.pat };
}

const post = (token: string, path: string, body?: unknown) => http(stack.gatewayUrl, "POST", `/api/daemon${path}`, { token, body });

/** The gRPC status of a failed call (the test fails if the call succeeded). */
async function refusal(work: Promise<unknown>) {
  try {
    await work;
  } catch (error) {
    if (isServiceError(error)) return { code: error.code, details: error.details };
    throw error;
  }
  throw new Error("the call was expected to fail");
}

/** Every page of ListMessages, as answered (to look at each page's size too). */
async function readPages(request: Omit<ListMessagesRequest, "pageToken">) {
  const pages: ListMessagesResponse[] = [];
  let pageToken: string | undefined;
  do {
    const page = await stack.tasks.listMessages({ ...request, pageToken });
    pages.push(page);
    pageToken = page.nextPageToken || undefined;
  } while (pageToken);
  return pages;
}

/** Storage order as the database has it: the ground truth pages must reproduce. */
async function storedContents(taskId: string) {
  const rows = await query<{ content: string }>(stack.db.url, "SELECT content FROM taskqueue.task_message WHERE task_id = $1 ORDER BY seq, created_at, id", [
    taskId,
  ]);
  return rows.map((row) => row.content);
}

const marker = (message: Pick<TaskMessage, "content">) => message.content!.slice(0, 12);

test("more than 8 MiB of messages read back complete and in order, page by page and through the gateway helper", async (t) => {
  const { agentId } = await setup();
  const { task } = await enqueue(stack, agentId);
  // 48 messages of ~200 KB: 9.6 MB, past gRPC's 8 MiB; seqs repeat in threes.
  const sent = Array.from(
    { length: 48 },
    (_, i): TaskMessage => ({
      taskId: task.id,
      seq: Math.floor(i / 3),
      type: "text",
      content: `msg-${String(i).padStart(8, "0")}:${"x".repeat(200_000)}`,
    }),
  );
  for (let i = 0; i < sent.length; i += 8) {
    t.is((await stack.tasks.appendMessages({ taskId: task.id, messages: sent.slice(i, i + 8) })).stored, 8);
  }
  const totalBytes = sent.reduce((sum, m) => sum + m.content!.length, 0);
  t.true(totalBytes > GRPC_MAX_MESSAGE, "one answer holding everything could not be received");

  // A caller that knows nothing of paging gets the first page and a token.
  const first = await stack.tasks.listMessages({ taskId: task.id });
  t.true(first.messages.length > 0 && first.messages.length < sent.length);
  t.not(first.nextPageToken, "");

  const pages = await readPages({ taskId: task.id });
  t.true(pages.length >= 3, `${pages.length} pages`);
  for (const page of pages) t.true(ListMessagesResponse.encode(page).finish().length <= 4 * 1024 * 1024 + 64 * 1024, "a page stays within its budget");
  const paged = pages.flatMap((page) => page.messages);
  const expected = await storedContents(task.id);
  t.is(paged.length, sent.length);
  t.deepEqual(
    paged.map((m) => m.content),
    expected,
    "storage order, complete, nothing twice",
  );
  t.deepEqual(new Set(paged.map(marker)), new Set(sent.map(marker)));

  const viaGateway = await listAllMessages({ tasks: stack.tasks }, { taskId: task.id });
  t.deepEqual(
    viaGateway.map((m) => m.content),
    expected,
  );
  const sinceSeven = await listAllMessages({ tasks: stack.tasks }, { taskId: task.id, since: 7 });
  t.deepEqual(
    sinceSeven.map((m) => m.seq),
    paged.filter((m) => m.seq > 7).map((m) => m.seq),
  );
});

test("pages are exact when seqs repeat: small pages reproduce the storage order", async (t) => {
  const { agentId } = await setup();
  const { task } = await enqueue(stack, agentId);
  for (let batch = 0; batch < 6; batch++) {
    const messages = Array.from(
      { length: 50 },
      (_, i): TaskMessage => ({
        taskId: task.id,
        seq: (batch * 50 + i) % 7,
        type: "text",
        content: `m-${batch}-${i}`,
      }),
    );
    await stack.tasks.appendMessages({ taskId: task.id, messages });
  }
  const pages = await readPages({ taskId: task.id, pageSize: 7 });
  t.is(pages.length, Math.ceil(300 / 7));
  t.true(pages.every((page) => page.messages.length <= 7));
  t.deepEqual(
    pages.flatMap((page) => page.messages.map((m) => m.content)),
    await storedContents(task.id),
  );
  const error = await refusal(stack.tasks.listMessages({ taskId: task.id, pageToken: "not-a-token" }));
  t.deepEqual(error, { code: status.INVALID_ARGUMENT, details: "invalid page_token" });
});

test("NUL is removed and lone surrogates become U+FFFD in content and input (stored, 200)", async (t) => {
  const { agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  const answer = await post(token, `/tasks/${task.id}/messages`, {
    messages: [
      {
        seq: 1,
        type: "tool_use",
        tool: "bash",
        content: "a\u0000b\uD800c",
        input: { "k\u0000ey": "x\u0000y\uDC00", nested: { list: ["\uD800", { q: "\u0000" }] } },
        output: "o\u0000k",
      },
    ],
  });
  t.is(answer.status, 200, answer.text);
  t.is(answer.text, '{"status":"ok"}\n');
  // Straight through gRPC (the gateway's own edge checks aside): NUL in every
  // text field, and the escapes jsonb refuses in the JSON text itself.
  await stack.tasks.appendMessages({
    taskId: task.id,
    messages: [
      { taskId: task.id, seq: 2, type: "text", inputJson: '{"a":"\\u0000b","\\ud800":["\\udfff\\u0000"]}' },
      { taskId: task.id, seq: 3, type: "te\u0000xt", tool: "\u0000", content: "\u0000c\u0000", output: "\u0000" },
    ],
  });
  const rows = await query<{ seq: number; tool: string | null; content: string | null; input: unknown; output: string | null }>(
    stack.db.url,
    "SELECT seq, tool, content, input, output FROM taskqueue.task_message WHERE task_id = $1 ORDER BY seq",
    [task.id],
  );
  t.deepEqual(rows, [
    { seq: 1, tool: "bash", content: "ab\uFFFDc", input: { key: "xy\uFFFD", nested: { list: ["\uFFFD", { q: "" }] } }, output: "ok" },
    { seq: 2, tool: null, content: null, input: { a: "b", "\uFFFD": ["\uFFFD"] }, output: null },
    { seq: 3, tool: null, content: "c", input: null, output: null },
  ]);
  const [third] = await query<{ type: string }>(stack.db.url, "SELECT type FROM taskqueue.task_message WHERE task_id = $1 AND seq = 3", [task.id]);
  t.is(third?.type, "text");
});

test("complete with output containing NUL completes the task with the NUL removed", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, token, runtimeId);
  t.is((await post(token, `/tasks/${task.id}/start`)).status, 200);
  const done = await post(token, `/tasks/${task.id}/complete`, { output: "a\u0000b", work_dir: "/w" });
  t.is(done.status, 200, done.text);
  t.like(done.json as object, { status: "completed", result: { output: "ab" } });
  const stored = (id: string) =>
    query<{ status: string; output: string; session_id: string | null }>(
      stack.db.url,
      "SELECT status, result->>'output' AS output, session_id FROM taskqueue.task WHERE id = $1",
      [id],
    );
  t.deepEqual(await stored(task.id), [{ status: "completed", output: "ab", session_id: null }]);

  // Internal callers over gRPC: NUL in every string of the completion.
  const other = (await enqueue(stack, agentId)).task;
  await stack.tasks.claimTask({ runtimeId, waitMs: 0 });
  await stack.tasks.startTask({ taskId: other.id });
  const completed = await stack.tasks.completeTask({
    taskId: other.id,
    prUrl: "u\u0000",
    output: "a\u0000b",
    sessionId: "s\u00001",
    workDir: "/w\u0000",
    sessionRolloutMissing: false,
  });
  t.true(completed.transitioned);
  t.deepEqual(await stored(other.id), [{ status: "completed", output: "ab", session_id: "s1" }]);
});

test("a batch over the cap, or with a field over its bound, is refused whole: INVALID_ARGUMENT, nothing stored", async (t) => {
  const { agentId } = await setup();
  const { task } = await enqueue(stack, agentId);
  const message = (seq: number, extra: Partial<TaskMessage> = {}): TaskMessage => ({ taskId: task.id, seq, type: "text", content: "hi", ...extra });
  const tooMany = Array.from({ length: LIMITS.MESSAGES_PER_BATCH + 1 }, (_, i) => message(i));
  t.deepEqual(await refusal(stack.tasks.appendMessages({ taskId: task.id, messages: tooMany })), {
    code: status.INVALID_ARGUMENT,
    details: "too many messages in one batch",
  });
  const overBound: Array<[Partial<TaskMessage>, string]> = [
    [{ content: "c".repeat(LIMITS.TEXT_CHARS + 1) }, "message content too long"],
    [{ output: "o".repeat(LIMITS.TEXT_CHARS + 1) }, "message output too long"],
    [{ inputJson: JSON.stringify({ k: "i".repeat(LIMITS.JSON_OBJECT_CHARS) }) }, "message input too long"],
    [{ type: "t".repeat(LIMITS.NAME_CHARS + 1) }, "message type too long"],
    [{ tool: "t".repeat(LIMITS.NAME_CHARS + 1) }, "message tool too long"],
    [{ inputJson: "[1]" }, "message input must be a JSON object"],
    // Within every field's bound, but 6 MiB of UTF-8 in one message: more than a page may hold.
    [{ content: "\u4e2d".repeat(LIMITS.TEXT_CHARS), output: "\u4e2d".repeat(LIMITS.TEXT_CHARS) }, "message too large"],
  ];
  for (const [fields, details] of overBound) {
    const batch = [message(1), message(2, fields)];
    t.deepEqual(await refusal(stack.tasks.appendMessages({ taskId: task.id, messages: batch })), { code: status.INVALID_ARGUMENT, details }, details);
  }
  const stored = await query(stack.db.url, "SELECT 1 FROM taskqueue.task_message WHERE task_id = $1", [task.id]);
  t.is(stored.length, 0);
  // At exactly the caps a batch is stored.
  const atCap = Array.from({ length: LIMITS.MESSAGES_PER_BATCH }, (_, i) => message(i));
  atCap[0] = message(0, { content: "c".repeat(LIMITS.TEXT_CHARS), tool: "t".repeat(LIMITS.NAME_CHARS) });
  t.is((await stack.tasks.appendMessages({ taskId: task.id, messages: atCap })).stored, LIMITS.MESSAGES_PER_BATCH);
});

test("task.messages names the stored batch (seq range, count, size) and carries no bodies", async (t) => {
  const { agentId } = await setup();
  const { task } = await enqueue(stack, agentId);
  await stack.tasks.appendMessages({
    taskId: task.id,
    messages: [5, 3, 9].map((seq) => ({ taskId: task.id, seq, type: "text", content: "c".repeat(100 * seq), inputJson: '{"n": 1}' })),
  });
  const published = await waitFor("task.messages", async () => (await stack.events.read("task.messages")).find((e) => e.event.task!.taskId === task.id));
  const [stored] = await query<{ total: number }>(stack.db.url, "SELECT sum(stored_bytes)::int AS total FROM taskqueue.task_message WHERE task_id = $1", [
    task.id,
  ]);
  const total = stored?.total;
  t.like(published.event, { firstSeq: 3, lastSeq: 9, count: 3, totalBytes: total, messages: [] });
  t.is(total, 3 * ("text".length + '{"n": 1}'.length) + 1_700);
});

test("task.failed carries a bounded prefix of the error, cut between characters; the task keeps the whole text", async (t) => {
  const { runtimeId, agentId } = await setup();
  const { task } = await enqueue(stack, agentId);
  await stack.tasks.claimTask({ runtimeId, waitMs: 0 });
  // A surrogate pair straddles the 4,096th code unit.
  const error = `${"e".repeat(4_095)}\u{1F600}${"tail\u0000!".repeat(1_000)}`;
  const failed = await stack.tasks.failTask({ taskId: task.id, error, failureReason: "agent_error", sessionRolloutMissing: false });
  const stored = error.replaceAll("\u0000", "");
  t.is(failed.task!.error, stored, "the row keeps the full text, without NUL");
  const event = await waitFor("task.failed", async () => (await stack.events.read("task.failed")).find((e) => e.event.task!.taskId === task.id));
  t.like(event.event, { error: "e".repeat(4_095), errorTruncated: true, errorLength: stored.length, failureReason: "agent_error" });

  const short = (await enqueue(stack, agentId)).task;
  await stack.tasks.claimTask({ runtimeId, waitMs: 0 });
  await stack.tasks.failTask({ taskId: short.id, error: "boom", failureReason: "agent_error", sessionRolloutMissing: false });
  const shortEvent = await waitFor("task.failed", async () => (await stack.events.read("task.failed")).find((e) => e.event.task!.taskId === short.id));
  t.like(shortEvent.event, { error: "boom", errorTruncated: false, errorLength: 4 });
});

test("complete and fail refuse fields over their bounds before changing anything", async (t) => {
  const { runtimeId, agentId } = await setup();
  const { task } = await enqueue(stack, agentId);
  await stack.tasks.claimTask({ runtimeId, waitMs: 0 });
  await stack.tasks.startTask({ taskId: task.id });
  const complete = { taskId: task.id, prUrl: "", output: "", sessionId: "", workDir: "", sessionRolloutMissing: false };
  t.deepEqual(await refusal(stack.tasks.completeTask({ ...complete, output: "o".repeat(LIMITS.TEXT_CHARS + 1) })), {
    code: status.INVALID_ARGUMENT,
    details: "output too long",
  });
  t.deepEqual(await refusal(stack.tasks.completeTask({ ...complete, workDir: "/".repeat(LIMITS.PATH_CHARS + 1) })), {
    code: status.INVALID_ARGUMENT,
    details: "work_dir too long",
  });
  t.deepEqual(
    await refusal(stack.tasks.failTask({ taskId: task.id, error: "e".repeat(LIMITS.TEXT_CHARS + 1), failureReason: "", sessionRolloutMissing: false })),
    {
      code: status.INVALID_ARGUMENT,
      details: "error too long",
    },
  );
  t.is((await stack.tasks.getTask({ taskId: task.id })).task!.status, "running");
});

test("ListTasks pages stay within the byte budget when tasks carry 1 MiB results; ListPendingTasks pages in priority order", async (t) => {
  const { ws, runtimeId, agentId } = await setup();
  for (let i = 0; i < 5; i++) {
    const { task } = await enqueue(stack, agentId);
    await stack.tasks.claimTask({ runtimeId, waitMs: 0 });
    await stack.tasks.startTask({ taskId: task.id });
    await stack.tasks.completeTask({
      taskId: task.id,
      prUrl: "",
      output: "r".repeat(LIMITS.TEXT_CHARS),
      sessionId: "",
      workDir: "",
      sessionRolloutMissing: false,
    });
  }
  const expected = (
    await query<{ id: string }>(stack.db.url, "SELECT id FROM taskqueue.task WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC", [ws.workspaceId])
  ).map((row) => row.id);
  t.is(expected.length, 5);

  const first = await stack.tasks.listTasks({ workspaceId: ws.workspaceId, activeOnly: false });
  t.is(first.tasks.length, 3, "three 1 MiB results fit in 4 MiB, a fourth would not");
  t.true(ListTasksResponse.encode(first).finish().length < 4 * 1024 * 1024);
  t.not(first.nextPageToken, "");
  const all = await listAllTasks({ tasks: stack.tasks }, { workspaceId: ws.workspaceId, activeOnly: false });
  t.deepEqual(
    all.map((task) => task.id),
    expected,
  );
  const oneByOne = await listAllTasks({ tasks: stack.tasks }, { workspaceId: ws.workspaceId, activeOnly: false, pageSize: 1 });
  t.deepEqual(
    oneByOne.map((task) => task.id),
    expected,
  );
  t.deepEqual((await listAllTasks({ tasks: stack.tasks }, { workspaceId: ws.workspaceId, activeOnly: false }, { maxTasks: 4 })).length, 4);

  for (const priority of [1, 3, 3, 2, 3, 0, 2]) await enqueue(stack, agentId, { priority, issueId: randomUUID() });
  const pending = (
    await query<{ id: string }>(
      stack.db.url,
      "SELECT id FROM taskqueue.task WHERE runtime_id = $1 AND status IN ('queued', 'dispatched') ORDER BY priority DESC, created_at, id",
      [runtimeId],
    )
  ).map((row) => row.id);
  t.is(pending.length, 7);
  const pages: string[][] = [];
  let pageToken: string | undefined;
  do {
    const page = await stack.tasks.listPendingTasks({ runtimeId, pageSize: 2, pageToken });
    pages.push(page.tasks.map((task) => task.id));
    pageToken = page.nextPageToken || undefined;
  } while (pageToken);
  t.deepEqual(
    pages.map((page) => page.length),
    [2, 2, 2, 1],
  );
  t.deepEqual(pages.flat(), pending);
  t.deepEqual(
    (await listAllPendingTasks({ tasks: stack.tasks }, { runtimeId })).map((task) => task.id),
    pending,
  );
});

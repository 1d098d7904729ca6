import test from "ava";
import type { ListMessagesRequest, ListMessagesResponse, ListTasksRequest, Task, TaskMessage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { listAllMessages, listAllTasks, PageTokenStuckError } from "../src/paging.js";

const message = (seq: number): TaskMessage => ({ taskId: "t", seq, type: "text" });

/** A fake task queue serving `items` in pages of `size`, recording every request. */
function pagedFake(items: TaskMessage[], size: number) {
  const requests: ListMessagesRequest[] = [];
  const listMessages = async (request: ListMessagesRequest): Promise<ListMessagesResponse> => {
    requests.push(request);
    const start = request.pageToken ? Number(request.pageToken) : 0;
    const end = start + size;
    return { messages: items.slice(start, end), nextPageToken: end < items.length ? String(end) : "" };
  };
  return { requests, clients: { tasks: { listMessages } } };
}

test("follows next_page_token to the end and concatenates the pages in order", async (t) => {
  const items = Array.from({ length: 10 }, (_, i) => message(i));
  const { requests, clients } = pagedFake(items, 3);
  const all = await listAllMessages(clients, { taskId: "t", since: 4 });
  t.deepEqual(all, items);
  t.deepEqual(
    requests.map((r) => r.pageToken),
    [undefined, "3", "6", "9"],
  );
  t.true(
    requests.every((r) => r.taskId === "t" && r.since === 4),
    "every page asks the same question",
  );
});

test("one page without a token is one call", async (t) => {
  const { requests, clients } = pagedFake([message(1)], 5);
  t.deepEqual(await listAllMessages(clients, { taskId: "t" }), [message(1)]);
  t.is(requests.length, 1);
});

test("a page's error is thrown as is (the route maps it)", async (t) => {
  const failure = Object.assign(new Error("boom"), { code: 14 });
  let calls = 0;
  const clients = {
    tasks: {
      listMessages: async (): Promise<ListMessagesResponse> => {
        calls++;
        if (calls === 2) throw failure;
        return { messages: [message(calls)], nextPageToken: `more${calls}` };
      },
    },
  };
  t.is(await t.throwsAsync(listAllMessages(clients, { taskId: "t" })), failure);
});

test("a token that does not advance stops the loop instead of spinning", async (t) => {
  const clients = { tasks: { listMessages: async (): Promise<ListMessagesResponse> => ({ messages: [message(1)], nextPageToken: "same" }) } };
  await t.throwsAsync(listAllMessages(clients, { taskId: "t" }), { instanceOf: PageTokenStuckError });
});

test("tasks: maxTasks stops early, mid-page", async (t) => {
  const task = (id: string) => ({ id }) as Task;
  const pages: Record<string, { tasks: Task[]; nextPageToken: string }> = {
    "": { tasks: [task("a"), task("b")], nextPageToken: "p2" },
    p2: { tasks: [task("c"), task("d")], nextPageToken: "p3" },
    p3: { tasks: [task("e")], nextPageToken: "" },
  };
  const seen: ListTasksRequest[] = [];
  const clients = {
    tasks: {
      listTasks: async (request: ListTasksRequest) => {
        seen.push(request);
        return pages[request.pageToken ?? ""]!;
      },
    },
  };
  const request = { workspaceId: "w", activeOnly: false };
  t.deepEqual(
    (await listAllTasks(clients, request)).map((x) => x.id),
    ["a", "b", "c", "d", "e"],
  );
  seen.length = 0;
  t.deepEqual(
    (await listAllTasks(clients, request, { maxTasks: 3 })).map((x) => x.id),
    ["a", "b", "c"],
  );
  t.is(seen.length, 2, "no page read past the cap");
});

import type { ListMessagesRequest, ListPendingTasksRequest, ListTasksRequest, Task, TaskMessage } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { GatewayClients } from "./clients.js";

/**
 * The task queue answers its lists a page at a time (each page well under
 * gRPC's 8 MiB message limit), while the contract's routes answer a bare
 * array of everything. These follow next_page_token to the end and hand back
 * the whole list, in the service's order. A gRPC error of any page is thrown
 * as is, so the route maps it with `call(...)` like a single call's.
 */

/** Only the list methods of the gateway's task-queue client (a test can pass a fake). */
type TasksWith<K extends keyof GatewayClients["tasks"]> = { tasks: Pick<GatewayClients["tasks"], K> };

/** Raised when the service hands back the token it was given: following it would never end. */
export class PageTokenStuckError extends Error {
  override name = "PageTokenStuckError";
}

interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/** Reads pages until one has no next token, or until `maxItems` are collected. */
async function collectPages<T>(readPage: (pageToken: string | undefined) => Promise<Page<T>>, maxItems: number): Promise<T[]> {
  const all: T[] = [];
  let pageToken: string | undefined;
  for (;;) {
    const page = await readPage(pageToken);
    for (const item of page.items) all.push(item);
    if (!page.nextPageToken || all.length >= maxItems) return all.length > maxItems ? all.slice(0, maxItems) : all;
    if (page.nextPageToken === pageToken) throw new PageTokenStuckError(`list did not advance past page token ${pageToken}`);
    pageToken = page.nextPageToken;
  }
}

/** Every message of a task (with seq > since, when given), in storage order: D21 and T5. */
export function listAllMessages(clients: TasksWith<"listMessages">, request: Omit<ListMessagesRequest, "pageToken">): Promise<TaskMessage[]> {
  return collectPages(async (pageToken) => {
    const { messages, nextPageToken } = await clients.tasks.listMessages({ ...request, pageToken });
    return { items: messages, nextPageToken };
  }, Infinity);
}

/**
 * A workspace's tasks (of one issue, or only unfinished ones, when asked),
 * newest first: T1 and T3. `maxTasks` stops early (the list used to stop at
 * 1,000 in the service).
 */
export function listAllTasks(
  clients: TasksWith<"listTasks">,
  request: Omit<ListTasksRequest, "pageToken">,
  { maxTasks = Infinity }: { maxTasks?: number } = {},
): Promise<Task[]> {
  return collectPages(async (pageToken) => {
    const { tasks, nextPageToken } = await clients.tasks.listTasks({ ...request, pageToken });
    return { items: tasks, nextPageToken };
  }, maxTasks);
}

/** A runtime's queued and dispatched tasks, by priority then age: D8. */
export function listAllPendingTasks(clients: TasksWith<"listPendingTasks">, request: Omit<ListPendingTasksRequest, "pageToken">): Promise<Task[]> {
  return collectPages(async (pageToken) => {
    const { tasks, nextPageToken } = await clients.tasks.listPendingTasks({ ...request, pageToken });
    return { items: tasks, nextPageToken };
  }, Infinity);
}

import {
  ActionFinished,
  AgentUpserted,
  DaemonRegistered,
  IssueFirstExecuted,
  EventMeta,
  MemberAdded,
  MemberRemoved,
  ProfileCreated,
  ProfileDeleted,
  ProfileUpdated,
  RuntimeDeleted,
  RuntimeMerged,
  RuntimeOffline,
  RuntimeOnline,
  RuntimeRegistered,
  TaskCancelled,
  TaskCompleted,
  TaskDispatched,
  TaskFailed,
  TaskMessages,
  TaskProgress,
  TaskQueued,
  TaskStarted,
  TaskWaiting,
  TokenRevoked,
} from "@controlplane/proto/events/v1/events";

/**
 * Every event the control plane publishes: `<domain>.<event>` -> its protobuf
 * message. The subject is `<root>.<domain>.<event>` (root "controlplane" by
 * default). Every message has `EventMeta meta = 1`.
 */
export const EVENT_TYPES = {
  "profile.created": ProfileCreated,
  "profile.updated": ProfileUpdated,
  "profile.deleted": ProfileDeleted,
  "runtime.registered": RuntimeRegistered,
  "daemon.registered": DaemonRegistered,
  "runtime.online": RuntimeOnline,
  "runtime.offline": RuntimeOffline,
  "runtime.merged": RuntimeMerged,
  "runtime.deleted": RuntimeDeleted,
  "agent.upserted": AgentUpserted,
  "member.added": MemberAdded,
  "member.removed": MemberRemoved,
  "token.revoked": TokenRevoked,
  "task.queued": TaskQueued,
  "task.dispatched": TaskDispatched,
  "task.started": TaskStarted,
  "task.waiting": TaskWaiting,
  "task.progress": TaskProgress,
  "task.messages": TaskMessages,
  "task.completed": TaskCompleted,
  "task.failed": TaskFailed,
  "task.cancelled": TaskCancelled,
  "issue.first_executed": IssueFirstExecuted,
  "action.finished": ActionFinished,
} as const;

export type EventType = keyof typeof EVENT_TYPES;

export type EventPayload<T extends EventType> = ReturnType<(typeof EVENT_TYPES)[T]["decode"]>;

/** The payload a producer supplies; the outbox fills in `meta`. */
export type EventBody<T extends EventType> = Omit<EventPayload<T>, "meta">;

export { EventMeta };

/**
 * An event's meta, which the outbox writes on every event it relays. One
 * without it did not come from an outbox: handling it fails, and the event
 * is redelivered and logged like any handler error.
 */
export function eventMeta(event: { meta?: EventMeta }): EventMeta {
  if (!event.meta) throw new Error("event without meta");
  return event.meta;
}

/** When the event happened, as the outbox stamped it (see eventMeta). */
export function occurredAt(event: { meta?: EventMeta }): Date {
  const { occurredAt } = eventMeta(event);
  if (!occurredAt) throw new Error("event without meta.occurred_at");
  return occurredAt;
}

export function isEventType(value: string): value is EventType {
  return Object.hasOwn(EVENT_TYPES, value);
}

export function subjectFor(root: string, type: EventType): string {
  return `${root}.${type}`;
}

export function encodeEvent<T extends EventType>(type: T, payload: EventPayload<T>): Uint8Array {
  // Each entry's encode accepts exactly its own payload type; the union of
  // entries cannot express that correlation, hence the narrowing cast.
  const codec = EVENT_TYPES[type] as unknown as { encode(message: EventPayload<T>): { finish(): Uint8Array } };
  return codec.encode(payload).finish();
}

export function decodeEvent<T extends EventType>(type: T, bytes: Uint8Array): EventPayload<T> {
  return EVENT_TYPES[type].decode(bytes) as EventPayload<T>;
}

import { counter, gauge } from "@controlplane/metrics";

export const published = counter({
  name: "outbox_published_total",
  help: "Events relayed from the outbox to JetStream.",
  labelNames: ["schema"] as const,
});
export const lagSeconds = gauge({
  name: "outbox_lag_seconds",
  help: "Age of the oldest event still waiting in the outbox (0 when empty), measured whether or not publishing succeeds.",
  labelNames: ["schema"] as const,
});
export const failures = counter({
  name: "outbox_relay_failures_total",
  help: "Relay passes in which events failed to publish transiently and were retried.",
  labelNames: ["schema"] as const,
});
/**
 * Alert on any increase: each one is an event that was committed but will not
 * reach consumers until an operator fixes the cause and requeues it
 * (requeueParked) or deletes it from outbox_parked.
 */
export const parkedTotal = counter({
  name: "outbox_parked_total",
  help: "Events moved to outbox_parked because they can never be published (e.g. over NATS max_payload). Alert on increase.",
  labelNames: ["schema"] as const,
});
export const parkedNow = gauge({
  name: "outbox_parked",
  help: "Events sitting in outbox_parked right now, waiting for an operator.",
  labelNames: ["schema"] as const,
});

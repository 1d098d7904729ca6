import { counter, gauge } from "@controlplane/metrics";

/** Hubs of this process (one per gateway; tests may start several). */
const hubs = new Set<{ size: number }>();

/** What operators watch on the daemon sockets (README, "What to watch"). */
export const socketMetrics = {
  open: gauge({
    name: "gateway_daemon_sockets_open",
    help: "Daemon sockets open on this gateway.",
    labelNames: [] as const,
    collect() {
      let open = 0;
      for (const hub of hubs) open += hub.size;
      this.set(open);
    },
  }),
  connects: counter({ name: "gateway_daemon_socket_connects_total", help: "Daemon sockets accepted.", labelNames: [] as const }),
  disconnects: counter({ name: "gateway_daemon_socket_disconnects_total", help: "Daemon sockets that ended, for any reason.", labelNames: [] as const }),
  closes: counter({
    name: "gateway_daemon_socket_closes_total",
    help: "Daemon sockets the gateway closed: slow_consumer (evicted on a full queue), pong_timeout, revoked, shutdown.",
    labelNames: ["reason"] as const,
  }),
  wakeups: counter({
    name: "gateway_daemon_socket_signals_total",
    help: "Wake-ups (kind=wake) and hints (kind=hint) for daemon sockets: sent, dropped (queue full or socket closing), no_socket (nobody here watches it).",
    labelNames: ["kind", "result"] as const,
  }),
  acks: counter({
    name: "gateway_daemon_socket_acks_total",
    help: "Socket heartbeats by outcome: sent, runtime_gone, undelivered (actions given back), failed (no ack), skipped (socket backlogged).",
    labelNames: ["outcome"] as const,
  }),
  rpcs: counter({
    name: "gateway_daemon_socket_rpcs_total",
    help: "RPCs served over daemon sockets, by method and outcome (the answer's status, or undelivered: tasks given back).",
    labelNames: ["method", "outcome"] as const,
  }),
  received: counter({
    name: "gateway_daemon_socket_frames_received_total",
    help: "Frames received from daemons, by kind (heartbeat, rpc_request, other, invalid).",
    labelNames: ["kind"] as const,
  }),
  register(hub: { size: number }): void {
    hubs.add(hub);
  },
  unregister(hub: { size: number }): void {
    hubs.delete(hub);
  },
};

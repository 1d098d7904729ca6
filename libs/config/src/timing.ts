/**
 * Durations that more than one component must agree on. The Envoy config and
 * the Helm chart are checked against these values in CI (deploy/test), so a
 * change here that breaks the chain fails the build.
 */

/** Longest a claim long-poll is held before answering {"task": null}. */
export const CLAIM_LONG_POLL_MAX_MS = 25_000;

/**
 * The daemon's own HTTP client gives up after 30 s: every answer, long-poll
 * included, must leave before that, and proxies on the way must wait longer
 * than the hold.
 */
export const DAEMON_HTTP_TIMEOUT_MS = 30_000;

/** Time in-flight calls get to finish after SIGTERM, per process. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/**
 * Deadline of the gateway's gRPC calls (claims excepted: they wait up to the
 * long-poll hold). Below the daemon's 30 s timeout, so the daemon sees our
 * answer, not its own timeout; proxies in front wait longer than this.
 */
export const GATEWAY_GRPC_DEADLINE_MS = 10_000;

/**
 * What a claim gets beyond its long-poll hold to run the claim and send the
 * answer: the gateway's deadline for a claim is hold + this, so a claim
 * delayed by a restarting task queue still answers before the front proxy's
 * claim timeout and the daemon's own 30 s.
 */
export const CLAIM_ANSWER_SLACK_MS = 2_000;

/**
 * The daemon socket (GET /api/daemon/ws) pings this often. The original
 * server pinged every 54 s and today's daemon drops a socket that has been
 * silent for 60 s, so this must stay below 60 s; proxies on the way must keep
 * an idle upgraded stream open longer than this.
 */
export const DAEMON_SOCKET_PING_INTERVAL_MS = 54_000;

/** A socket whose last pong is older than this is closed (the original's read deadline). */
export const DAEMON_SOCKET_PONG_TIMEOUT_MS = 60_000;

/**
 * On SIGTERM the gateway closes its daemon sockets (close frame 1001, "going
 * away") and waits up to this for the close handshakes before it stops; the
 * pod's termination grace must cover it.
 */
export const DAEMON_SOCKET_DRAIN_MS = 2_000;

import type { FastifyReply, FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { LIMITS } from "@controlplane/config";
import { authenticateDaemon } from "../auth/checks.js";
import type { SocketIdentity } from "../socket/connection.js";
import type { SocketHub } from "../socket/hub.js";
import { clientCapabilities } from "../wire/capabilities.js";
import { HttpError } from "../wire/errors.js";
import type { Query } from "../wire/query.js";
import type { RequestWith, RouteContext, RouteServices } from "./context.js";

/** What the upgrade checks established, handed from the checks to the socket. */
const admitted = new WeakMap<FastifyRequest, SocketIdentity>();

/**
 * D4, the daemon socket. The contract's checks run before the WebSocket
 * handshake is even looked at, each with its own JSON error: daemon auth,
 * the runtime ids, then R for each id in order (all or nothing) and, for a
 * daemon token, the runtime's daemon. Only then is the handshake validated
 * (400 as text, like the original's WebSocket library) and the socket taken.
 */
export function registerDaemonSocketRoute({ router }: RouteContext, hub: SocketHub): void {
  router.socket("/api/daemon/ws", {
    preHandler: admitDaemonSocket,
    handler: refusePlainRequest,
    wsHandler: (ws, request) => attachDaemonSocket(hub, ws, request),
  });
}

async function admitDaemonSocket(request: RequestWith, reply: FastifyReply, services: RouteServices) {
  const identity = await admit(request, services);
  if (isUpgrade(request) && !validHandshake(request)) return refuseHandshake(reply);
  admitted.set(request, identity);
}

/** Good credentials and ids but no WebSocket handshake at all. */
async function refusePlainRequest(_request: RequestWith, reply: FastifyReply) {
  return refuseHandshake(reply);
}

function attachDaemonSocket(hub: SocketHub, ws: WebSocket, request: FastifyRequest): void {
  const identity = admitted.get(request);
  if (!identity) {
    ws.close(1011, "not admitted");
    return;
  }
  hub.attach(ws, identity);
}

async function admit(request: RequestWith, { auth, resources }: RouteServices): Promise<SocketIdentity> {
  const caller = await authenticateDaemon(request, auth);
  const sent = runtimeIdsOf(request.query);
  // Today's daemon opens an account-wide socket (hints only) with no runtimes yet; a daemon token has no account.
  if (sent.length === 0 && !caller.userId) throw new HttpError(400, "runtime_ids required");
  if (sent.length > LIMITS.RUNTIMES_PER_SOCKET) throw new HttpError(400, `too many runtime_ids (at most ${LIMITS.RUNTIMES_PER_SOCKET})`);
  const runtimes = new Map<string, string>();
  const workspaceIds = new Set<string>();
  for (const raw of sent) {
    const runtime = await resources.runtime(caller, raw);
    if (caller.kind === "daemon_token" && runtime.daemonId && runtime.daemonId !== caller.daemonId) {
      throw new HttpError(404, "runtime not found");
    }
    if (!runtimes.has(runtime.id)) runtimes.set(runtime.id, raw);
    workspaceIds.add(runtime.workspaceId);
  }
  const version = request.headers["x-client-version"];
  return {
    caller,
    runtimes,
    workspaceIds,
    clientVersion: typeof version === "string" ? version.slice(0, 64) : undefined,
    capabilities: new Set(clientCapabilities(request) ?? []),
  };
}

/**
 * Every `runtime_id` value, then every `runtime_ids` value, each split on
 * commas and trimmed; blanks dropped, exact duplicates once.
 */
export function runtimeIdsOf(query: Query): string[] {
  const values = [query.runtime_id, query.runtime_ids].flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));
  const ids = values
    .flatMap((value) => value.split(","))
    .map((id) => id.trim())
    .filter((id) => id !== "");
  return [...new Set(ids)];
}

function isUpgrade(request: FastifyRequest): boolean {
  return request.ws === true;
}

/** RFC 6455's checks, made here so a bad handshake gets the original's answer rather than the library's. */
function validHandshake(request: FastifyRequest): boolean {
  const { headers } = request;
  const key = headers["sec-websocket-key"];
  return (
    headers.upgrade?.toLowerCase() === "websocket" && headers["sec-websocket-version"] === "13" && typeof key === "string" && /^[A-Za-z0-9+/]{22}==$/.test(key)
  );
}

/** The original's WebSocket library answered a bad handshake with plain text and its version header. */
function refuseHandshake(reply: FastifyReply): FastifyReply {
  return reply
    .code(400)
    .header("content-type", "text/plain; charset=utf-8")
    .header("x-content-type-options", "nosniff")
    .header("sec-websocket-version", "13")
    .send("Bad Request\n");
}

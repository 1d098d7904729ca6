import { randomUUID } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { isServiceError, status } from "@controlplane/grpc";
import type { Logger } from "@controlplane/log";
import { counter, histogram } from "@controlplane/metrics";
import { authenticateDaemon } from "./auth/checks.js";
import type { Authenticator } from "./auth/authenticator.js";
import type { Resources } from "./auth/resources.js";
import type { GatewayClients } from "./clients.js";
import { Router } from "./router.js";
import websocket from "@fastify/websocket";
import { registerCliRoutes } from "./routes/cli.js";
import { registerCancelAckAndGcCheckRoutes } from "./routes/daemon-cancel-gc.js";
import { registerClaimRoutes } from "./routes/claims.js";
import { registerDaemonSocketRoute } from "./routes/daemon-socket.js";
import { registerDaemonRuntimeTaskRoutes } from "./routes/daemon-runtime-tasks.js";
import { registerDaemonTaskRoutes } from "./routes/daemon-tasks.js";
import type { SocketHub } from "./socket/hub.js";
import { registerHeartbeatRoutes } from "./routes/heartbeat.js";
import { registerProfileRoutes } from "./routes/profiles.js";
import { registerRegistrationRoutes } from "./routes/register.js";
import { registerRuntimeActionRoutes } from "./routes/runtime-actions.js";
import { registerSkillBundleRoutes } from "./routes/skill-bundles.js";
import { registerUserTaskRoutes } from "./routes/user-tasks.js";
import { registerWorkspaceRoutes } from "./routes/workspaces.js";
import { HttpError } from "./wire/errors.js";
import { INVALID_BODY } from "./wire/body.js";
import { sendError } from "./wire/reply.js";
import { answerClientError, answerFrameworkError } from "./wire/framework-errors.js";
import { refuseTooLarge } from "./wire/too-large.js";

const requests = counter({
  name: "http_requests_total",
  help: "HTTP requests answered by the gateway, by route pattern, method and status.",
  labelNames: ["route", "method", "status"] as const,
});
const latency = histogram({
  name: "http_request_duration_seconds",
  help: "Time to answer an HTTP request, by route pattern.",
  labelNames: ["route", "method"] as const,
});

/** Requests slower than this are logged at info. */
const SLOW_REQUEST_MS = 500;
/** Longest path parameter routed to a handler (a UUID is 36; 32-hex action ids; room for junk to be refused by name). */
const MAX_PARAM_CHARS = 1_024;

/** Every 5xx says why: the route's message, the gRPC status under it and the cause, with the request id. */
function logServerError(log: Logger, request: FastifyRequest, error: HttpError): void {
  const cause = error.cause;
  log.error(
    {
      request_id: request.id,
      method: request.method,
      route: request.routeOptions.url ?? "unmatched",
      status: error.statusCode,
      grpc_code: isServiceError(cause) ? status[cause.code] : undefined,
      err: cause ?? error,
    },
    error.message,
  );
}

export interface GatewayDeps {
  clients: GatewayClients;
  auth: Authenticator;
  resources: Resources;
  log: Logger;
  bodyLimit: number;
  /** A request not received in full within this is answered 408 and its connection closed. */
  requestTimeoutMs: number;
  /** Aborted when the gateway starts shutting down. */
  shutdown: AbortSignal;
  /** Holds the daemon sockets. */
  sockets: SocketHub;
  /** Largest frame a daemon may send on its socket. */
  maxFrameBytes: number;
}

/** The gateway's HTTP surface: the daemon contract, byte for byte. */
export function buildGatewayApp(deps: GatewayDeps): { app: FastifyInstance; router: Router } {
  const { log } = deps;
  const app = Fastify({
    bodyLimit: deps.bodyLimit,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    // A client that never finishes sending its request does not hold a
    // connection forever (checked every few seconds, not Node's 30 s).
    // (Node applies it only when the headers timeout is no longer, and only if both are given at creation.)
    requestTimeout: deps.requestTimeoutMs,
    http: {
      requestTimeout: deps.requestTimeoutMs,
      headersTimeout: deps.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(5_000, Math.max(100, deps.requestTimeoutMs / 4)),
    },
    // Ids longer than this are not ids; shorter ones reach the handlers, which answer the contract's "invalid ..._id".
    routerOptions: { maxParamLength: MAX_PARAM_CHARS },
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && given.length > 0 && given.length <= 128 ? given : randomUUID();
    },
  });

  // Bodies are read as text and decoded per route with the original
  // decoder's rules, whatever the Content-Type says.
  app.removeAllContentTypeParsers();
  const asText = (_request: FastifyRequest, body: string | Buffer, done: (error: null, body: string | Buffer) => void) => done(null, body);
  app.addContentTypeParser("*", { parseAs: "string" }, asText);
  // The same parser, named for the type daemons send: fastify remembers the
  // parser of a named type, but looks the catch-all up anew on every request.
  app.addContentTypeParser("application/json", { parseAs: "string" }, asText);

  // The daemon socket: no subprotocol is ever chosen and no extension
  // negotiated (the original offered neither); sockets are drained by the
  // hub on shutdown, before the server closes.
  app.register(websocket, {
    options: { maxPayload: deps.maxFrameBytes, perMessageDeflate: false, handleProtocols: () => false },
    preClose: (done) => done(),
  });

  const services = { clients: deps.clients, auth: deps.auth, resources: deps.resources, shutdown: deps.shutdown };
  const router = new Router(app, services);
  const context = { router, ...services };
  registerDaemonSocketRoute(context, deps.sockets);
  registerRegistrationRoutes(context);
  registerWorkspaceRoutes(context);
  registerProfileRoutes(context);
  registerDaemonRuntimeTaskRoutes(context);
  registerDaemonTaskRoutes(context);
  registerClaimRoutes(context);
  registerCancelAckAndGcCheckRoutes(context);
  registerHeartbeatRoutes(context);
  registerUserTaskRoutes(context);
  registerRuntimeActionRoutes(context);
  registerCliRoutes(context);
  registerSkillBundleRoutes(context);

  router.add("GET", "/healthz", healthz);

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    // Daemon auth runs before routing in the original server.
    if (path.startsWith("/api/daemon/")) await authenticateDaemon(request, deps.auth);
    if (router.pathExists(path)) return reply.code(405).send();
    return reply.code(404).header("content-type", "text/plain; charset=utf-8").header("x-content-type-options", "nosniff").send("404 page not found\n");
  });

  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    if (error instanceof HttpError) {
      if (error.statusCode >= 500) logServerError(log, request, error);
      return sendError(reply, error.statusCode, error.message, error.style);
    }
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return refuseTooLarge(request, reply);
    if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, 400, INVALID_BODY, "handler");
    }
    log.error({ err: error, request_id: request.id, url: request.url }, "unhandled gateway error");
    return sendError(reply, 500, "internal error", "handler");
  });

  // The two hooks every request runs take `done` instead of being async: an
  // async hook costs each request a promise and a turn of the microtask queue.

  // While shutting down, every answer closes its connection: the client's
  // next request goes to another replica, and close() need not wait for
  // keep-alive connections to idle out.
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (deps.shutdown.aborted) reply.header("connection", "close");
    done(null, payload);
  });

  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    const ms = reply.elapsedTime;
    requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    latency.observe({ route, method: request.method }, ms / 1000);
    if (ms >= SLOW_REQUEST_MS) log.info(requestFields(request, reply, route, ms), "slow request");
    else if (log.isLevelEnabled("debug")) log.debug(requestFields(request, reply, route, ms), "request");
    done();
  });

  return { app, router };
}

/** What the request log line says of a request. */
function requestFields(request: FastifyRequest, reply: FastifyReply, route: string, ms: number) {
  return { request_id: request.id, method: request.method, route, status: reply.statusCode, ms: Math.round(ms) };
}

/** The load balancer's liveness probe: the process answers. */
async function healthz(_request: FastifyRequest, reply: FastifyReply) {
  return reply.code(200).type("text/plain").send("ok\n");
}

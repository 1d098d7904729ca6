import { randomUUID } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from "@controlplane/log";
import { counter, histogram } from "@controlplane/metrics";
import { authenticateDaemon } from "./auth/checks.js";
import type { Authenticator } from "./auth/authenticator.js";
import type { Resources } from "./auth/resources.js";
import type { GatewayClients } from "./clients.js";
import { Router } from "./router.js";
import { registerDaemonTaskRoutes } from "./routes/daemon-tasks.js";
import { registerHeartbeatRoutes } from "./routes/heartbeat.js";
import { registerProfileRoutes } from "./routes/profiles.js";
import { registerRegistrationRoutes } from "./routes/register.js";
import { registerUserTaskRoutes } from "./routes/user-tasks.js";
import { registerWorkspaceRoutes } from "./routes/workspaces.js";
import { HttpError } from "./wire/errors.js";
import { INVALID_BODY } from "./wire/body.js";
import { sendError } from "./wire/reply.js";

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

export interface GatewayDeps {
  clients: GatewayClients;
  auth: Authenticator;
  resources: Resources;
  log: Logger;
  bodyLimit: number;
}

/** The gateway's HTTP surface: the daemon contract, byte for byte. */
export function buildGatewayApp(deps: GatewayDeps): FastifyInstance {
  const { log } = deps;
  const app = Fastify({
    bodyLimit: deps.bodyLimit,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && given.length > 0 && given.length <= 128 ? given : randomUUID();
    },
  });

  // Bodies are read as text and decoded per route with the original
  // decoder's rules, whatever the Content-Type says.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));

  const router = new Router(app);
  const context = { router, clients: deps.clients, auth: deps.auth, resources: deps.resources };
  registerRegistrationRoutes(context);
  registerWorkspaceRoutes(context);
  registerProfileRoutes(context);
  registerDaemonTaskRoutes(context);
  registerHeartbeatRoutes(context);
  registerUserTaskRoutes(context);

  router.add("GET", "/healthz", async (_request, reply) => reply.code(200).type("text/plain").send("ok\n"));

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    // Daemon auth runs before routing in the original server.
    if (path.startsWith("/api/daemon/")) await authenticateDaemon(request, deps.auth);
    if (router.pathExists(path)) return reply.code(405).send();
    return reply
      .code(404)
      .header("content-type", "text/plain; charset=utf-8")
      .header("x-content-type-options", "nosniff")
      .send("404 page not found\n");
  });

  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    if (error instanceof HttpError) return sendError(reply, error.statusCode, error.message, error.style);
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") return sendError(reply, 413, "request body too large", "handler");
    if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
      return sendError(reply, 400, INVALID_BODY, "handler");
    }
    log.error({ err: error, request_id: request.id, url: request.url }, "unhandled gateway error");
    return sendError(reply, 500, "internal error", "handler");
  });

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const ms = reply.elapsedTime;
    requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    latency.observe({ route, method: request.method }, ms / 1000);
    const fields = { request_id: request.id, method: request.method, route, status: reply.statusCode, ms: Math.round(ms) };
    if (ms >= SLOW_REQUEST_MS) log.info(fields, "slow request");
    else log.debug(fields, "request");
  });

  return app;
}

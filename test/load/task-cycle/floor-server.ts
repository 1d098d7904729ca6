/**
 * The HTTP floor's server (a child of the benchmark, see floor.ts): bare
 * fastify on the gateway's routes for the cycle and the heartbeat, answering
 * each with an answer the real gateway gave, serialised per request as the
 * gateway does. No auth beyond the header's presence, no gRPC, no database.
 */
import Fastify from "fastify";

export interface FloorAnswers {
  claim: unknown;
  start: unknown;
  complete: unknown;
  heartbeat: unknown;
}

const answers = await new Promise<FloorAnswers>((resolve) => process.once("message", (message) => resolve(message as FloorAnswers)));
const app = Fastify({ logger: false });
app.addHook("onRequest", async (request, reply) => {
  if (!request.headers.authorization?.startsWith("Bearer ")) await reply.code(401).send({ error: "missing authorization" });
});
app.post("/api/daemon/runtimes/:runtimeId/tasks/claim", async () => answers.claim);
app.post("/api/daemon/tasks/:taskId/start", async () => answers.start);
app.post("/api/daemon/tasks/:taskId/complete", async () => answers.complete);
app.post("/api/daemon/heartbeat", async () => answers.heartbeat);
await app.listen({ port: 0, host: "127.0.0.1" });
const address = app.server.address();
process.send!({ port: typeof address === "object" && address ? address.port : 0 });
process.once("disconnect", () => void app.close());

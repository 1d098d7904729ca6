import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { loadGatewayConfig } from "@controlplane/gateway/config";
import { startGateway, type RunningGateway } from "@controlplane/gateway";
import { createClient, type PromiseClient, serveInProcess } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { loadProfileCatalogConfig } from "@controlplane/profile-catalog/config";
import { startProfileCatalog } from "@controlplane/profile-catalog";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { IdentityServiceService, MemberRole } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { loadRegistryConfig } from "@controlplane/runtime-registry/config";
import { startRegistry, type RunningRegistry } from "@controlplane/runtime-registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { loadTaskQueueConfig } from "@controlplane/task-queue/config";
import { startTaskQueue, type RunningTaskQueue } from "@controlplane/task-queue";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { loadLivenessConfig } from "@controlplane/liveness/config";
import { startLiveness, type RunningLiveness } from "@controlplane/liveness";
import { createTestDatabase, createTestEvents, freePort, testEnv, type TestDatabase, type TestEvents } from "@controlplane/testkit";

/** Deadline of the stack's clients, the calls tests make to set things up. */
const SCAFFOLDING_DEADLINE_MS = 60_000;

export const JWT_SECRET = "test-secret-of-at-least-16-chars";

/** Every service and the gateway on OS-picked ports, on a database and stream of their own. */
export interface Stack {
  gatewayUrl: string;
  /** Every route the gateway serves. */
  gatewayRoutes: ReadonlyArray<{ method: string; url: string }>;
  /** The gateway's daemon sockets. */
  gatewaySockets: RunningGateway["sockets"];
  registryAddr: string;
  profilesAddr: string;
  identity: PromiseClient<typeof IdentityServiceService>;
  profiles: PromiseClient<typeof ProfileCatalogServiceService>;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
  tasks: PromiseClient<typeof TaskQueueServiceService>;
  tasksAddr: string;
  liveness: PromiseClient<typeof LivenessServiceService>;
  livenessAddr: string;
  /** The running liveness service (flush and sweep on demand in tests). */
  livenessService: RunningLiveness;
  /** The running task queue and registry: their background jobs (`jobs.*.runOnce()`) on demand. */
  taskQueueService: RunningTaskQueue;
  registryService: RunningRegistry;
  db: TestDatabase;
  events: TestEvents;
  /** The environment the services were started with. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts every service and the gateway in this process on a fresh database.
 * With `inProcess`, the services (and the stack's own clients) call each
 * other in process, as the all-in-one does by default; otherwise over
 * loopback gRPC, as between pods.
 */
export async function startStack(extraEnv: Record<string, string> = {}, options: { inProcess?: boolean } = {}): Promise<Stack> {
  // Test files start planes side by side: a port freePort found free may be
  // taken by another plane, or an outgoing connection, before this plane's
  // service listens on it. Then the whole plane, stopped and dropped, starts
  // again on other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOnce(extraEnv, options);
    } catch (error) {
      if (attempt === START_ATTEMPTS || !causeChain(error).includes("EADDRINUSE")) throw error;
    }
  }
}

const START_ATTEMPTS = 3;

async function startStackOnce(extraEnv: Record<string, string>, options: { inProcess?: boolean }): Promise<Stack> {
  // Independent round trips to Postgres, NATS and the OS: made together.
  const [db, events, registryPort, profilesPort, tasksPort, livenessPort] = await Promise.all([
    createTestDatabase(),
    createTestEvents(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  // The registry and the catalog call each other: fix both addresses first.
  const registryAddr = `127.0.0.1:${registryPort}`;
  const profilesAddr = `127.0.0.1:${profilesPort}`;
  const tasksAddr = `127.0.0.1:${tasksPort}`;
  const livenessAddr = `127.0.0.1:${livenessPort}`;
  if (options.inProcess) serveInProcess([registryAddr, profilesAddr, tasksAddr, livenessAddr]);
  const env = testEnv(db, events, {
    JWT_SECRET,
    REGISTRY_GRPC_PORT: String(registryPort),
    PROFILE_CATALOG_GRPC_PORT: String(profilesPort),
    REGISTRY_GRPC_ADDR: registryAddr,
    PROFILE_CATALOG_GRPC_ADDR: profilesAddr,
    TASK_QUEUE_GRPC_PORT: String(tasksPort),
    TASK_QUEUE_GRPC_ADDR: tasksAddr,
    LIVENESS_GRPC_PORT: String(livenessPort),
    LIVENESS_GRPC_ADDR: livenessAddr,
    ...extraEnv,
  });
  const log = createLogger("test", env.LOG_LEVEL);
  // The services start together: each migrates its own schema and connects
  // on its own, and each knows the others' addresses, not whether they are up yet.
  const starts = [
    startRegistry(loadRegistryConfig(env), log),
    startProfileCatalog(loadProfileCatalogConfig(env), log),
    startTaskQueue(loadTaskQueueConfig(env), log),
    startLiveness(loadLivenessConfig(env), log),
    startGateway(loadGatewayConfig(env), log),
  ] as const;
  await allStarted(starts).catch(async (error: unknown) => {
    await events.close();
    await db.drop();
    throw error;
  });
  const [registry, profileCatalog, taskQueue, livenessService, gateway] = await Promise.all(starts);
  // The tests' own calls (setting up workspaces, runtimes, tasks, actions) are
  // not what they measure: on a loaded machine a call can wait seconds for
  // this process's event loop, which also runs the stack and other tests, and
  // the clients' default deadline of 5 s failed them. A test of deadlines
  // passes its own. (The task queue's also covers claims held up to 25 s.)
  const scaffolding = { deadlineMs: SCAFFOLDING_DEADLINE_MS };
  const identity = createClient(IdentityServiceService, registryAddr, scaffolding);
  const profiles = createClient(ProfileCatalogServiceService, profilesAddr, scaffolding);
  const registryClient = createClient(RuntimeRegistryServiceService, registryAddr, scaffolding);
  const tasksClient = createClient(TaskQueueServiceService, tasksAddr, scaffolding);
  const livenessClient = createClient(LivenessServiceService, livenessAddr, scaffolding);
  const stack: Stack = {
    gatewayUrl: `http://127.0.0.1:${gateway.port}`,
    gatewayRoutes: gateway.routes,
    gatewaySockets: gateway.sockets,
    registryAddr,
    profilesAddr,
    identity,
    profiles,
    registry: registryClient,
    tasks: tasksClient,
    tasksAddr,
    liveness: livenessClient,
    livenessAddr,
    livenessService,
    taskQueueService: taskQueue,
    registryService: registry,
    db,
    events,
    env,
    async stop() {
      identity.close();
      profiles.close();
      registryClient.close();
      tasksClient.close();
      livenessClient.close();
      await gateway.stop();
      await stack.livenessService.stop();
      await taskQueue.stop();
      await profileCatalog.stop();
      await registry.stop();
      await events.close();
      await db.drop();
    },
  };
  return stack;
}

/**
 * Waits for every start to settle. When one failed, stops whatever did
 * start and fails with the first error as the cause.
 */
async function allStarted(starts: ReadonlyArray<Promise<{ stop(): Promise<void> }>>): Promise<void> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (!failed) return;
  await Promise.all(settled.map((s) => (s.status === "fulfilled" ? s.value.stop() : undefined)));
  // ava prints the message, not the cause: the chain of causes goes in it.
  throw new Error(`the plane did not start: ${causeChain(failed.reason)}`, { cause: failed.reason });
}

/** An error's message followed by its causes' messages. */
function causeChain(error: unknown): string {
  const messages: string[] = [];
  for (let link = error; link !== undefined && messages.length < 5; link = (link as { cause?: unknown }).cause) {
    messages.push(link instanceof Error ? `${link.name}: ${link.message}` : String(link));
  }
  return messages.join(" <- ");
}

export interface SeededUser {
  userId: string;
  pat: string;
  patId: string;
  jwt: string;
}

/** A workspace with one user of each role, each holding a PAT and a JWT. */
export interface SeededWorkspace {
  workspaceId: string;
  owner: SeededUser;
  admin: SeededUser;
  member: SeededUser;
}

export async function seedWorkspace(stack: Stack, name = `ws-${randomUUID().slice(0, 8)}`): Promise<SeededWorkspace> {
  const { workspace } = await stack.identity.createWorkspace({
    name,
    slug: "",
    description: "",
    repos: [],
    settingsJson: "",
    issuePrefix: "",
  });
  const workspaceId = workspace!.id;
  const user = async (role: MemberRole): Promise<SeededUser> => {
    const userId = randomUUID();
    await stack.identity.addMember({ workspaceId, userId, role });
    const issued = await stack.identity.issuePersonalAccessToken({ userId, name: "test", ttlSeconds: 3600 });
    return { userId, pat: issued.token, patId: issued.info!.id, jwt: await signJwt(userId) };
  };
  return {
    workspaceId,
    owner: await user(MemberRole.MEMBER_ROLE_OWNER),
    admin: await user(MemberRole.MEMBER_ROLE_ADMIN),
    member: await user(MemberRole.MEMBER_ROLE_MEMBER),
  };
}

export async function signJwt(subject: string | undefined, options: { secret?: string; expiresInSeconds?: number } = {}) {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuedAt();
  if (subject !== undefined) jwt.setSubject(subject);
  jwt.setExpirationTime(Math.floor(Date.now() / 1000) + (options.expiresInSeconds ?? 3600));
  return jwt.sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

import test from "ava";
import { startMetricsServer } from "@controlplane/metrics";
import { waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

test("the metrics endpoint shows RPCs by method and code, HTTP routes, DB pools and outbox lag", async (t) => {
  const metrics = await startMetricsServer(0, "127.0.0.1");
  t.teardown(metrics.close);
  const ws = await seedWorkspace(stack);
  const created = await http(stack.gatewayUrl, "POST", `/api/workspaces/${ws.workspaceId}/runtime-profiles`, {
    token: ws.admin.pat,
    body: { display_name: "m", protocol_family: "pi", command_name: "pi" },
  });
  t.is(created.status, 201);
  await http(stack.gatewayUrl, "GET", `/api/workspaces/${ws.workspaceId}/runtime-profiles/00000000-0000-0000-0000-000000000000`, {
    token: ws.admin.pat,
  });
  const text = await waitFor("outbox lag to be measured", async () => {
    const body = await (await fetch(`http://127.0.0.1:${metrics.port}/metrics`)).text();
    return body.includes('outbox_lag_seconds{schema="profiles"}') ? body : undefined;
  });
  t.regex(text, /grpc_server_handled_total\{grpc_service="controlplane.profiles.v1.ProfileCatalogService",grpc_method="CreateProfile",grpc_code="OK"\} [1-9]/);
  t.regex(
    text,
    /grpc_server_handled_total\{grpc_service="controlplane.profiles.v1.ProfileCatalogService",grpc_method="GetProfile",grpc_code="NOT_FOUND"\} [1-9]/,
  );
  t.regex(text, /grpc_server_handling_seconds_bucket\{le="0.005",grpc_service="controlplane.registry.v1.IdentityService",grpc_method="ResolveToken"\}/);
  t.regex(text, /http_requests_total\{route="\/api\/workspaces\/:workspaceId\/runtime-profiles",method="POST",status="201"\} [1-9]/);
  t.regex(text, /db_pool_connections\{pool="profile-catalog",state="idle"\}/);
  t.regex(text, /outbox_published_total\{schema="profiles"\} [1-9]/);
});

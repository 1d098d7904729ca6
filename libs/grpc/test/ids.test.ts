import test from "ava";
import { InvalidArgumentError, requireUuid, status } from "@controlplane/grpc";

test("requireUuid gives the canonical form of either spelling the contract accepts", (t) => {
  t.is(requireUuid("11111111-2222-3333-4444-55555555AAAA", "workspace_id"), "11111111-2222-3333-4444-55555555aaaa");
  t.is(requireUuid("1111111122223333444455555555aaaa", "workspace_id"), "11111111-2222-3333-4444-55555555aaaa");
});

test("requireUuid refuses anything else with INVALID_ARGUMENT naming the field", (t) => {
  for (const bad of ["", "not-a-uuid", "11111111-2222-3333-4444-55555555aaa", " 11111111-2222-3333-4444-55555555aaaa"]) {
    const error = t.throws(() => requireUuid(bad, "agent_id"), { instanceOf: InvalidArgumentError });
    t.is(error?.message, "invalid agent_id");
    t.is(error?.code, status.INVALID_ARGUMENT);
  }
});

import test from "ava";
import { LivenessState, type RuntimeState } from "../src/state.js";

function stateWith(status: RuntimeState["status"], changedAt: number): LivenessState {
  const state = new LivenessState();
  state.runtimes.set("r", { workspaceId: "w", status, statusChangedAt: changedAt, lastBeatAt: 0, lastSocketBeatAt: 0, lastFlushedAt: 0, storeWrittenAt: 0 });
  return state;
}

test("a status learned late never overwrites a newer one (a registration read before a deregister was handled)", (t) => {
  const state = stateWith("online", 1_000);
  state.markOffline("r", 2_000); // the deregister
  state.setStatus("r", "online", 1_000); // the registration's row, read before it
  t.is(state.runtimes.get("r")!.status, "offline");
  state.setStatus("r", "online", 3_000); // a later registration
  t.is(state.runtimes.get("r")!.status, "online");
  t.is(state.runtimes.get("r")!.statusChangedAt, 3_000);
});

test("a change for a runtime this replica does not know is ignored, not invented", (t) => {
  const state = new LivenessState();
  state.markOnline("unknown", 5);
  t.false(state.runtimes.has("unknown"));
});

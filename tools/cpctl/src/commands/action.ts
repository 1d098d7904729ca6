import { type Command, Option } from "commander";
import { ActionKind, type Action, actionKindToJSON } from "@controlplane/proto/liveness/v1/liveness";
import { livenessClient } from "../clients.js";
import { fields, print } from "../output.js";
import { context } from "../program.js";

const KINDS = {
  update: ActionKind.ACTION_KIND_UPDATE,
  "model-list": ActionKind.ACTION_KIND_MODEL_LIST,
  "local-skills": ActionKind.ACTION_KIND_LOCAL_SKILLS,
  "local-skill-import": ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT,
};

function describe(a: Action): string {
  return fields([
    ["id", a.id],
    ["runtime_id", a.runtimeId],
    ["kind", actionKindToJSON(a.kind).replace("ACTION_KIND_", "").toLowerCase()],
    ["status", a.status],
    ["request", a.requestJson],
    ["result", a.resultJson],
    ["error", a.error],
    ["created_at", a.createdAt],
  ]);
}

export function registerActionCommands(program: Command): void {
  const action = program.command("action").description("queue actions for a daemon (delivered on its next heartbeat)");

  action
    .command("enqueue <runtime-id>")
    .description("queue an action for the runtime's daemon")
    .addOption(new Option("--kind <kind>", "what to ask").choices(Object.keys(KINDS)).makeOptionMandatory())
    .option("--target-version <version>", "update: the version to install")
    .option("--skill-key <key>", "local-skill-import: the skill to import")
    .action(async (runtimeId: string, opts: { kind: keyof typeof KINDS; targetVersion?: string; skillKey?: string }) => {
      const { addresses, out } = context();
      const client = livenessClient(addresses);
      try {
        const { action: queued } = await client.enqueueAction({
          runtimeId,
          kind: KINDS[opts.kind],
          targetVersion: opts.targetVersion ?? "",
          skillKey: opts.skillKey ?? "",
          importAction: "",
          supportsConflict: false,
        });
        print(out, queued, () => describe(queued!));
      } finally {
        client.close();
      }
    });

  action
    .command("show <action-id>")
    .description("show an action and its outcome (timeouts applied)")
    .action(async (actionId: string) => {
      const { addresses, out } = context();
      const client = livenessClient(addresses);
      try {
        const { action: found } = await client.getAction({ actionId });
        print(out, found, () => describe(found!));
      } finally {
        client.close();
      }
    });
}

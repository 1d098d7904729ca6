import { hasCode, isServiceError, status } from "@controlplane/grpc";
import { registerActionCommands } from "./commands/action.js";
import { registerAgentCommands } from "./commands/agent.js";
import { registerMemberCommands } from "./commands/member.js";
import { registerProfileCommands } from "./commands/profile.js";
import { registerRuntimeCommands } from "./commands/runtime.js";
import { registerTaskCommands } from "./commands/task.js";
import { registerTokenCommands } from "./commands/token.js";
import { registerWorkspaceCommands } from "./commands/workspace.js";
import { context, program } from "./program.js";

registerWorkspaceCommands(program);
registerMemberCommands(program);
registerTokenCommands(program);
registerProfileCommands(program);
registerRuntimeCommands(program);
registerAgentCommands(program);
registerTaskCommands(program);
registerActionCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const { addresses } = context();
  if (hasCode(error, status.UNAVAILABLE)) {
    process.stderr.write(
      `cpctl: service unavailable (registry ${addresses.registry}, profiles ${addresses.profiles}, tasks ${addresses.tasks}): ${error.details}\n`,
    );
  } else if (isServiceError(error)) {
    process.stderr.write(`cpctl: ${error.details}\n`);
  } else {
    process.stderr.write(`cpctl: ${(error as Error).message}\n`);
  }
  process.exitCode = 1;
}

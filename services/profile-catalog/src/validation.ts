import { InvalidArgumentError } from "@controlplane/grpc";
import { isProtocolFamily, UNSUPPORTED_PROTOCOL_FAMILY } from "./protocol-families.js";

/** The contract's messages, in one place. */
export const MESSAGES = {
  displayNameRequired: "display_name is required",
  displayNameEmpty: "display_name cannot be empty",
  commandNameRequired: "command_name is required",
  commandNameEmpty: "command_name cannot be empty",
  unsupportedFamily: UNSUPPORTED_PROTOCOL_FAMILY,
  badVisibility: "visibility must be 'workspace' or 'private'",
  blankFixedArg: "fixed_args entries must be non-empty",
  duplicateName: "a runtime profile with this display_name already exists",
  notFound: "runtime profile not found",
  agentsBound: "cannot delete runtime profile: active agents are still bound to its runtimes",
} as const;

export interface ProfileDraft {
  displayName: string;
  protocolFamily: string;
  commandName: string;
  description: string | null;
  fixedArgs: string[];
  visibility: "workspace" | "private";
  enabled: boolean;
}

export interface CreateInput {
  displayName: string;
  protocolFamily: string;
  commandName: string;
  description?: string;
  fixedArgs: string[];
  visibility: string;
  enabled?: boolean;
}

/**
 * Validates a create request in the contract's order and returns what is
 * stored: names and visibility trimmed, fixed_args kept as sent.
 */
export function validateCreate(input: CreateInput): ProfileDraft {
  const displayName = input.displayName.trim();
  if (!displayName) throw new InvalidArgumentError(MESSAGES.displayNameRequired);
  const protocolFamily = input.protocolFamily.trim();
  if (!isProtocolFamily(protocolFamily)) throw new InvalidArgumentError(MESSAGES.unsupportedFamily);
  const commandName = input.commandName.trim();
  if (!commandName) throw new InvalidArgumentError(MESSAGES.commandNameRequired);
  const visibility = parseVisibility(input.visibility.trim() || "workspace");
  return {
    displayName,
    protocolFamily,
    commandName,
    description: input.description ?? null,
    fixedArgs: validateFixedArgs(input.fixedArgs),
    visibility,
    enabled: input.enabled ?? true,
  };
}

export interface UpdateInput {
  displayName?: string;
  commandName?: string;
  description?: string;
  fixedArgs?: string[];
  visibility?: string;
  enabled?: boolean;
}

export type ProfilePatch = Partial<Omit<ProfileDraft, "protocolFamily" | "description">> & { description?: string };

/** Validates a partial update: only present fields are checked and changed. */
export function validateUpdate(input: UpdateInput): ProfilePatch {
  const patch: ProfilePatch = {};
  if (input.displayName !== undefined) {
    patch.displayName = input.displayName.trim();
    if (!patch.displayName) throw new InvalidArgumentError(MESSAGES.displayNameEmpty);
  }
  if (input.commandName !== undefined) {
    patch.commandName = input.commandName.trim();
    if (!patch.commandName) throw new InvalidArgumentError(MESSAGES.commandNameEmpty);
  }
  if (input.description !== undefined) patch.description = input.description;
  if (input.fixedArgs !== undefined) patch.fixedArgs = validateFixedArgs(input.fixedArgs);
  // Unlike create, an empty visibility is rejected rather than defaulted.
  if (input.visibility !== undefined) patch.visibility = parseVisibility(input.visibility.trim());
  if (input.enabled !== undefined) patch.enabled = input.enabled;
  return patch;
}

function parseVisibility(value: string): "workspace" | "private" {
  if (value === "workspace" || value === "private") return value;
  throw new InvalidArgumentError(MESSAGES.badVisibility);
}

function validateFixedArgs(args: string[]): string[] {
  if (args.some((arg) => arg.trim() === "")) throw new InvalidArgumentError(MESSAGES.blankFixedArg);
  return args;
}

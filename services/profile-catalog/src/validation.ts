import { InvalidArgumentError } from "@controlplane/grpc";
import { LIMITS } from "@controlplane/config";
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
  // Bounds of what is stored (not in the original contract; checked after all of its checks).
  displayNameTooLong: "display_name too long",
  commandNameTooLong: "command_name too long",
  descriptionTooLong: "description too long",
  tooManyFixedArgs: "too many fixed_args",
  fixedArgTooLong: "fixed_args entry too long",
  fixedArgsTooLong: "fixed_args too long",
  nul: (field: string) => `${field} must not contain NUL characters`,
} as const;

/**
 * All fixed args together, in UTF-16 code units. Each arg alone may be a
 * path (PATH_CHARS), but 64 of them at that length would make the profile,
 * and so its profile.created/updated event, as large as ~800 KB of UTF-8,
 * past the outbox's 512 KiB event limit. With this cap a profile is at most
 * ~82 K code units (~250 KB of UTF-8 at worst).
 */
export const FIXED_ARGS_TOTAL_CHARS = 65_536;

/** Postgres text cannot hold U+0000. */
const NUL = "\u0000";

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
  const draft: ProfileDraft = {
    displayName,
    protocolFamily,
    commandName,
    description: input.description ?? null,
    fixedArgs: validateFixedArgs(input.fixedArgs),
    visibility,
    enabled: input.enabled ?? true,
  };
  requireStorable(draft);
  return draft;
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
  requireStorable(patch);
  return patch;
}

/**
 * The bounds on what is stored, for every caller (the gateway checks the
 * same LIMITS at the edge; internal gRPC callers meet them here). Run after
 * the contract's own checks, so any request the contract refuses still gets
 * the contract's message.
 */
function requireStorable(fields: Pick<ProfilePatch, "displayName" | "commandName" | "fixedArgs"> & { description?: string | null }): void {
  requireText("display_name", fields.displayName, LIMITS.NAME_CHARS, MESSAGES.displayNameTooLong);
  requireText("command_name", fields.commandName, LIMITS.NAME_CHARS, MESSAGES.commandNameTooLong);
  requireText("description", fields.description, LIMITS.DESCRIPTION_CHARS, MESSAGES.descriptionTooLong);
  if (fields.fixedArgs !== undefined) requireStorableArgs(fields.fixedArgs);
}

function requireStorableArgs(args: readonly string[]): void {
  if (args.length > LIMITS.FIXED_ARGS) throw new InvalidArgumentError(MESSAGES.tooManyFixedArgs);
  let total = 0;
  for (const arg of args) {
    requireText("fixed_args", arg, LIMITS.PATH_CHARS, MESSAGES.fixedArgTooLong);
    total += arg.length;
  }
  if (total > FIXED_ARGS_TOTAL_CHARS) throw new InvalidArgumentError(MESSAGES.fixedArgsTooLong);
}

function requireText(field: string, value: string | null | undefined, max: number, tooLong: string): void {
  if (value === undefined || value === null) return;
  if (value.length > max) throw new InvalidArgumentError(tooLong);
  if (value.includes(NUL)) throw new InvalidArgumentError(MESSAGES.nul(field));
}

function parseVisibility(value: string): "workspace" | "private" {
  if (value === "workspace" || value === "private") return value;
  throw new InvalidArgumentError(MESSAGES.badVisibility);
}

function validateFixedArgs(args: string[]): string[] {
  if (args.some((arg) => arg.trim() === "")) throw new InvalidArgumentError(MESSAGES.blankFixedArg);
  return args;
}

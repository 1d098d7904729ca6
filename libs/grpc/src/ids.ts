import { parseUuid } from "@controlplane/ids";
import { InvalidArgumentError } from "./errors.js";

/**
 * A UUID argument of an RPC in its canonical form (the contract's parsing:
 * hyphenated or 32 bare hex, either case), or INVALID_ARGUMENT
 * "invalid <field>", the text every service answers for a malformed id.
 */
export function requireUuid(value: string, field: string): string {
  const id = parseUuid(value);
  if (!id) throw new InvalidArgumentError(`invalid ${field}`);
  return id;
}

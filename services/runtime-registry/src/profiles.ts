import { requireUuid } from "./workspaces.js";

/**
 * Removes the runtime rows registered for a profile. Runtimes are not stored
 * yet (they arrive with daemon registration), so there is never an agent bound
 * and nothing to remove; the contract of the RPC is already the final one.
 */
export async function detachProfile(workspaceId: string, profileId: string): Promise<number> {
  requireUuid(workspaceId, "workspace_id");
  requireUuid(profileId, "profile_id");
  return 0;
}

import { sha256Hex } from "@controlplane/auth";

export interface Repo {
  url: string;
  description: string;
}

/**
 * The workspace repos as daemons get them: urls trimmed, empty urls dropped,
 * exact duplicates dropped (first wins), descriptions untouched. Anything in
 * the column that is not an array of objects counts as no repos.
 */
export function normalizeRepos(raw: unknown): Repo[] {
  if (!Array.isArray(raw)) return [];
  const seen = new Set<string>();
  const repos: Repo[] = [];
  for (const item of raw) {
    if (typeof item !== "object" || item === null) continue;
    const { url, description } = item as { url?: unknown; description?: unknown };
    const trimmed = typeof url === "string" ? url.trim() : "";
    if (!trimmed || seen.has(trimmed)) continue;
    seen.add(trimmed);
    repos.push({ url: trimmed, description: typeof description === "string" ? description : "" });
  }
  return repos;
}

/** Repos exactly as stored, for the claim answer (which is not normalised). */
export function rawRepos(raw: unknown): Repo[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((item): item is { url?: unknown; description?: unknown } => typeof item === "object" && item !== null)
    .map((item) => ({
      url: typeof item.url === "string" ? item.url : "",
      description: typeof item.description === "string" ? item.description : "",
    }));
}

/**
 * SHA-256 hex of the non-empty urls sorted byte-wise and joined by "\n": it
 * ignores order and descriptions and changes whenever the URL set does.
 */
export function reposVersion(repos: Repo[]): string {
  const urls = repos.map((repo) => repo.url).filter((url) => url !== "");
  urls.sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
  return sha256Hex(urls.join("\n"));
}

import { readFileSync, writeFileSync } from "node:fs";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g;

/**
 * Makes a body comparable across runs: named ids become their names, other
 * UUIDs `<uuid-N>` in order of first appearance, timestamps `<time>`.
 * Everything else, byte for byte, is compared.
 */
export function normalize(body: string, names: Record<string, string> = {}): string {
  const seen = new Map<string, string>(Object.entries(names).map(([name, id]) => [id, `<${name}>`]));
  return body
    .replace(UUID, (id) => {
      if (!seen.has(id)) seen.set(id, `<uuid-${seen.size - Object.keys(names).length + 1}>`);
      return seen.get(id)!;
    })
    .replace(TIME, "<time>");
}

/** The golden file's text; UPDATE_GOLDEN=1 rewrites it from `actual` instead. */
export function golden(path: URL, actual: string): string {
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(path, actual);
  return readFileSync(path, "utf8");
}

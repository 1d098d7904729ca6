import type { FastifyRequest } from "fastify";
import { HttpError } from "./errors.js";

/**
 * Two daemon generations talk to the gateway. Today's daemon (HEAD
 * 1cc46b2697) sends `X-Client-Capabilities` on every request; the seed-era
 * daemon never sends it. Where the two expect different bytes from the same
 * route (register's runtime objects, its metadata and its empty-list
 * refusal), the header's presence decides, so nothing a seed-era daemon sees
 * changes.
 */
export type ClientEra = "seed" | "today";

/** Most capabilities a request may advertise (today's daemon sends 7). */
export const MAX_CAPABILITIES = 64;
/** Longest capability name. */
const MAX_CAPABILITY_CHARS = 255;

export function clientEra(request: FastifyRequest): ClientEra {
  return request.headers["x-client-capabilities"] === undefined ? "seed" : "today";
}

/**
 * The advertised capabilities, trimmed, blanks dropped, in the order sent
 * (several header lines read as one comma-separated list); undefined when the
 * header is absent. Past our bounds: 400.
 */
export function clientCapabilities(request: FastifyRequest): string[] | undefined {
  const header = request.headers["x-client-capabilities"];
  if (header === undefined) return undefined;
  const names = (Array.isArray(header) ? header.join(",") : header)
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  if (names.length > MAX_CAPABILITIES) throw new HttpError(400, `x-client-capabilities: too many entries (at most ${MAX_CAPABILITIES})`);
  if (names.some((name) => name.length > MAX_CAPABILITY_CHARS)) {
    throw new HttpError(400, `x-client-capabilities: too long (at most ${MAX_CAPABILITY_CHARS} characters)`);
  }
  return names;
}

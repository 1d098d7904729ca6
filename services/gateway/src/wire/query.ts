/**
 * A request's query as fastify parses it: one string per parameter, an
 * array of them for a parameter sent more than once.
 */
export type Query = Record<string, string | string[] | undefined>;

/** Go's Query().Get: the first value of a repeated parameter. */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A parameter the gateway reads as one string: a repeated one reads as its
 * values joined with commas, as reading the parsed query as a string always
 * did. No id, number or slug the gateway accepts has a comma, so a repeated
 * parameter is refused as an invalid value would be.
 */
export function joinedValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

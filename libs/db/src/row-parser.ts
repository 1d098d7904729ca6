import { z } from "zod";

/**
 * Parses a database row with a zod object schema, the way `schema.parse`
 * would, but without zod's per-field machinery when it can: task rows carry
 * 35 columns and are read three times a cycle, and zod's parse of them was a
 * visible share of a cycle's CPU.
 *
 * A schema made only of plain fields (string, number, boolean, date, enum,
 * array of strings, record of unknowns, unknown, and their nullable forms,
 * with no checks, defaults or transforms) is compiled once into a list of
 * type tests. A row that passes them all comes back as a new object with the
 * schema's keys in the schema's order (unknown keys stripped, as zod does);
 * values are the row's own (zod would copy dates, arrays and records; rows
 * are fresh objects from the driver, so nothing else holds them). Anything
 * else, a row that fails a test or a schema with other kinds of fields, goes
 * to zod itself, so errors and every other behaviour stay zod's.
 */
export function parseRow<S extends z.ZodTypeAny>(schema: S, row: unknown): z.infer<S> {
  const parsed = compiledParser(schema)?.(row);
  return parsed !== undefined ? (parsed as z.infer<S>) : schema.parse(row);
}

/** `parseRow` with zod's safeParse contract, for callers that build their own error. */
export function safeParseRow<S extends z.ZodTypeAny>(schema: S, row: unknown): z.SafeParseReturnType<unknown, z.infer<S>> {
  const parsed = compiledParser(schema)?.(row);
  return parsed !== undefined ? { success: true, data: parsed as z.infer<S> } : schema.safeParse(row);
}

type Test = (value: unknown) => boolean;
type Parser = (row: unknown) => Record<string, unknown> | undefined;

/** Compiled parsers by schema; null when the schema has a field they cannot test. */
const parsers = new WeakMap<z.ZodTypeAny, Parser | null>();

function compiledParser(schema: z.ZodTypeAny): Parser | null {
  let parser = parsers.get(schema);
  if (parser === undefined) {
    parser = compile(schema);
    parsers.set(schema, parser);
  }
  return parser;
}

function compile(schema: z.ZodTypeAny): Parser | null {
  // Only the default object: unknown keys stripped, no catchall, no refinements around it.
  if (!(schema instanceof z.ZodObject) || schema._def.unknownKeys !== "strip" || !(schema._def.catchall instanceof z.ZodNever)) return null;
  const shape = schema.shape as Record<string, z.ZodTypeAny>;
  const keys = Object.keys(shape);
  const tests: Test[] = [];
  for (const key of keys) {
    const field = shape[key];
    const test = field ? testOf(field) : null;
    if (!test) return null;
    tests.push(test);
  }
  return (row) => {
    if (typeof row !== "object" || row === null) return undefined;
    const source = row as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      const value = source[key];
      if (!(tests[i] as Test)(value)) return undefined;
      // As zod: a key the row lacks (only an unknown field may) stays absent.
      if (value !== undefined || key in source) out[key] = value;
    }
    return out;
  };
}

const isString: Test = (value) => typeof value === "string";
const isNumber: Test = (value) => typeof value === "number" && !Number.isNaN(value);
const isBoolean: Test = (value) => typeof value === "boolean";
const isDate: Test = (value) => value instanceof Date && !Number.isNaN(value.getTime());
const isStringArray: Test = (value) => Array.isArray(value) && value.every((item) => typeof item === "string");
/** What zod calls an object: not an array, a date, a map, a set or a promise. */
const isPlainRecord: Test = (value) =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  !(value instanceof Date) &&
  !(value instanceof Map) &&
  !(value instanceof Set) &&
  !(value instanceof Promise);
const anything: Test = () => true;

/** The test of one field, or null when only zod can parse it. */
function testOf(field: z.ZodTypeAny): Test | null {
  if (field instanceof z.ZodNullable) {
    const inner = testOf(field.unwrap());
    return inner && ((value) => value === null || inner(value));
  }
  // Checks (min, max, int, email, ...) are zod's to apply.
  if (field instanceof z.ZodString) return field._def.checks.length === 0 && !field._def.coerce ? isString : null;
  if (field instanceof z.ZodNumber) return field._def.checks.length === 0 && !field._def.coerce ? isNumber : null;
  if (field instanceof z.ZodBoolean) return !field._def.coerce ? isBoolean : null;
  if (field instanceof z.ZodDate) return field._def.checks.length === 0 && !field._def.coerce ? isDate : null;
  if (field instanceof z.ZodEnum) {
    const values = new Set<unknown>(field.options as readonly unknown[]);
    return (value) => values.has(value);
  }
  if (field instanceof z.ZodArray) {
    const { minLength, maxLength, exactLength } = field._def;
    return field.element instanceof z.ZodString && field.element._def.checks.length === 0 && !minLength && !maxLength && !exactLength ? isStringArray : null;
  }
  if (field instanceof z.ZodRecord) {
    // Keys are strings already; only values anything goes for are left unchecked.
    return field.keySchema instanceof z.ZodString && field.keySchema._def.checks.length === 0 && field.valueSchema instanceof z.ZodUnknown
      ? isPlainRecord
      : null;
  }
  if (field instanceof z.ZodUnknown || field instanceof z.ZodAny) return anything;
  return null;
}

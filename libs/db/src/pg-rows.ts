import pg from "pg";

/**
 * pg builds, for every statement it runs, an empty row from the statement's
 * columns (a null-prototype object turned into a plain one), which every row
 * of the result is then copied from. For a task row's 35 columns that costs
 * tens of microseconds a statement, and the column names, fresh strings from
 * each RowDescription message, make every keyed store of every row look its
 * name up again. Three such statements a task cycle made it the largest
 * single function of the Postgres client in the profile.
 *
 * `installRowTemplateCache` keeps pg's own code for everything but that
 * step: a statement whose column names were seen before reuses the empty
 * row made then, and its field descriptions get the names that row was made
 * with (equal strings, already the object's keys). Rows come out as pg makes
 * them (own keys in column order, a later duplicate name winning, a column
 * named `__proto__` an own key); only the work per statement is gone.
 * Installed only if pg's Result still works the way this relies on, checked
 * on a sample; otherwise pg is left as it is.
 */
export function installRowTemplateCache(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  const Result = (pg as unknown as { Result?: ResultClass }).Result;
  if (!Result || !worksAsExpected(Result)) return false;
  Result.prototype.addFields = function addFieldsWithCachedTemplate(this: ResultLike, fields: FieldDescription[]) {
    this.fields = fields;
    this._parsers = new Array(fields.length);
    let key = "";
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i] as FieldDescription;
      key += `${field.name}\u0000`;
      this._parsers[i] = (this._types ?? (pg.types as TypeSource)).getTypeParser(field.dataTypeID, field.format || "text");
    }
    const template = templateFor(key, fields);
    if (template.names) for (let i = 0; i < fields.length; i++) (fields[i] as FieldDescription).name = template.names[i] as string;
    this._prebuiltEmptyResultObject = template.row;
  };
  installed = true;
  return true;
}

let installed: boolean | undefined;

interface FieldDescription {
  name: string;
  dataTypeID: number;
  format?: string;
}
type TypeSource = { getTypeParser(oid: number, format: string): (value: unknown) => unknown };
interface ResultLike {
  fields: FieldDescription[];
  _parsers: Array<(value: unknown) => unknown>;
  _types?: TypeSource;
  _prebuiltEmptyResultObject: Record<string, null>;
  addFields(fields: FieldDescription[]): void;
  parseRow(values: unknown[]): Record<string, unknown>;
}
type ResultClass = { new (rowMode?: string, types?: unknown): ResultLike; prototype: ResultLike };

interface Template {
  /** The empty row, shared: pg only ever copies from it. */
  row: Record<string, null>;
  /** Its keys, one per column, when no name repeats (otherwise names are left as they came). */
  names: string[] | undefined;
}

/** Templates by their columns' names; statements are a fixed set, so this stays small. */
const templates = new Map<string, Template>();
const MAX_TEMPLATES = 1_000;

function templateFor(key: string, fields: FieldDescription[]): Template {
  let template = templates.get(key);
  if (!template) {
    // As pg makes it: defined keys (CreateDataProperty), so `__proto__` is an own key; a later duplicate wins.
    const row = Object.fromEntries(fields.map((field) => [field.name, null])) as Record<string, null>;
    const names = Object.keys(row);
    template = { row, names: names.length === fields.length ? names : undefined };
    // Ad-hoc statements with ever-new column lists must not grow it without end.
    if (templates.size >= MAX_TEMPLATES) templates.clear();
    templates.set(key, template);
  }
  return template;
}

/** pg's Result reads its fields, parsers and template where this module puts them. */
function worksAsExpected(Result: ResultClass): boolean {
  try {
    const sample = new Result();
    if (typeof sample.addFields !== "function" || typeof sample.parseRow !== "function") return false;
    sample.addFields([
      { name: "a", dataTypeID: 25, format: "text" },
      { name: "b", dataTypeID: 25, format: "text" },
    ]);
    if (!sample._prebuiltEmptyResultObject || !Array.isArray(sample._parsers)) return false;
    // A row built from our template only: pg's parseRow must take it from where we put it.
    sample._prebuiltEmptyResultObject = { a: null, b: null, c: null };
    const row = sample.parseRow(["1", null]);
    return row.a === "1" && row.b === null && "c" in row;
  } catch {
    return false;
  }
}

// The stack's mappings as the function follows them (docs/mappings.md, "How it reaches Bubble"): which mapping
// a queue row follows, and how a mapped row's payload becomes Bubble's fields. config.ts reads the mappings
// from BUBBLE_SYNC_MAPPINGS (the list of components/mappings.py Mapping.definition()) and checks them.
//
// A row follows the mapping whose `table` is its table_name; a row of a table no mapping names goes the way a
// stack without mappings sends it: to BUBBLE_DATA_TYPE, its payload as queued, its key in
// BUBBLE_EXTERNAL_KEY_FIELD. A mapped row's payload holds the mapped columns by column name, with values the
// database already converted for Bubble; here each becomes its field, and a `ref` column, which holds the key
// of the record it names, becomes a reference that references.ts turns into that record's Bubble id.

import type { RecordKey } from "./queue.ts";

/** One entry of a mapping's `fields`: a source column and the Bubble field it fills. */
export interface FieldMapping {
  column: string;
  field: string;
  /** The name of the mapping whose record the column holds the key of (a relation field); null: a value. */
  ref: string | null;
  /** That mapping's table (its rows' table_name); set whenever `ref` is. */
  refTable: string | null;
}

/** What a DELETE of a source row does in Bubble. */
export type OnDelete =
  | { action: "delete" }
  | { action: "ignore" }
  | { action: "set"; fields: Record<string, unknown> };

/** One mapping, as Mapping.definition() writes it (camelCase). */
export interface Mapping {
  name: string;
  /** The source table, as PostgreSQL names it (for messages only). */
  schema: string | null;
  sourceTable: string | null;
  /** How sync_queue.table_name names the table: `profiles`, or `auth.users` outside public. */
  table: string;
  /** The column whose value, as text, is a row's record_id. */
  key: string;
  dataType: string;
  /** The Bubble field holding the stable key, `<table>:<record id>`. */
  keyField: string;
  fields: FieldMapping[];
  where: string | null;
  operations: string[];
  onDelete: OnDelete;
}

/** Where a row goes in Bubble: a data type, the field its stable key is in, and the mapping it follows. */
export interface Target {
  dataType: string;
  keyField: string;
  /** null: a table no mapping names, sent as a stack without mappings sends it. */
  mapping: Mapping | null;
}

/** The mappings by table, and the target of the tables none names. */
export class Mappings {
  private readonly byTable = new Map<string, Target>();
  private readonly legacy: Target;

  constructor(mappings: readonly Mapping[], legacy: { dataType: string; keyField: string }) {
    for (const mapping of mappings) {
      this.byTable.set(mapping.table, { dataType: mapping.dataType, keyField: mapping.keyField, mapping });
    }
    this.legacy = { ...legacy, mapping: null };
  }

  /** The target of a row of `tableName`. */
  targetFor(tableName: string): Target {
    return this.byTable.get(tableName) ?? this.legacy;
  }

  /** The mapping of `table`; undefined when none names it. */
  mappingFor(table: string): Mapping | undefined {
    return this.byTable.get(table)?.mapping ?? undefined;
  }
}

/** A `ref` field of a row: the record it names, to be replaced by that record's Bubble id. */
export interface Reference {
  column: string;
  field: string;
  /** The mapping the referenced record follows (where it is looked up in Bubble). */
  mapping: Mapping;
  record: RecordKey;
}

export type Shaped =
  | { ok: true; fields: Record<string, unknown>; references: Reference[] }
  | { ok: false; error: string };

/**
 * A mapped row's payload as Bubble's fields: each mapped column the payload has, under its field (columns the
 * mapping does not name are dropped; a column missing from the payload is not sent). A null stays null here
 * (a modify sends it, emptying the field; a create leaves it out: withoutNulls). A ref column's value is the
 * referenced record's key, a string or a number: a Reference, its field filled in once resolved; a null ref
 * empties the field like any null. A JSON object has no Bubble field type to take it: an error naming the
 * column, for the row to fail with (never the value).
 */
export function shapeFields(
  payload: Record<string, unknown>,
  mapping: Mapping,
  mappings: Mappings,
): Shaped {
  const fields: Record<string, unknown> = {};
  const references: Reference[] = [];
  for (const { column, field, ref, refTable } of mapping.fields) {
    if (!Object.hasOwn(payload, column)) continue;
    const value = payload[column];
    const what = `column ${column} (field ${JSON.stringify(field)})`;
    if (isObject(value) || (Array.isArray(value) && value.some(isObject))) {
      return {
        ok: false,
        error:
          `${what} holds a JSON object, which no Bubble field takes (map a column that casts it instead)`,
      };
    }
    if (ref === null || refTable === null || value === null) {
      fields[field] = value;
      continue;
    }
    const target = mappings.mappingFor(refTable);
    if (target === undefined) {
      // config.ts refuses a ref to a table no mapping names, so this is only a safeguard
      return {
        ok: false,
        error: `${what} refers to mapping ${ref}, which BUBBLE_SYNC_MAPPINGS does not hold`,
      };
    }
    if (typeof value !== "string" && !(typeof value === "number" && Number.isFinite(value))) {
      const got = Array.isArray(value) ? "a list" : `a ${typeof value}`;
      return {
        ok: false,
        error: `${what} refers to a ${ref} record: it must hold that record's key (a string or a number), ` +
          `got ${got}`,
      };
    }
    references.push({ column, field, mapping: target, record: { table: refTable, recordId: String(value) } });
  }
  return { ok: true, fields, references };
}

function isObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The fields a create sends: a null leaves the Bubble field empty, so it is left out. */
export function withoutNulls(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null));
}

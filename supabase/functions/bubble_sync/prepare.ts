// A claimed row checked and turned into what Bubble gets, before anything is sent: its operation, where it goes
// (its mapping's data type and key field, or BUBBLE_DATA_TYPE for a table no mapping names: mapping.ts), its
// stable key, and its fields. A row that can never be sent gets its verdict here instead, without a request.

import { isBackfill } from "./backfill.ts";
import { type Mappings, type Reference, shapeFields, type Target, withoutNulls } from "./mapping.ts";
import type { QueueRow } from "./queue.ts";
import { permanent, type Verdict } from "./verdicts.ts";

const MAX_PAYLOAD_BYTES = 1024 * 1024;
const encoder = new TextEncoder();

/** A row ready to be sent. */
export interface Prepared {
  row: QueueRow;
  /** A backfilled row is a create (INSERT), looked up in Bubble before it is sent (backfill.ts). */
  operation: "INSERT" | "UPDATE" | "DELETE";
  /** The record's stable key in Bubble, `<table_name>:<record_id>`, held in the target's key field. */
  key: string;
  target: Target;
  /**
   * What a create or a modify sends: a mapped row's fields renamed from its columns (nulls kept: createFields
   * leaves them out), or an unmapped row's payload as queued; the key field added. Its references' fields are
   * filled in once resolved (references.ts). Empty for a DELETE.
   */
  fields: Record<string, unknown>;
  references: Reference[];
}

/** Checks a row's operation and payload, and shapes its fields; a verdict when the row cannot be sent at all. */
export function prepare(row: QueueRow, mappings: Mappings): Prepared | Verdict {
  const operation = isBackfill(row) ? "INSERT" : row.operation.toUpperCase();
  if (operation !== "INSERT" && operation !== "UPDATE" && operation !== "DELETE") {
    const name = JSON.stringify(row.operation);
    return permanent(
      `unknown operation ${name}: bubble_sync sends INSERT (create), UPDATE (modify) and DELETE`,
    );
  }
  const payload = row.payload;
  // A delete needs only the record's key: its payload (the old row) is not sent.
  if (
    operation !== "DELETE" && (typeof payload !== "object" || payload === null || Array.isArray(payload))
  ) {
    const what = payload === null ? "null" : Array.isArray(payload) ? "an array" : typeof payload;
    return permanent(`payload must be a JSON object of Bubble fields, got ${what}`);
  }
  // The external key is what makes a retry find the record instead of creating a second one: without
  // both parts every such row would share one key (an adopted table's columns may be nullable).
  if (!row.table_name || !row.record_id) {
    const missing = !row.table_name ? "table_name" : "record_id";
    return permanent(`${missing} is empty: without it the row has no stable key in Bubble`);
  }
  const key = `${row.table_name}:${row.record_id}`;
  const target = mappings.targetFor(row.table_name);
  if (operation === "DELETE") return { row, operation, key, target, fields: {}, references: [] };
  let fields = payload as Record<string, unknown>;
  let references: Reference[] = [];
  if (target.mapping !== null) {
    const shaped = shapeFields(fields, target.mapping, mappings);
    if (!shaped.ok) return permanent(shaped.error);
    ({ fields, references } = shaped);
  }
  fields = { ...fields, [target.keyField]: key };
  const bytes = encoder.encode(JSON.stringify(fields)).length;
  if (bytes > MAX_PAYLOAD_BYTES) {
    return permanent(
      `payload is ${bytes} bytes, more than the ${MAX_PAYLOAD_BYTES} bytes bubble_sync sends`,
    );
  }
  return { row, operation, key, target, fields, references };
}

/**
 * The fields a create sends: a mapped row's null leaves the Bubble field empty, so it is left out; an unmapped
 * row's payload goes as queued.
 */
export function createFields(item: Prepared): Record<string, unknown> {
  return item.target.mapping === null ? item.fields : withoutNulls(item.fields);
}

// Mappings for the bubble_sync tests, as components/mappings.py Mapping.definition() writes them (the
// function's BUBBLE_SYNC_MAPPINGS), and a setup whose function follows them.
//
//   users     public.profiles -> user, onDelete delete
//   listings  public.listings -> listing, host_id a reference to users, onDelete {set: {Archived: true}}
//   notes     app.notes       -> note, its key in "External ID", onDelete ignore

import type { HandlerDeps } from "../bubble_sync/handler.ts";
import { type Setup, setup } from "./fakes.ts";

export const USERS = {
  name: "users",
  schema: "public",
  sourceTable: "profiles",
  table: "profiles",
  key: "id",
  dataType: "user",
  keyField: "supabase_id",
  fields: [
    { column: "email", field: "email" },
    { column: "first_name", field: "First Name" },
    { column: "last_name", field: "Last Name" },
    { column: "created_at", field: "Joined" },
  ],
  where: "not is_test",
  operations: ["insert", "update", "delete"],
  onDelete: { action: "delete" },
};

export const LISTINGS = {
  name: "listings",
  schema: "public",
  sourceTable: "listings",
  table: "listings",
  key: "id",
  dataType: "listing",
  keyField: "supabase_id",
  fields: [
    { column: "title", field: "Title" },
    { column: "price", field: "Price" },
    { column: "tags", field: "Tags" },
    { column: "host_id", field: "Host", ref: "users", refTable: "profiles" },
  ],
  where: null,
  operations: ["insert", "update", "delete"],
  onDelete: { action: "set", fields: { Archived: true } },
};

export const NOTES = {
  name: "notes",
  schema: "app",
  sourceTable: "notes",
  table: "app.notes",
  key: "note_id",
  dataType: "note",
  keyField: "External ID",
  fields: [{ column: "body", field: "Body" }],
  where: null,
  operations: ["insert", "update", "delete"],
  onDelete: { action: "ignore" },
};

export const MAPPINGS = [USERS, LISTINGS, NOTES];

/** The handler under test with BUBBLE_SYNC_MAPPINGS set to `mappings` (the three above by default). */
export function mappedSetup(
  env: Record<string, string | undefined> = {},
  mappings: unknown = MAPPINGS,
  deps: Partial<HandlerDeps> = {},
): Setup {
  return setup({ BUBBLE_SYNC_MAPPINGS: JSON.stringify(mappings), ...env }, deps);
}

/** A listing's queue row: its payload as bubble_sync.mapped_payload converts it. */
export function listingRow(
  recordId: string,
  payload: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  return { table_name: "listings", record_id: recordId, payload, ...extra };
}

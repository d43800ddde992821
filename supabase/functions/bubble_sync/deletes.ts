// Deletes (docs/mappings.md, "Deletes"): what a DELETE row does in Bubble, as its mapping's onDelete says.
//   delete  deletes the thing: by the Bubble id the database links the record to (the row's bubble_id), else
//           the thing found by the record's stable key. A 404 means it is gone already, and a record Bubble
//           never had has nothing to delete: both complete, the note in the row's error_message saying so.
//   set     modifies the thing instead (a soft delete, say {"Archived": true}), found the same way.
//   ignore  completes the row without a request.
// A row of a table no mapping names is deleted the same way, in BUBBLE_DATA_TYPE by BUBBLE_EXTERNAL_KEY_FIELD.
// A delete comes after the record's earlier changes (bubble_sync.claim keeps each record's rows in order).
// The delete of a duplicate (`reconcile --repair --delete-duplicates`, bubble_sync.enqueue_delete_duplicate)
// names the extra thing in its payload, {"bubble_sync_duplicate": <id>}: that thing is deleted whatever onDelete
// says, unless it is the one the record is linked to now (the row's bubble_id, filled in by the claim).

import type { BubbleClient } from "./bubble.ts";
import type { OnDelete, Target } from "./mapping.ts";
import type { QueueRow } from "./queue.ts";
import { failedWith, permanent, type Verdict } from "./verdicts.ts";

/** What syncDelete needs of a prepared row. */
export interface DeleteItem {
  row: QueueRow;
  /** The record's stable key, `<table>:<record id>`. */
  key: string;
  target: Target;
}

export const IGNORED = "onDelete ignore: nothing sent";

/** The payload key of a duplicate's delete (sql/functions/enqueue.sql, enqueue_delete_duplicate). */
export const DUPLICATE_KEY = "bubble_sync_duplicate";

/** The Bubble id of the extra thing a DELETE row deletes, or null for a delete of the record's own thing. */
export function duplicateOf(row: QueueRow): string | null {
  const payload = row.payload;
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return null;
  const id = (payload as Record<string, unknown>)[DUPLICATE_KEY];
  return typeof id === "string" && id !== "" ? id : null;
}

/** Applies a DELETE row in Bubble; its verdict. */
export async function syncDelete(
  item: DeleteItem,
  bubble: Pick<BubbleClient, "findOne" | "delete" | "modify">,
): Promise<Verdict> {
  const duplicate = duplicateOf(item.row);
  if (duplicate !== null) return deleteDuplicate(item, duplicate, bubble);
  const onDelete: OnDelete = item.target.mapping?.onDelete ?? { action: "delete" };
  if (onDelete.action === "ignore") return { kind: "complete", bubbleId: null, note: IGNORED };
  const { dataType, keyField } = item.target;
  const nothing = onDelete.action === "set" ? "nothing to update" : "nothing to delete";
  let bubbleId = item.row.bubble_id;
  if (bubbleId === null) {
    const found = await bubble.findOne(dataType, keyField, item.key);
    if (!found.ok) {
      return failedWith(found, `looking up the thing to ${onDelete.action === "set" ? "update" : "delete"}`);
    }
    if (found.thing === null) {
      return {
        kind: "complete",
        bubbleId: null,
        note: `Bubble never had ${dataType} ${item.key}: ${nothing}`,
      };
    }
    bubbleId = String(found.thing._id);
    if (found.thing[keyField] !== item.key) {
      // A search that ignored its constraint: whatever it answered, it is not this record's thing.
      const key = JSON.stringify(item.key);
      return permanent(
        `the search for ${keyField} = ${key} answered ${dataType} ${bubbleId}, which does not carry that ` +
          "key: nothing was changed",
      );
    }
  }
  if (onDelete.action === "set") {
    const modified = await bubble.modify(dataType, bubbleId, onDelete.fields);
    if (modified.ok) return { kind: "complete", bubbleId };
    if (modified.status === 404) {
      return { kind: "complete", bubbleId, note: `Bubble ${dataType} ${bubbleId} is gone: ${nothing}` };
    }
    return failedWith(modified, `modifying ${bubbleId} (onDelete set)`);
  }
  const deleted = await bubble.delete(dataType, bubbleId);
  if (!deleted.ok) return failedWith(deleted, `deleting ${bubbleId}`);
  if (deleted.gone) {
    return {
      kind: "complete",
      bubbleId,
      note: `Bubble ${dataType} ${bubbleId} was already gone: ${nothing}`,
    };
  }
  return { kind: "complete", bubbleId, deleted: true };
}

/** Deletes `duplicate`, an extra thing carrying the record's key; never the thing the record is linked to. */
async function deleteDuplicate(
  item: DeleteItem,
  duplicate: string,
  bubble: Pick<BubbleClient, "delete">,
): Promise<Verdict> {
  const { dataType } = item.target;
  if (duplicate === item.row.bubble_id) {
    return {
      kind: "complete",
      bubbleId: null,
      note:
        `Bubble ${dataType} ${duplicate} is the thing ${item.key} is linked to now, not a duplicate: kept`,
    };
  }
  const deleted = await bubble.delete(dataType, duplicate);
  if (!deleted.ok) return failedWith(deleted, `deleting duplicate ${duplicate}`);
  if (deleted.gone) {
    return {
      kind: "complete",
      bubbleId: duplicate,
      note: `Bubble ${dataType} ${duplicate}, a duplicate of ${item.key}, was already gone`,
    };
  }
  return { kind: "complete", bubbleId: duplicate, deleted: true };
}

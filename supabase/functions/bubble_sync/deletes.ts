// Deletes (docs/mappings.md, "Deletes"): what a DELETE row does in Bubble, as its mapping's onDelete says.
//   delete  deletes the thing: by the Bubble id the database links the record to (the row's bubble_id), else
//           the thing found by the record's stable key. A 404 means it is gone already, and a record Bubble
//           never had has nothing to delete: both complete, the note in the row's error_message saying so.
//   set     modifies the thing instead (a soft delete, say {"Archived": true}), found the same way.
//   ignore  completes the row without a request.
// A row of a table no mapping names is deleted the same way, in BUBBLE_DATA_TYPE by BUBBLE_EXTERNAL_KEY_FIELD.
// A delete comes after the record's earlier changes (bubble_sync.claim keeps each record's rows in order).

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

/** Applies a DELETE row in Bubble; its verdict. */
export async function syncDelete(
  item: DeleteItem,
  bubble: Pick<BubbleClient, "findOne" | "delete" | "modify">,
): Promise<Verdict> {
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

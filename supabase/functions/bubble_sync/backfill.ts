// Backfilled rows: operation BACKFILL, queued by `python -m components backfill` for records that existed
// before the signup trigger (sql/functions/backfill.sql). Bubble may already have such a record: synced long
// ago (its completed row purged from the queue since), or a user made in Bubble itself with the same email. So
// nothing is created before it is looked for:
//   1. one search per group of up to 100 keys of one mapping (its data type and key field; BUBBLE_DATA_TYPE and
//      BUBBLE_EXTERNAL_KEY_FIELD for a table no mapping names), constraint `in` on the key field (search.ts);
//   2. a row whose key Bubble has is completed with that thing's id: linked, not created and not modified;
//   3. the rest are created with the bulk endpoint in their data type, whatever bubbleBulkCreate says (a lone row, or a run with
//      no time for a bulk call, with a plain create). A line Bubble refuses is sent again alone by the usual
//      path, which links a user whose email Bubble already has (row_sync.ts, recoverUsedEmail).
// A row whose search failed fails as the search did (a 5xx is retried, a 429 deferred) without a create sent.
// process.ts calls syncBackfills from one place, where a claimed batch is split (processBatch), and lends it
// its own ways to run, report and create (BackfillDeps), so a backfilled row is paced, handed back, reported
// and retried like any other.

import type { BubbleClient, Failure } from "./bubble.ts";
import type { Target } from "./mapping.ts";
import type { QueueRow } from "./queue.ts";
import { findByKeys, searchGroups } from "./search.ts";

/** The operation of a backfilled row (sql/queue_schema.sql, sync_queue_operation_valid). */
export const BACKFILL = "BACKFILL";

export function isBackfill(row: QueueRow): boolean {
  return row.operation.toUpperCase() === BACKFILL;
}

/**
 * What syncBackfills needs of a prepared row: its queue row, its stable key (`<table>:<record id>`), and where
 * it goes in Bubble (its mapping's data type and key field).
 */
export interface BackfillItem {
  row: QueueRow;
  key: string;
  target: Pick<Target, "dataType" | "keyField">;
}

/** How a run lends its machinery to syncBackfills. */
export interface BackfillDeps<T extends BackfillItem> {
  bubble: Pick<BubbleClient, "findIn" | "findOne">;
  /** The most lines a bulk call may carry now (process.ts: Bubble's limit, and what its timeout allows). */
  linesPerCall: number;
  /** Runs `work` for `items` in the run's pool, at their turn, or hands them back unsent (the run's gate). */
  schedule(items: T[], work: () => Promise<void>): void;
  /** Completes the row with the id of the thing Bubble already has (written now, or with the run's others). */
  link(item: T, bubbleId: string): void | Promise<void>;
  /** Fails the row as the search failed. */
  fail(item: T, failure: Failure): void | Promise<void>;
  /** Creates these rows' things (all of one data type) in one bulk call (process.ts, syncBulk). */
  createInBulk(items: T[]): Promise<void>;
  /** Creates this row's thing alone (process.ts, syncOne). */
  createOne(item: T): Promise<void>;
}

/**
 * Schedules the backfilled rows of a batch: per data type and key field, a search per group of keys, then the
 * creates.
 */
export function syncBackfills<T extends BackfillItem>(items: T[], deps: BackfillDeps<T>): void {
  const byTarget = new Map<string, T[]>();
  for (const item of items) {
    const target = JSON.stringify([item.target.dataType, item.target.keyField]);
    byTarget.set(target, [...byTarget.get(target) ?? [], item]);
  }
  for (const same of byTarget.values()) {
    for (const group of searchGroups(same, (item) => item.key)) {
      deps.schedule(group, () => lookUpThenCreate(group, deps));
    }
  }
}

async function lookUpThenCreate<T extends BackfillItem>(group: T[], deps: BackfillDeps<T>): Promise<void> {
  const { dataType, keyField } = group[0].target;
  const found = await findByKeys(deps.bubble, dataType, keyField, [
    ...new Set(group.map((item) => item.key)),
  ]);
  if (!found.ok) {
    await Promise.all(group.map((item) => deps.fail(item, found)));
    return;
  }
  const missing: T[] = [];
  const linked: (void | Promise<void>)[] = [];
  for (const item of group) {
    const bubbleId = found.ids.get(item.key);
    if (bubbleId === undefined) missing.push(item);
    else linked.push(deps.link(item, bubbleId));
  }
  if (missing.length >= 2 && deps.linesPerCall >= 2) {
    for (let i = 0; i < missing.length; i += deps.linesPerCall) {
      const chunk = missing.slice(i, i + deps.linesPerCall);
      deps.schedule(chunk, () => deps.createInBulk(chunk));
    }
  } else {
    for (const item of missing) deps.schedule([item], () => deps.createOne(item));
  }
  await Promise.all(linked);
}

// Backfilled rows: operation BACKFILL, queued by `python -m components backfill` for records that existed
// before the signup trigger (sql/functions/backfill.sql). Bubble may already have such a record: synced long
// ago (its completed row purged from the queue since), or a user made in Bubble itself with the same email. So
// nothing is created before it is looked for:
//   1. one search per group of up to 100 keys, constraint `in` on the external key field (the manual lists the
//      constraint type; an app that refuses it gets one `equals` search per key instead);
//   2. a row whose key Bubble has is completed with that thing's id: linked, not created and not modified;
//   3. the rest are created with the bulk endpoint, whatever bubbleBulkCreate says (a lone row, or a run with
//      no time for a bulk call, with a plain create). A line Bubble refuses is sent again alone by the usual
//      path, which links a user whose email Bubble already has (process.ts, recoverUsedEmail).
// A row whose search failed fails as the search did (a 5xx is retried, a 429 deferred) without a create sent.
// process.ts calls syncBackfills from one place, where a claimed batch is split (processBatch), and lends it
// its own ways to run, report and create (BackfillDeps), so a backfilled row is paced, handed back, reported
// and retried like any other.

import type { BubbleClient, Failure, Result } from "./bubble.ts";
import type { QueueRow } from "./queue.ts";

/** The operation of a backfilled row (sql/queue_schema.sql, sync_queue_operation_valid). */
export const BACKFILL = "BACKFILL";
/** Keys per search: one page of Bubble's answer, when each key names one thing. */
export const KEYS_PER_SEARCH = 100;
/**
 * The keys of one search, as JSON, at most this long: the search goes in the URL (about 1.3 times this once
 * encoded), and servers commonly refuse URLs past 8 KB. Bubble does not document its limit.
 */
export const MAX_SEARCH_KEY_CHARS = 5000;

export function isBackfill(row: QueueRow): boolean {
  return row.operation.toUpperCase() === BACKFILL;
}

/** What syncBackfills needs of a prepared row: its queue row and its external key (`<table>:<record id>`). */
export interface BackfillItem {
  row: QueueRow;
  key: string;
}

/** How a run lends its machinery to syncBackfills. */
export interface BackfillDeps<T extends BackfillItem> {
  bubble: Pick<BubbleClient, "findIn" | "findOne">;
  dataType: string;
  keyField: string;
  /** The most lines a bulk call may carry now (process.ts: Bubble's limit, and what its timeout allows). */
  linesPerCall: number;
  /** Runs `work` for `items` in the run's pool, at their turn, or hands them back unsent (the run's gate). */
  schedule(items: T[], work: () => Promise<void>): void;
  /** Completes the row with the id of the thing Bubble already has (written now, or with the run's others). */
  link(item: T, bubbleId: string): void | Promise<void>;
  /** Fails the row as the search failed. */
  fail(item: T, failure: Failure): void | Promise<void>;
  /** Creates these rows' things in one bulk call (process.ts, syncBulk). */
  createInBulk(items: T[]): Promise<void>;
  /** Creates this row's thing alone (process.ts, syncOne). */
  createOne(item: T): Promise<void>;
}

/** Schedules the backfilled rows of a batch: a search per group of keys, then the creates. */
export function syncBackfills<T extends BackfillItem>(items: T[], deps: BackfillDeps<T>): void {
  for (const group of searchGroups(items)) deps.schedule(group, () => lookUpThenCreate(group, deps));
}

/** The rows in groups of at most KEYS_PER_SEARCH keys and MAX_SEARCH_KEY_CHARS characters of them. */
export function searchGroups<T extends BackfillItem>(items: T[]): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let chars = 0;
  for (const item of items) {
    const size = JSON.stringify(item.key).length + 1;
    if (group.length > 0 && (group.length >= KEYS_PER_SEARCH || chars + size > MAX_SEARCH_KEY_CHARS)) {
      groups.push(group);
      [group, chars] = [[], 0];
    }
    group.push(item);
    chars += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

async function lookUpThenCreate<T extends BackfillItem>(group: T[], deps: BackfillDeps<T>): Promise<void> {
  const found = await findByKeys(deps.bubble, deps.dataType, deps.keyField, [
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

/**
 * The id of the thing Bubble has for each key it has (the first it answers, should it hold several): one `in`
 * search, or, where the app refuses that constraint (404 or 400), one `equals` search per key.
 */
export async function findByKeys(
  bubble: Pick<BubbleClient, "findIn" | "findOne">,
  dataType: string,
  keyField: string,
  keys: string[],
): Promise<Result<{ ids: Map<string, string> }>> {
  const ids = new Map<string, string>();
  const found = await bubble.findIn(dataType, keyField, keys);
  if (found.ok) {
    const wanted = new Set(keys);
    for (const thing of found.things) {
      const key = thing[keyField];
      // Only a thing carrying one of the keys counts: a search that ignored the constraint proves nothing.
      if (typeof key === "string" && wanted.has(key) && !ids.has(key)) ids.set(key, String(thing._id));
    }
    return { ok: true, ids };
  }
  if (!refusedConstraint(found)) return found;
  for (const key of keys) {
    const one = await bubble.findOne(dataType, keyField, key);
    if (!one.ok) return one;
    if (one.thing !== null && one.thing[keyField] === key) ids.set(key, String(one.thing._id));
  }
  return { ok: true, ids };
}

/** Bubble answered the `in` search as it answers a constraint it does not take. */
function refusedConstraint(failure: Failure): boolean {
  return failure.unsent === undefined && (failure.status === 404 || failure.status === 400);
}

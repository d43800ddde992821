// Finding things in Bubble by their stable keys, many at a time: backfilled rows (backfill.ts), references to
// records that have no link yet (references.ts) and the scheduled verification's sample (verify.ts). One search
// per group of up to 100 keys, constraint `in` on the key field (the manual lists the constraint type; an app
// that refuses it gets one `equals` search per key instead). Only a thing carrying one of the keys counts.

import type { BubbleClient, Failure, Result } from "./bubble.ts";

/** Keys per search: one page of Bubble's answer, when each key names one thing. */
export const KEYS_PER_SEARCH = 100;
/**
 * The keys of one search, as JSON, at most this long: the search goes in the URL (about 1.3 times this once
 * encoded), and servers commonly refuse URLs past 8 KB. Bubble does not document its limit.
 */
export const MAX_SEARCH_KEY_CHARS = 5000;

/** `items` in groups of at most KEYS_PER_SEARCH keys and MAX_SEARCH_KEY_CHARS characters of them. */
export function searchGroups<T>(items: T[], keyOf: (item: T) => string): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let chars = 0;
  for (const item of items) {
    const size = JSON.stringify(keyOf(item)).length + 1;
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

/**
 * The id of the thing of `dataType` Bubble has for each key it has (the first it answers, should it hold
 * several): one `in` search, or, where the app refuses that constraint (404 or 400), one `equals` search per key.
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

/**
 * Every thing of `dataType` carrying one of `keys` in `keyField`, with all its fields, duplicates included (the
 * scheduled verification, verify.ts): one `in` search, or, where the app refuses that constraint, one `equals`
 * search per key (which sees only the oldest thing of a key: a duplicate then goes unseen).
 */
export async function findThingsByKeys(
  bubble: Pick<BubbleClient, "findIn" | "findOne">,
  dataType: string,
  keyField: string,
  keys: string[],
): Promise<Result<{ things: Record<string, unknown>[] }>> {
  const wanted = new Set(keys);
  const carries = (thing: Record<string, unknown>) =>
    typeof thing[keyField] === "string" && wanted.has(thing[keyField] as string);
  const found = await bubble.findIn(dataType, keyField, keys);
  if (found.ok) return { ok: true, things: found.things.filter(carries) };
  if (!refusedConstraint(found)) return found;
  const things: Record<string, unknown>[] = [];
  for (const key of keys) {
    const one = await bubble.findOne(dataType, keyField, key);
    if (!one.ok) return one;
    if (one.thing !== null && carries(one.thing)) things.push(one.thing);
  }
  return { ok: true, things };
}

/** Bubble answered the `in` search as it answers a constraint it does not take. */
function refusedConstraint(failure: Failure): boolean {
  return failure.unsent === undefined && (failure.status === 404 || failure.status === 400);
}

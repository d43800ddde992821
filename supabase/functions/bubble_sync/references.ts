// References (docs/mappings.md, "References"): a mapped row's `ref` field carries the Bubble id of the record
// its column names. Before a batch is sent, the ids of every record its rows refer to come from the database's
// links (bubble_sync.links, one statement: Queue.links); a record without a link is looked up in Bubble by its
// stable key, in its own mapping's key field and data type (one search per group of keys, search.ts).
//
// A row whose referenced record Bubble does not have is not sent: it fails as retryable, using no attempt, and
// the database retries it with growing waits until the retry horizon, then fails it for good, its message
// naming the record it waited for. bubble_sync.claim already holds back rows whose referenced records still
// have changes to apply, so this is the rare case of a record nowhere in the queue. Bubble answered the lookup,
// so the wait says nothing about Bubble's health: its circuit breaker does not count it. A lookup that failed
// fails the rows that needed it as the request failed (a 5xx retried, a 429 deferred).

import type { BubbleClient, Result } from "./bubble.ts";
import type { Mapping, Reference } from "./mapping.ts";
import { WorkPool } from "./pool.ts";
import { linkKey, type Queue } from "./queue.ts";
import { findByKeys, searchGroups } from "./search.ts";
import { failedWith, type Verdict } from "./verdicts.ts";

/** A row with references: its fields get the ids. */
export interface Referring {
  references: Reference[];
  fields: Record<string, unknown>;
}

/** How a run lends its machinery to resolveReferences. */
export interface ReferenceDeps {
  queue: Pick<Queue, "links">;
  bubble: Pick<BubbleClient, "findIn" | "findOne">;
  /** The most lookups in flight. */
  concurrency: () => number;
  /**
   * Why a lookup may not be sent now (the run is paused, or out of time), as the verdict of the rows waiting
   * for it; null: it may.
   */
  blocked: () => Verdict | null;
}

/** What became of a referenced record: its Bubble id, Bubble does not have it, or why nobody knows. */
type Found = { id: string } | { missing: true } | { verdict: Verdict };

/**
 * Fills the reference fields of `items` with the Bubble ids of the records they name. The rows that cannot be
 * sent now come back with their verdict; the others are ready.
 */
export async function resolveReferences<T extends Referring>(
  items: T[],
  deps: ReferenceDeps,
): Promise<Map<T, Verdict>> {
  const verdicts = new Map<T, Verdict>();
  const wanted = new Map<string, Reference>(); // one reference per record, by its stable key
  for (const item of items) for (const ref of item.references) wanted.set(linkKey(ref.record), ref);
  if (wanted.size === 0) return verdicts;

  const known = new Map<string, Found>();
  const links = await deps.queue.links([...wanted.values()].map((ref) => ref.record));
  for (const [key, id] of links) known.set(key, { id });
  const unlinked = new Map<Mapping, string[]>();
  for (const [key, ref] of wanted) {
    if (!known.has(key)) unlinked.set(ref.mapping, [...unlinked.get(ref.mapping) ?? [], key]);
  }
  const pool = new WorkPool(deps.concurrency);
  for (const [mapping, keys] of unlinked) {
    for (const group of searchGroups(keys, (key) => key)) {
      pool.add(async () => {
        for (const [key, found] of await lookUp(mapping, group, deps)) known.set(key, found);
      });
    }
  }
  await pool.drained();

  for (const item of items) {
    const verdict = fill(item, known);
    if (verdict !== null) verdicts.set(item, verdict);
  }
  return verdicts;
}

/** What became of the records of `mapping` with these stable keys. */
async function lookUp(mapping: Mapping, keys: string[], deps: ReferenceDeps): Promise<Map<string, Found>> {
  const out = new Map<string, Found>();
  const blocked = deps.blocked();
  if (blocked !== null) {
    for (const key of keys) out.set(key, { verdict: blocked });
    return out;
  }
  const found = await findIds(mapping, keys, deps);
  for (const key of keys) {
    if (!found.ok) {
      out.set(key, { verdict: failedWith(found, `looking up ${mapping.name} record ${key}`) });
    } else {
      const id = found.ids.get(key);
      out.set(key, id === undefined ? { missing: true } : { id });
    }
  }
  return out;
}

/** The Bubble ids of the things of `mapping` carrying these keys: one search, `equals` for a lone key. */
async function findIds(
  mapping: Mapping,
  keys: string[],
  deps: ReferenceDeps,
): Promise<Result<{ ids: Map<string, string> }>> {
  const { dataType, keyField } = mapping;
  if (keys.length > 1) return await findByKeys(deps.bubble, dataType, keyField, keys);
  const found = await deps.bubble.findOne(dataType, keyField, keys[0]);
  if (!found.ok) return found;
  const ids = new Map<string, string>();
  // Only a thing carrying the key counts: a search that ignored the constraint proves nothing.
  if (found.thing !== null && found.thing[keyField] === keys[0]) ids.set(keys[0], String(found.thing._id));
  return { ok: true, ids };
}

/** Puts the ids in the row's fields; its verdict when one of its records is not known. */
function fill(item: Referring, known: Map<string, Found>): Verdict | null {
  let waiting: Reference | null = null;
  for (const ref of item.references) {
    const found = known.get(linkKey(ref.record)) ?? { missing: true };
    if ("id" in found) item.fields[ref.field] = found.id;
    else if ("verdict" in found) return found.verdict;
    else waiting ??= ref;
  }
  if (waiting === null) return null;
  return {
    kind: "fail",
    error: `waiting for ${waiting.mapping.name} record ${linkKey(waiting.record)} to reach Bubble ` +
      `(field ${waiting.field})`,
    reason: { kind: "retryable" },
    retryAfterSeconds: null,
  };
}

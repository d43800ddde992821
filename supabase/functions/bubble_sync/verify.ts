// The action `verify`: the scheduled verification (the cron job bubble_sync.verify, sql/functions/verify.sql).
// For each mapping the function knows (BUBBLE_SYNC_MAPPINGS; none: nothing to do), the database picks a sample
// of synced records (bubble_sync.verify_sample: the most recently synced, and older ones at random), their
// things are fetched from Bubble by key (`in` searches of up to 100 keys in the mapping's data type and key
// field, through the gate every run shares), and the database compares both by its one rule and keeps the
// result (bubble_sync.record_verification, compare_with_bubble). Nothing is written to Bubble. A search that
// fails (Bubble unavailable, a refused token) is kept as that mapping's error, and the next mapping is tried.

import type { BubbleClient, Failure } from "./bubble.ts";
import type { Mapping } from "./mapping.ts";
import type { Queue, Verification } from "./queue.ts";
import { findThingsByKeys, searchGroups } from "./search.ts";

/** What a verification run did; also the 200 answer with `"wait": true`. */
export interface VerifySummary {
  action: "verify";
  /** Per mapping, in the order of BUBBLE_SYNC_MAPPINGS: what it found, or why it could not check. */
  mappings: Verification[];
  bubble_requests: number;
  duration_ms: number;
}

/** The Bubble client's part the verification uses, and its request count. */
export type Searcher = Pick<BubbleClient, "findIn" | "findOne" | "requests">;

/** Checks a sample of `sample` records of each mapping against Bubble, keeping each result in the database. */
export async function verifyMappings(
  mappings: readonly Mapping[],
  sample: number,
  queue: Queue,
  bubble: Searcher,
  now: () => number,
  redact: (text: string) => string,
): Promise<VerifySummary> {
  const started = now();
  const results: Verification[] = [];
  for (const mapping of mappings) {
    results.push(await verifyOne(mapping, sample, queue, bubble, now, redact));
  }
  return {
    action: "verify",
    mappings: results,
    bubble_requests: bubble.requests,
    duration_ms: now() - started,
  };
}

async function verifyOne(
  mapping: Mapping,
  sample: number,
  queue: Queue,
  bubble: Searcher,
  now: () => number,
  redact: (text: string) => string,
): Promise<Verification> {
  const startedAt = new Date(now()).toISOString();
  const failed = (error: string): Verification => ({
    mapping: mapping.name,
    checked: 0,
    missing: 0,
    stale: 0,
    orphaned: 0,
    duplicated: 0,
    error,
  });
  if (queue.verifySample === undefined || queue.recordVerification === undefined) {
    return failed("this database cannot keep verifications");
  }
  try {
    const ids = await queue.verifySample(mapping.name, sample);
    const fetched = await fetchThings(mapping, ids, bubble);
    if (!fetched.ok) {
      const error = redact(`not verified: ${fetched.message}`);
      return await queue.recordVerification(mapping.name, startedAt, ids, [], error);
    }
    return await queue.recordVerification(mapping.name, startedAt, ids, fetched.things, null);
  } catch (error) {
    // The database failed (it lacks the verification's functions before `pulumi up`, or is gone): nothing kept.
    return failed(redact(error instanceof Error ? error.message : String(error)));
  }
}

/** The things Bubble holds for these records of `mapping`, by their stable keys (`<table>:<record id>`). */
async function fetchThings(
  mapping: Mapping,
  recordIds: string[],
  bubble: Searcher,
): Promise<{ ok: true; things: Record<string, unknown>[] } | Failure> {
  const things: Record<string, unknown>[] = [];
  const keys = recordIds.map((id) => `${mapping.table}:${id}`);
  for (const group of searchGroups(keys, (key) => key)) {
    const found = await findThingsByKeys(bubble, mapping.dataType, mapping.keyField, group);
    if (!found.ok) return found;
    things.push(...found.things);
  }
  return { ok: true, things };
}

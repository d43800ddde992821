// The action `verify` (verify.ts) with a fake database and a fake Bubble: each mapping's sample is fetched by
// key in its own data type and key field, groups of up to 100 keys, and handed to the database with the things
// found; a failed search is kept as that mapping's error and the next mapping is still verified.

import type { Failure } from "../bubble_sync/bubble.ts";
import type { Mapping } from "../bubble_sync/mapping.ts";
import type { Queue, Verification } from "../bubble_sync/queue.ts";
import { type Searcher, verifyMappings } from "../bubble_sync/verify.ts";
import { assertEquals } from "./fakes.ts";

function mapping(name: string, table: string, dataType: string): Mapping {
  return {
    name,
    schema: "public",
    sourceTable: table,
    table,
    key: "id",
    dataType,
    keyField: "supabase_id",
    fields: [{ column: "title", field: "Title", ref: null, refTable: null }],
    where: null,
    operations: ["insert", "update"],
    onDelete: { action: "delete" },
  };
}

interface Recorded {
  mapping: string;
  recordIds: string[];
  things: Record<string, unknown>[];
  error: string | null;
}

function database(samples: Record<string, string[]>): { queue: Queue; recorded: Recorded[] } {
  const recorded: Recorded[] = [];
  const queue = {
    verifySample: (name: string, size: number) => Promise.resolve((samples[name] ?? []).slice(0, size)),
    recordVerification: (
      name: string,
      _startedAt: string,
      recordIds: string[],
      things: Record<string, unknown>[],
      error: string | null,
    ): Promise<Verification> => {
      recorded.push({ mapping: name, recordIds, things, error });
      const missing = error === null ? recordIds.length - things.length : 0;
      return Promise.resolve({
        mapping: name,
        checked: error === null ? recordIds.length : 0,
        missing,
        stale: 0,
        orphaned: 0,
        duplicated: 0,
        error,
      });
    },
  } as unknown as Queue;
  return { queue, recorded };
}

function bubble(
  things: Record<string, Record<string, unknown>[]>,
  failFor: string | null = null,
): Searcher & { searches: [string, string[]][] } {
  const searches: [string, string[]][] = [];
  return {
    requests: 0,
    searches,
    findIn(dataType: string, field: string, values: string[]) {
      searches.push([dataType, values]);
      if (dataType === failFor) {
        const failure: Failure = {
          ok: false,
          status: null,
          code: null,
          message: "a search by key was not sent: the circuit breaker is open",
          retryAfterSeconds: 30,
          unsent: "bubble_unavailable",
        };
        return Promise.resolve(failure);
      }
      const wanted = new Set(values);
      // Bubble may answer things the constraint did not ask for: only those carrying a key count
      return Promise.resolve({
        ok: true as const,
        things: (things[dataType] ?? []).filter((t) => wanted.has(t[field] as string) || t.stray === true),
      });
    },
    findOne() {
      throw new Error("not used: the fake takes `in`");
    },
  } as Searcher & { searches: [string, string[]][] };
}

Deno.test("verify fetches each mapping's sample by key in its type and hands it to the database", async () => {
  const ids = Array.from({ length: 150 }, (_, i) => String(i));
  const { queue, recorded } = database({ users: ["a", "b"], listings: ids });
  const fake = bubble({
    user: [{ _id: "1", supabase_id: "profiles:a" }, { _id: "x", supabase_id: "other:z", stray: true }],
    listing: [{ _id: "2", supabase_id: "listings:7" }],
  });
  const summary = await verifyMappings(
    [mapping("users", "profiles", "user"), mapping("listings", "listings", "listing")],
    200,
    queue,
    fake,
    () => 0,
    (text) => text,
  );
  assertEquals(fake.searches.map(([type, keys]) => [type, keys.length]), [
    ["user", 2],
    ["listing", 100],
    ["listing", 50],
  ]);
  assertEquals(fake.searches[0][1], ["profiles:a", "profiles:b"]);
  assertEquals(recorded.map((r) => [r.mapping, r.recordIds.length, r.things.length, r.error]), [
    ["users", 2, 1, null],
    ["listings", 150, 1, null],
  ]);
  assertEquals(summary.mappings.map((m) => [m.mapping, m.checked, m.missing]), [
    ["users", 2, 1],
    ["listings", 150, 149],
  ]);
  assertEquals(summary.action, "verify");
});

Deno.test("a failed search is kept as the mapping's error and the next mapping is still verified", async () => {
  const { queue, recorded } = database({ users: ["a"], listings: ["1"] });
  const summary = await verifyMappings(
    [mapping("users", "profiles", "user"), mapping("listings", "listings", "listing")],
    100,
    queue,
    bubble({ listing: [{ _id: "2", supabase_id: "listings:1" }] }, "user"),
    () => 0,
    (text) => text.replace("circuit breaker", "[redacted]"),
  );
  assertEquals(recorded[0].error, "not verified: a search by key was not sent: the [redacted] is open");
  assertEquals(recorded[0].things, []);
  assertEquals(summary.mappings.map((m) => [m.mapping, m.error]), [
    ["users", "not verified: a search by key was not sent: the [redacted] is open"],
    ["listings", null],
  ]);
});

Deno.test("without mappings there is nothing to verify; a database that cannot keep results says so", async () => {
  const { queue } = database({});
  const none = await verifyMappings([], 100, queue, bubble({}), () => 0, (t) => t);
  assertEquals(none.mappings, []);
  const old = await verifyMappings(
    [mapping("users", "profiles", "user")],
    100,
    {} as Queue,
    bubble({}),
    () => 0,
    (t) => t,
  );
  assertEquals(old.mappings[0].error, "this database cannot keep verifications");
});

// deno test for backfilled rows (backfill.ts): looked up by key, 100 a search, linked when Bubble has them,
// the rest created in bulk, for unmapped and for mapped tables (mapping_fakes.ts). The queue and Bubble are
// the fakes of fakes.ts: no database, no network.

import {
  assert,
  assertEquals,
  assertMatch,
  bubbleError,
  COUNTS,
  type Override,
  pick,
  post,
  runWait,
  type Setup,
  setup,
} from "./fakes.ts";
import { listingRow, mappedSetup } from "./mapping_fakes.ts";
import { OBJ } from "./support.ts";

// --- backfilled rows (backfill.ts): looked up by key, 100 a search, the rest created in bulk ----------------------

function addBackfill(s: Setup, ...ids: string[]): void {
  for (const id of ids) s.queue.add({ record_id: id, operation: "BACKFILL" });
}

Deno.test("backfill: one search for the keys, those Bubble has linked, the rest in one bulk call (bulk off)", async () => {
  const s = setup(); // BUBBLE_BULK_CREATE is off: backfilled rows use the bulk endpoint all the same
  const existing = s.bubble.insert({ email: "b@example.com", supabase_id: "profiles:b", first_name: "Old" });
  addBackfill(s, "a", "b", "c", "d");
  const summary = await runWait(s);
  assertEquals(pick(summary, ...COUNTS), {
    claimed: 4,
    completed: 4,
    failed: 0,
    deferred: 0,
    permanently_failed: 0,
  });
  assertEquals(s.bubble.requests.map((r) => `${r.method} ${r.path.split("/").pop()}`), [
    "GET user",
    "POST bulk",
  ]);
  assertEquals(s.bubble.requests[0].constraints, [
    {
      key: "supabase_id",
      constraint_type: "in",
      value: ["profiles:a", "profiles:b", "profiles:c", "profiles:d"],
    },
  ]);
  assert(!s.bubble.requests[0].viaCreateFetch && s.bubble.requests[1].viaCreateFetch);
  assertEquals(s.bubble.requests[1].body.split("\n").map((line) => JSON.parse(line).supabase_id), [
    "profiles:a",
    "profiles:c",
    "profiles:d",
  ]);
  // linked, not created again, nor modified
  assertEquals(s.queue.byRecord("b").bubble_id, existing);
  assertEquals(s.bubble.things.get(existing)!.first_name, "Old");
  assertEquals(s.bubble.things.size, 4);
  for (const id of ["a", "c", "d"]) {
    assertEquals(s.bubble.things.get(s.queue.byRecord(id).bubble_id!)!.supabase_id, `profiles:${id}`);
  }
});

Deno.test("backfill: a search per 100 keys, and every page of an answer", async () => {
  const s = setup({ BUBBLE_SYNC_BATCH_SIZE: "250" });
  const ids = Array.from({ length: 230 }, (_, i) => `r${String(i).padStart(3, "0")}`);
  // Bubble holds two things for each of the first 60 keys (duplicates from before): the oldest is linked
  const oldest = new Map<string, string>();
  for (const id of ids.slice(0, 60)) {
    oldest.set(id, s.bubble.insert({ supabase_id: `profiles:${id}` }));
    s.bubble.insert({ supabase_id: `profiles:${id}` });
  }
  addBackfill(s, ...ids);
  const summary = await runWait(s);
  assertEquals(summary.completed, 230);
  const searches = s.bubble.requests.filter((r) => r.method === "GET");
  // groups of 100 + 100 + 30 keys; the first group's 120 matches take a second page, from cursor 100
  const pages = searches.map((r) => [(r.constraints as { value: string[] }[])[0].value.length, r.cursor]);
  assertEquals(pages.sort(), [[100, 0], [100, 0], [100, 100], [30, 0]]);
  for (const id of ids.slice(0, 60)) assertEquals(s.queue.byRecord(id).bubble_id, oldest.get(id));
  assertEquals(s.bubble.things.size, 120 + 170);
  // one bulk call per search group, for the keys Bubble lacked: 40, 100 and 30
  const bulks = s.bubble.requests.filter((r) => r.path.endsWith("/bulk")).map((r) =>
    r.body.split("\n").length
  );
  assertEquals(bulks.sort((a, b) => a - b), [30, 40, 100]);
  assertEquals(s.bubble.count("POST", "/user"), 0);
});

Deno.test("backfill: an app that refuses the `in` constraint gets one equals search per key", async () => {
  const s = setup();
  const existing = s.bubble.insert({ supabase_id: "profiles:b" });
  s.bubble.fault("GET", (request) => {
    const [c] = request.constraints as { constraint_type: string }[];
    return c.constraint_type === "in" ? bubbleError(404, "NOT_FOUND", "incompatible constraint") : undefined;
  });
  addBackfill(s, "a", "b", "c");
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "failed"), { completed: 3, failed: 0 });
  const searches = s.bubble.requests.filter((r) => r.method === "GET").map((r) =>
    (r.constraints as { constraint_type: string; value: unknown }[])[0]
  );
  assertEquals(searches.map((c) => c.constraint_type), ["in", "equals", "equals", "equals"]);
  assertEquals(s.queue.byRecord("b").bubble_id, existing);
  assertEquals(s.bubble.count("POST", "/bulk"), 1);
  assertEquals(s.bubble.things.size, 3);
});

Deno.test("backfill: a failed search fails its rows as it failed, and nothing is created", async () => {
  for (
    const [answer, expected] of [
      [() => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), { failed: 2, deferred: 0 }],
      [() => bubbleError(429, "TOO_MANY_REQUESTS", "slow down", { "retry-after": "9" }), {
        failed: 0,
        deferred: 2,
      }],
    ] as [Override, Record<string, number>][]
  ) {
    const s = setup();
    addBackfill(s, "a", "b");
    s.bubble.fault("GET", answer, 1);
    const summary = await runWait(s);
    assertEquals(pick(summary, "failed", "deferred"), expected);
    assertEquals(s.bubble.count("POST"), 0);
    assertMatch(
      s.queue.byRecord("a").error_message!,
      /looking up backfilled records: Bubble answered (503|429)/,
    );
  }
});

Deno.test("backfill: a user Bubble already has by email is linked: the bulk line refused, then sent alone", async () => {
  const s = setup();
  const theirs = s.bubble.insert({ email: "b@example.com", first_name: "Made in Bubble" });
  addBackfill(s, "a", "b", "c");
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 3, permanently_failed: 0 });
  assertEquals(s.queue.byRecord("b").bubble_id, theirs);
  assertEquals(s.bubble.things.get(theirs)!.supabase_id, "profiles:b");
  assertEquals(s.bubble.things.size, 3);
  assertEquals(s.bubble.requests.map((r) => `${r.method} ${r.path.split("/").pop()}`), [
    "GET user", // by key: nothing
    "POST bulk", // b's line refused (USED_EMAIL)
    "POST user", // b alone: refused again
    "GET user", // by email: Bubble's own user
    "PATCH " + theirs, // linked: the key and fields set
  ]);
});

Deno.test("backfill: changes in the same batch go first; a lone backfilled row is a plain create", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "1" });
  s.queue.add({ record_id: "y", operation: "BACKFILL" });
  s.queue.add({ record_id: "x" }); // a signup claimed with it
  await runWait(s);
  assertEquals(
    s.bubble.requests.map((r) =>
      `${r.method} ${r.path.split("/").pop()} ${r.body && JSON.parse(r.body).supabase_id}`
    ),
    ["POST user profiles:x", "GET user ", "POST user profiles:y"],
  );
  assertEquals(s.bubble.things.size, 2);
});

Deno.test("backfill: a backfilled row retried after a lost bulk call is looked up again and linked", async () => {
  const s = setup();
  const stored = s.bubble.insert({ supabase_id: "profiles:a" }); // the lost call had stored it
  s.queue.add({
    record_id: "a",
    operation: "BACKFILL",
    status: "failed",
    failing_since: "2025-01-06T09:00:00Z",
  });
  s.queue.add({
    record_id: "b",
    operation: "BACKFILL",
    status: "failed",
    failing_since: "2025-01-06T09:00:00Z",
  });
  await s.handler(post({ action: "retry_failed", wait: true }));
  assertEquals(s.queue.byRecord("a").bubble_id, stored);
  assertEquals(s.bubble.things.size, 2);
  assertEquals(s.bubble.requests.map((r) => r.method), ["GET", "GET", "POST"]); // b: searched again alone
});

// --- backfilled rows of mapped tables --------------------------------------------------------------------------

Deno.test("backfill: a search per mapping in its type and key field, creates in bulk per type, fields renamed", async () => {
  const s = mappedSetup();
  const host = s.bubble.insert({ supabase_id: "profiles:1" });
  const listing = s.bubble.insert({ supabase_id: "listings:l1" }, "listing");
  for (const k of ["1", "2", "3"]) {
    s.queue.add({
      record_id: k,
      operation: "BACKFILL",
      payload: { email: `${k}@example.com`, last_name: null },
    });
  }
  for (const k of ["l1", "l2", "l3"]) {
    s.queue.add(listingRow(k, { title: k, host_id: 1 }, { operation: "BACKFILL" }));
  }
  s.queue.add({ table_name: "app.notes", record_id: "n1", operation: "BACKFILL", payload: { body: "b" } });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "failed", "permanently_failed"), {
    completed: 7,
    failed: 0,
    permanently_failed: 0,
  });
  const searches = s.bubble.requests.filter((r) => r.method === "GET").map((r) =>
    `${r.path.slice(OBJ.length + 1)} ${JSON.stringify(r.constraints)}`
  );
  assertEquals(searches.sort(), [
    'listing [{"key":"supabase_id","constraint_type":"in","value":["listings:l1","listings:l2","listings:l3"]}]',
    'note [{"key":"External ID","constraint_type":"in","value":["app.notes:n1"]}]',
    'user [{"key":"supabase_id","constraint_type":"equals","value":"profiles:1"}]', // the reference
    'user [{"key":"supabase_id","constraint_type":"in","value":["profiles:1","profiles:2","profiles:3"]}]',
  ]);
  assertEquals(s.queue.byRecord("1").bubble_id, host);
  assertEquals(s.queue.byRecord("l1").bubble_id, listing);
  const bulks = s.bubble.requests.filter((r) => r.path.endsWith("/bulk"));
  assertEquals(bulks.map((r) => r.path.slice(OBJ.length + 1)).sort(), ["listing/bulk", "user/bulk"]);
  const listingLines = bulks.find((r) => r.path.includes("/listing/"))!.body.split("\n").map((l) =>
    JSON.parse(l)
  );
  assertEquals(listingLines, [
    { Title: "l2", supabase_id: "listings:l2", Host: host },
    { Title: "l3", supabase_id: "listings:l3", Host: host },
  ]);
  const userLines = bulks.find((r) => r.path.includes("/user/"))!.body.split("\n").map((l) => JSON.parse(l));
  assertEquals(userLines, [
    { email: "2@example.com", supabase_id: "profiles:2" },
    { email: "3@example.com", supabase_id: "profiles:3" },
  ]);
  assertEquals(s.bubble.typeOf.get(s.queue.byRecord("n1").bubble_id!), "note");
});

Deno.test("backfill: a row whose reference cannot be resolved waits and is not looked up", async () => {
  const s = mappedSetup();
  s.queue.add(listingRow("l1", { title: "l1", host_id: 99 }, { operation: "BACKFILL" }));
  s.queue.add(listingRow("l2", { title: "l2" }, { operation: "BACKFILL" }));
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "failed"), { completed: 1, failed: 1 });
  assertEquals(
    s.queue.byRecord("l1").error_message,
    "waiting for users record profiles:99 to reach Bubble (field Host)",
  );
  const listingSearches = s.bubble.requests.filter((r) => r.method === "GET" && r.path.endsWith("/listing"));
  assertEquals(listingSearches.map((r) => (r.constraints as { value: unknown }[])[0].value), [[
    "listings:l2",
  ]]);
});

// deno test for references of mapped tables (references.ts): filled from the database's links or looked up in
// Bubble, rows that wait for a record Bubble does not have yet, and lookups that fail. The queue and Bubble
// are the fakes of fakes.ts: no database, no network.

import {
  assertEquals,
  assertMatch,
  bubbleError,
  COUNTS,
  type Override,
  pick,
  post,
  runWait,
} from "./fakes.ts";
import { listingRow, mappedSetup, USERS } from "./mapping_fakes.ts";
import { bodyOf, routes } from "./support.ts";

// --- references ----------------------------------------------------------------------------------------------

Deno.test("references: one links() call for the batch; a linked record's id fills the field, no search", async () => {
  const s = mappedSetup();
  s.queue.linkTable.set("profiles:7", "bubble-user-7");
  s.queue.linkTable.set("profiles:8", "bubble-user-8");
  s.queue.add(listingRow("l1", { title: "Loft", host_id: 7 }));
  s.queue.add(listingRow("l2", { title: "Barn", host_id: "8" }));
  s.queue.add(listingRow("l3", { title: "Hut", host_id: 7 }));
  s.queue.add({ record_id: "9" }); // a user: no references
  assertEquals((await runWait(s)).completed, 4);
  assertEquals(s.queue.linkCalls, [[{ table: "profiles", recordId: "7" }, {
    table: "profiles",
    recordId: "8",
  }]]);
  assertEquals(s.bubble.count("GET"), 0);
  const hosts = s.bubble.requests.filter((r) => r.path.endsWith("/listing")).map((r) =>
    JSON.parse(r.body).Host
  );
  assertEquals(hosts.sort(), ["bubble-user-7", "bubble-user-7", "bubble-user-8"]);
});

Deno.test("references: a record without a link is looked up in Bubble by its mapping's key field and type", async () => {
  const s = mappedSetup();
  const host = s.bubble.insert({ supabase_id: "profiles:7" }, "user");
  s.bubble.insert({ supabase_id: "profiles:7" }, "listing"); // the same key in another type: not it
  s.queue.add(listingRow("l1", { title: "Loft", host_id: 7 }));
  assertEquals((await runWait(s)).completed, 1);
  assertEquals(routes(s).map((r) => r.split("?")[0]), ["GET user", "POST listing"]);
  assertEquals(s.bubble.requests[0].constraints, [
    { key: "supabase_id", constraint_type: "equals", value: "profiles:7" },
  ]);
  assertEquals(bodyOf(s, 1).Host, host);
});

Deno.test("references: many records without links are found with one `in` search", async () => {
  const s = mappedSetup();
  const ids = ["1", "2", "3"].map((k) => s.bubble.insert({ supabase_id: `profiles:${k}` }));
  s.queue.linkTable.set("profiles:4", "linked-4");
  for (const k of ["1", "2", "3", "4"]) s.queue.add(listingRow(`l${k}`, { host_id: Number(k) }));
  assertEquals((await runWait(s)).completed, 4);
  const searches = s.bubble.requests.filter((r) => r.method === "GET");
  assertEquals(searches.map((r) => r.constraints), [[
    { key: "supabase_id", constraint_type: "in", value: ["profiles:1", "profiles:2", "profiles:3"] },
  ]]);
  for (const [i, k] of ["1", "2", "3"].entries()) {
    assertEquals(s.bubble.things.get(s.queue.byRecord(`l${k}`).bubble_id!)!.Host, ids[i]);
  }
  assertEquals(s.bubble.things.get(s.queue.byRecord("l4").bubble_id!)!.Host, "linked-4");
});

Deno.test("references: a record Bubble does not have yet: the row waits (retryable, no attempt), naming it", async () => {
  const s = mappedSetup();
  s.queue.add(listingRow("l1", { title: "Loft", host_id: 7 }));
  s.queue.add(listingRow("l2", { title: "Barn" })); // no host: sent
  const summary = await runWait(s);
  assertEquals(pick(summary, ...COUNTS), {
    claimed: 2,
    completed: 1,
    failed: 1,
    deferred: 0,
    permanently_failed: 0,
  });
  const row = s.queue.byRecord("l1");
  assertEquals([row.status, row.retry_count], ["failed", 0]);
  assertEquals(row.error_message, "waiting for users record profiles:7 to reach Bubble (field Host)");
  assertEquals(s.queue.fails[0].reason, { kind: "retryable" });
  assertEquals(s.queue.fails[0].retryAfterSeconds, null);
  assertEquals(routes(s).map((r) => r.split("?")[0]), ["GET user", "POST listing"]);
  // Bubble answered: nothing for its circuit breaker
  assertEquals(s.queue.gate.notes, []);
  assertEquals(summary.stopped_by, "drained");
});

Deno.test("references: a wait past the retry horizon fails for good with the same message", async () => {
  const s = mappedSetup();
  s.queue.pastHorizon = true;
  s.queue.add(listingRow("l1", { host_id: 7 }, { status: "failed", failing_since: "2025-01-06T09:00:00Z" }));
  const response = await s.handler(post({ action: "retry_failed", wait: true }));
  assertEquals((await response.json()).permanently_failed, 1);
  assertEquals(
    s.queue.byRecord("l1").error_message,
    "waiting for users record profiles:7 to reach Bubble (field Host)",
  );
});

Deno.test("references: the record reached Bubble meanwhile: the waiting row is sent on its retry", async () => {
  const s = mappedSetup();
  s.queue.add(listingRow("l1", { host_id: 7 }));
  await runWait(s);
  s.queue.add({ record_id: "7" }); // the host is synced (its completion writes the link)
  await runWait(s);
  assertEquals(s.queue.linkTable.has("profiles:7"), true);
  await s.handler(post({ action: "retry_failed", wait: true }));
  const listing = s.queue.byRecord("l1");
  assertEquals(listing.status, "completed");
  assertEquals(s.bubble.things.get(listing.bubble_id!)!.Host, s.queue.linkTable.get("profiles:7"));
});

Deno.test("references: a lookup that failed fails the row as the request failed; nothing is created", async () => {
  for (
    const [answer, reason, kind] of [
      [() => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), { httpStatus: 503 }, "failed"],
      [
        () => bubbleError(429, "TOO_MANY_REQUESTS", "slow", { "retry-after": "9" }),
        { httpStatus: 429 },
        "deferred",
      ],
    ] as [Override, unknown, string][]
  ) {
    const s = mappedSetup();
    s.queue.add(listingRow("l1", { host_id: 7 }));
    s.bubble.fault("GET", answer, 1);
    const summary = await runWait(s);
    assertEquals(summary[kind], 1);
    assertEquals(s.queue.fails[0].reason, reason);
    assertMatch(
      s.queue.byRecord("l1").error_message!,
      /looking up users record profiles:7: Bubble answered (503|429)/,
    );
    assertEquals(s.bubble.count("POST"), 0);
  }
});

Deno.test("references: a row with two references waits for the record Bubble does not have", async () => {
  const twoRefs = [
    USERS,
    {
      name: "swaps",
      table: "swaps",
      key: "id",
      dataType: "swap",
      keyField: "supabase_id",
      fields: [
        { column: "from_id", field: "From", ref: "users", refTable: "profiles" },
        { column: "to_id", field: "To", ref: "users", refTable: "profiles" },
      ],
      onDelete: { action: "delete" },
    },
  ];
  const s = mappedSetup({}, twoRefs);
  s.queue.linkTable.set("profiles:1", "u1");
  s.queue.add({ table_name: "swaps", record_id: "s1", payload: { from_id: 1, to_id: 2 } });
  await runWait(s);
  assertEquals(
    s.queue.byRecord("s1").error_message,
    "waiting for users record profiles:2 to reach Bubble (field To)",
  );
});

Deno.test("references: a null reference is left out of a create and empties the field in a modify", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "listings:l2", Host: "someone" }, "listing");
  s.queue.add(listingRow("l1", { title: "Loft", host_id: null }));
  s.queue.add(listingRow("l2", { host_id: null }, { operation: "UPDATE", bubble_id: id }));
  assertEquals((await runWait(s)).completed, 2);
  assertEquals(s.queue.linkCalls.length, 0);
  assertEquals(bodyOf(s, 0), { Title: "Loft", supabase_id: "listings:l1" });
  assertEquals(s.bubble.things.get(id)!.Host, null);
});

Deno.test("references: a reference column holding anything but a key fails the row for good", async () => {
  const s = mappedSetup();
  s.queue.add(listingRow("l1", { host_id: true }));
  s.queue.add(listingRow("l2", { host_id: [7] }));
  assertEquals((await runWait(s)).permanently_failed, 2);
  assertEquals(
    s.queue.byRecord("l1").error_message,
    'column host_id (field "Host") refers to a users record: it must hold that record\'s key (a string or a ' +
      "number), got a boolean",
  );
  assertMatch(s.queue.byRecord("l2").error_message!, /got a list$/);
  assertEquals(s.bubble.requests.length, 0);
});

Deno.test("references: a lookup is not sent when the rows may no longer be sent; they wait without an attempt", async () => {
  const s = mappedSetup({ BUBBLE_SYNC_LEASE_SECONDS: "30", BUBBLE_SYNC_TIME_BUDGET_MS: "120000" });
  s.queue.add(listingRow("l1", { host_id: 7 }));
  const claim = s.queue.claim.bind(s.queue);
  let first = true;
  s.queue.claim = (...args) => {
    if (first) s.clock.now += 40_000; // the first claim answered after its lease was spent
    first = false;
    return claim(...args);
  };
  const summary = await runWait(s);
  assertEquals(pick(summary, "claimed", "deferred", "failed"), { claimed: 2, deferred: 1, failed: 1 });
  assertEquals(s.queue.fails[0].reason, { kind: "deferred" });
  assertMatch(s.queue.fails[0].error, /^time budget: not sent, the row's lease would have run out/);
  assertEquals(s.bubble.count("GET"), 1, "looked up only under the second claim's lease");
});

Deno.test("references: a lookup with no turn at Bubble's rate limit defers its rows and ends the run", async () => {
  const s = mappedSetup({ BUBBLE_RATE_LIMIT_PER_MINUTE: "60" });
  s.queue.gate.nextAt = performance.now() + 60_000; // other runs booked the next minute
  s.queue.add(listingRow("l1", { host_id: 7 }));
  const summary = await runWait(s);
  assertEquals(pick(summary, "deferred", "stopped_by"), { deferred: 1, stopped_by: "rate_limited" });
  assertMatch(
    s.queue.byRecord("l1").error_message!,
    /^rate limited: looking up users record profiles:7: a search was not sent/,
  );
  assertEquals(s.bubble.requests.length, 0);
});

Deno.test("references: bulk creates carry the resolved ids", async () => {
  const s = mappedSetup({ BUBBLE_BULK_CREATE: "true" });
  s.queue.linkTable.set("profiles:7", "u7");
  for (const k of ["l1", "l2"]) s.queue.add(listingRow(k, { title: k, host_id: 7 }));
  assertEquals((await runWait(s)).completed, 2);
  assertEquals(routes(s), ["POST listing/bulk"]);
  assertEquals(s.bubble.requests[0].body.split("\n").map((line) => JSON.parse(line)), [
    { Title: "l1", supabase_id: "listings:l1", Host: "u7" },
    { Title: "l2", supabase_id: "listings:l2", Host: "u7" },
  ]);
});

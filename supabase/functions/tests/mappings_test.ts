// deno test for rows of mapped tables (docs/mappings.md, "How it reaches Bubble"): fields renamed, the
// mapping's data type and key field, references resolved from the database's links or Bubble, deletes as
// onDelete says, values Bubble refuses, backfilled rows. The queue and Bubble are the fakes of fakes.ts.

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
} from "./fakes.ts";
import { listingRow, mappedSetup, USERS } from "./mapping_fakes.ts";

const OBJ = "/version-test/api/1.1/obj";

/** Each request as `METHOD <path after /obj/>`. */
function routes(s: Setup): string[] {
  return s.bubble.requests.map((r) => `${r.method} ${r.path.slice(OBJ.length + 1)}`);
}

function bodyOf(s: Setup, i: number): Record<string, unknown> {
  return JSON.parse(s.bubble.requests[i].body);
}

// --- creates and modifies: the mapping's type, fields and key ----------------------------------------------

Deno.test("mapped INSERT: fields renamed, unmapped columns dropped, the key added, nulls left out, the mapping's type", async () => {
  const s = mappedSetup();
  s.queue.add({
    record_id: "7",
    payload: {
      email: "ada@example.com",
      first_name: "Ada",
      last_name: null,
      created_at: "2026-12-05T09:13:51.123456Z",
      id: 7, // the key column: not mapped, not sent
      is_test: false, // not mapped
    },
  });
  s.queue.add({ table_name: "app.notes", record_id: "n1", payload: { body: "hello", secret: "x" } });
  assertEquals((await runWait(s)).completed, 2);
  assertEquals(routes(s), ["POST user", "POST note"]);
  assertEquals(bodyOf(s, 0), {
    email: "ada@example.com",
    "First Name": "Ada",
    Joined: "2026-12-05T09:13:51.123456Z",
    supabase_id: "profiles:7",
  });
  assertEquals(bodyOf(s, 1), { Body: "hello", "External ID": "app.notes:n1" });
  const note = s.queue.byRecord("n1");
  assertEquals(s.bubble.typeOf.get(note.bubble_id!), "note");
});

Deno.test("mapped UPDATE: a null is sent as null (the field emptied), by the linked bubble_id without a search", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "listings:l1", Title: "Loft", Price: 90 }, "listing");
  s.queue.add(listingRow("l1", { title: "Loft", price: null }, { operation: "UPDATE", bubble_id: id }));
  await runWait(s);
  assertEquals(routes(s), [`PATCH listing/${id}`]);
  assertEquals(bodyOf(s, 0), { Title: "Loft", Price: null, supabase_id: "listings:l1" });
  assertEquals(s.bubble.things.get(id)!.Price, null);
});

Deno.test("mapped UPDATE without a link: found by the mapping's key field in its type", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ "External ID": "app.notes:n1", Body: "old" }, "note");
  s.bubble.insert({ "External ID": "app.notes:n1", Body: "a user, not a note" }, "user");
  s.queue.add({ table_name: "app.notes", record_id: "n1", operation: "UPDATE", payload: { body: "new" } });
  await runWait(s);
  assertEquals(routes(s).map((r) => r.split("?")[0]), ["GET note", `PATCH note/${id}`]);
  assertEquals(s.bubble.requests[0].constraints, [
    { key: "External ID", constraint_type: "equals", value: "app.notes:n1" },
  ]);
  assertEquals(s.bubble.things.get(id)!.Body, "new");
});

Deno.test("mapped UPDATE of a thing Bubble does not have creates it (the row carries every mapped column)", async () => {
  for (const bubbleId of [null, "gone"]) {
    const s = mappedSetup();
    s.queue.add({
      table_name: "app.notes",
      record_id: "n1",
      operation: "UPDATE",
      bubble_id: bubbleId,
      payload: { body: "new" },
    });
    assertEquals((await runWait(s)).completed, 1);
    const expected = bubbleId === null ? ["GET note", "POST note"] : ["PATCH note/gone", "POST note"];
    assertEquals(routes(s).map((r) => r.split("?")[0]), expected);
    assertEquals(bodyOf(s, 1), { Body: "new", "External ID": "app.notes:n1" });
    assertEquals(s.bubble.things.size, 1);
  }
});

Deno.test("unmapped UPDATE of a thing Bubble does not have fails for good: its payload may be part of the record", async () => {
  const s = mappedSetup({}, []);
  s.queue.add({ record_id: "9", operation: "UPDATE", payload: { email: "x@example.com" } });
  assertEquals((await runWait(s)).permanently_failed, 1);
  assertEquals(s.bubble.things.size, 0);
});

Deno.test("a row of a table no mapping names goes the legacy way: BUBBLE_DATA_TYPE, payload as queued", async () => {
  const s = mappedSetup({ BUBBLE_DATA_TYPE: "member", BUBBLE_EXTERNAL_KEY_FIELD: "External ID" });
  s.queue.add({ table_name: "members", record_id: "m1", payload: { first_name: "Ada", note: null } });
  assertEquals((await runWait(s)).completed, 1);
  assertEquals(routes(s), ["POST member"]);
  assertEquals(bodyOf(s, 0), { first_name: "Ada", note: null, "External ID": "members:m1" });
});

Deno.test("a JSON object in a mapped column fails the row for good naming the column; the others go on", async () => {
  const s = mappedSetup();
  s.queue.add(listingRow("obj", { title: "Loft", price: { amount: 90 } }));
  s.queue.add(listingRow("list", { title: "Loft", tags: [{ a: 1 }] }));
  s.queue.add(listingRow("ok", { title: "Loft", tags: ["quiet", "sunny"], price: 90.5 }));
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 1, permanently_failed: 2 });
  assertEquals(
    s.queue.byRecord("obj").error_message,
    'column price (field "Price") holds a JSON object, which no Bubble field takes (map a column that casts ' +
      "it instead)",
  );
  assertMatch(s.queue.byRecord("list").error_message!, /^column tags \(field "Tags"\) holds a JSON object/);
  assertEquals(routes(s), ["POST listing"]);
  assertEquals(bodyOf(s, 0), {
    Title: "Loft",
    Price: 90.5,
    Tags: ["quiet", "sunny"],
    supabase_id: "listings:ok",
  });
  for (const fail of s.queue.fails) assertEquals(fail.reason, { kind: "permanent" });
});

Deno.test("a mapped user: the used-email recovery links the user Bubble already has", async () => {
  const s = mappedSetup();
  const theirs = s.bubble.insert({ email: "ada@example.com", "First Name": "Made in Bubble" });
  s.queue.add({ record_id: "7", payload: { email: "ada@example.com", first_name: "Ada" } });
  assertEquals((await runWait(s)).completed, 1);
  assertEquals(routes(s).map((r) => r.split("?")[0]), ["POST user", "GET user", `PATCH user/${theirs}`]);
  assertEquals(s.queue.byRecord("7").bubble_id, theirs);
  // the modify leaves the email out (BUBBLE_MODIFY_USER_CREDENTIALS is off)
  assertEquals(bodyOf(s, 2), { "First Name": "Ada", supabase_id: "profiles:7" });
});

Deno.test("a mapped type other than user: an email field is a field, a refusal is not a used email", async () => {
  const mappings = [{ ...USERS, dataType: "member" }];
  const s = mappedSetup({}, mappings);
  s.bubble.fault("POST", () => bubbleError(400, "INVALID_DATA", "email: a member's email must be unique"), 1);
  const id = s.bubble.insert({ supabase_id: "profiles:8", email: "b@example.com" }, "member");
  s.queue.add({ record_id: "7", payload: { email: "ada@example.com", first_name: "Ada" } });
  s.queue.add({ record_id: "8", operation: "UPDATE", bubble_id: id, payload: { email: "new@example.com" } });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 1, permanently_failed: 1 });
  assertEquals(routes(s), ["POST member", `PATCH member/${id}`]); // no search by email
  assertEquals(bodyOf(s, 1), { email: "new@example.com", supabase_id: "profiles:8" }); // not a user: sent
  assertEquals(
    s.queue.byRecord("7").error_message,
    "Bubble answered 400 INVALID_DATA: email: a member's email must be unique",
  );
});

Deno.test("a mapped user's UPDATE leaves email and password out unless BUBBLE_MODIFY_USER_CREDENTIALS", async () => {
  for (const [setting, sent] of [["false", false], ["true", true]] as const) {
    const s = mappedSetup({ BUBBLE_MODIFY_USER_CREDENTIALS: setting });
    const id = s.bubble.insert({ supabase_id: "profiles:7" });
    s.queue.add({
      record_id: "7",
      operation: "UPDATE",
      bubble_id: id,
      payload: { email: "new@example.com", first_name: "Ada" },
    });
    await runWait(s);
    assertEquals("email" in bodyOf(s, 0), sent);
    assertEquals(bodyOf(s, 0)["First Name"], "Ada");
  }
});

// --- an INSERT of a record the database links to a thing: a modify ------------------------------------------

Deno.test("INSERT with a bubble_id (the record re-entered its mapping's rows) modifies that thing instead of creating", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "listings:l1", Title: "Old", Price: 90 }, "listing");
  s.queue.add(listingRow("l1", { title: "Back", price: null }, { bubble_id: id }));
  assertEquals((await runWait(s)).completed, 1);
  assertEquals(routes(s), [`PATCH listing/${id}`]);
  assertEquals(bodyOf(s, 0), { Title: "Back", Price: null, supabase_id: "listings:l1" }); // a null empties
  assertEquals(s.queue.byRecord("l1").bubble_id, id);
  assertEquals(s.bubble.things.size, 1);
});

Deno.test("INSERT with a bubble_id Bubble no longer has (404) creates the thing", async () => {
  for (const mapped of [true, false]) {
    const s = mapped ? mappedSetup() : mappedSetup({}, []);
    s.queue.add({ record_id: "7", bubble_id: "gone", payload: { email: "a@example.com", last_name: null } });
    assertEquals((await runWait(s)).completed, 1);
    assertEquals(routes(s), ["PATCH user/gone", "POST user"]);
    const created = bodyOf(s, 1);
    assertEquals("last_name" in created || "Last Name" in created, !mapped); // a mapped create leaves nulls out
    assert(s.queue.byRecord("7").bubble_id !== "gone");
  }
});

Deno.test("INSERT with a bubble_id: a legacy row is modified too; other failures of the modify keep their kind", async () => {
  const s = mappedSetup({}, []);
  const id = s.bubble.insert({ supabase_id: "profiles:7" });
  s.queue.add({ record_id: "7", bubble_id: id, payload: { first_name: "Ada" } });
  s.queue.add({ record_id: "8", bubble_id: "x8", payload: { first_name: "Bea" } });
  s.bubble.fault("PATCH", () => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), 1, "/x8");
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "failed"), { completed: 1, failed: 1 });
  assertEquals(s.bubble.things.get(id)!.first_name, "Ada");
  assertEquals(
    s.queue.byRecord("8").error_message,
    "modifying x8: Bubble answered 503 SERVICE_UNAVAILABLE: down",
  );
  assertEquals(s.bubble.count("POST"), 0);
});

Deno.test("a retried INSERT with a bubble_id searches by key first: the thing found is modified, none is created", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "profiles:7", "First Name": "Old" });
  s.queue.add({ record_id: "7", bubble_id: "stale", failing_since: "2025-01-06T09:00:00Z" });
  s.queue.add({ record_id: "8", bubble_id: "gone", retry_count: 1 });
  assertEquals((await runWait(s)).completed, 2);
  assertEquals(routes(s).map((r) => r.split("?")[0]).sort(), [
    "GET user",
    "GET user",
    `PATCH user/${id}`,
    "POST user",
  ]);
  assertEquals(s.bubble.things.get(id)!["First Name"], "Ada");
  assertEquals(s.queue.byRecord("7").bubble_id, id);
});

Deno.test("a retried INSERT whose found thing is deleted before the modify is retried, not failed for good", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "profiles:7" });
  s.bubble.fault("PATCH", () => bubbleError(404, "MISSING_DATA", "object does not exist"), 1);
  s.queue.add({ record_id: "7", bubble_id: id, retry_count: 1 });
  assertEquals((await runWait(s)).failed, 1);
  assertEquals(s.queue.fails[0].reason, { kind: "retryable" });
  assertMatch(s.queue.fails[0].error, /deleted since it was found; retrying\)$/);
  assertEquals(s.bubble.count("POST"), 0);
});

Deno.test("bulk: an INSERT with a bubble_id is not in the bulk call", async () => {
  const s = mappedSetup({ BUBBLE_BULK_CREATE: "true" });
  const id = s.bubble.insert({ supabase_id: "profiles:c" });
  for (const rid of ["a", "b"]) s.queue.add({ record_id: rid });
  s.queue.add({ record_id: "c", bubble_id: id });
  assertEquals((await runWait(s)).completed, 3);
  assertEquals(routes(s).sort(), ["PATCH user/" + id, "POST user/bulk"]);
});

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

// --- values Bubble refuses ------------------------------------------------------------------------------------

Deno.test("a value Bubble refuses (400) fails that row alone, for good, with Bubble's message", async () => {
  const s = mappedSetup();
  for (const k of ["l1", "bad", "l3"]) {
    s.queue.add(listingRow(k, { title: k, price: k === "bad" ? "cheap" : 9 }));
  }
  s.bubble.fault(
    "POST",
    (request) =>
      request.body.includes('"cheap"')
        ? bubbleError(400, "INVALID_DATA", "Invalid data for field Price: not a number")
        : undefined,
  );
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed", "failed"), {
    completed: 2,
    permanently_failed: 1,
    failed: 0,
  });
  assertEquals(
    s.queue.byRecord("bad").error_message,
    "Bubble answered 400 INVALID_DATA: Invalid data for field Price: not a number",
  );
  assertEquals(s.queue.fails.map((f) => f.reason), [{ httpStatus: 400 }]);
});

Deno.test("bulk: a line Bubble refuses is sent again alone and fails alone; the rest of the call completes", async () => {
  const s = mappedSetup({ BUBBLE_BULK_CREATE: "true" });
  for (const k of ["l1", "bad", "l3"]) {
    s.queue.add(listingRow(k, { title: k, price: k === "bad" ? "cheap" : 9 }));
  }
  const refuse = (body: string) => body.includes('"cheap"');
  s.bubble.fault("POST", (request) => {
    if (!request.path.endsWith("/bulk")) return undefined;
    const lines = request.body.split("\n").map((line, i) =>
      refuse(line)
        ? { status: "error", message: "Invalid data for field Price: not a number" }
        : { status: "success", id: `id-${i}` }
    );
    return new Response(lines.map((line) => JSON.stringify(line)).join("\n"), { status: 200 });
  });
  s.bubble.fault(
    "POST",
    (request) =>
      refuse(request.body)
        ? bubbleError(400, "INVALID_DATA", "Invalid data for field Price: not a number")
        : undefined,
  );
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 2, permanently_failed: 1 });
  assertEquals(routes(s), ["POST listing/bulk", "POST listing"]);
  assertEquals([s.queue.byRecord("l1").bubble_id, s.queue.byRecord("l3").bubble_id], ["id-0", "id-2"]);
  assertEquals(
    s.queue.byRecord("bad").error_message,
    "Bubble answered 400 INVALID_DATA: Invalid data for field Price: not a number",
  );
});

Deno.test("bulk: one call per data type", async () => {
  const s = mappedSetup({ BUBBLE_BULK_CREATE: "true" });
  for (const k of ["1", "2"]) s.queue.add({ record_id: k });
  for (const k of ["l1", "l2"]) s.queue.add(listingRow(k, { title: k }));
  s.queue.add(listingRow("l3", { title: "l3" }, { table_name: "app.notes", payload: { body: "alone" } }));
  assertEquals((await runWait(s)).completed, 5);
  assertEquals(routes(s).sort(), ["POST listing/bulk", "POST note", "POST user/bulk"]);
  assertEquals(s.bubble.ofType("listing").length, 2);
});

// --- deletes -----------------------------------------------------------------------------------------------

Deno.test("DELETE (onDelete delete) of a linked record deletes the thing by its id", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "profiles:7" });
  s.queue.linkTable.set("profiles:7", id);
  s.queue.add({ record_id: "7", operation: "DELETE", bubble_id: id, payload: { email: "a@example.com" } });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted"), { completed: 1, deleted: 1 });
  assertEquals(routes(s), [`DELETE user/${id}`]);
  assertEquals(s.bubble.things.has(id), false);
  const row = s.queue.byRecord("7");
  assertEquals([row.status, row.bubble_id, row.error_message], ["completed", id, null]);
  assertEquals(s.queue.linkTable.has("profiles:7"), false);
});

Deno.test("DELETE without a link finds the thing by its key, then deletes it", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "profiles:7" });
  s.queue.add({ record_id: "7", operation: "DELETE", payload: null }); // a delete's payload is not needed
  assertEquals((await runWait(s)).deleted, 1);
  assertEquals(routes(s).map((r) => r.split("?")[0]), ["GET user", `DELETE user/${id}`]);
  assertEquals(s.queue.byRecord("7").bubble_id, id);
});

Deno.test("DELETE of a record Bubble never had, or of a thing already gone, completes with a note", async () => {
  const s = mappedSetup();
  s.queue.add({ record_id: "never", operation: "DELETE" });
  s.queue.add({ record_id: "gone", operation: "DELETE", bubble_id: "x-gone" });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted", "failed"), { completed: 2, deleted: 0, failed: 0 });
  assertEquals(
    s.queue.byRecord("never").error_message,
    "Bubble never had user profiles:never: nothing to delete",
  );
  assertEquals(s.queue.byRecord("never").bubble_id, null);
  assertEquals(
    s.queue.byRecord("gone").error_message,
    "Bubble user x-gone was already gone: nothing to delete",
  );
  assertEquals(routes(s).map((r) => r.split("?")[0]).sort(), ["DELETE user/x-gone", "GET user"]);
});

Deno.test("DELETE that Bubble fails (5xx) is retried; a refused one (400) fails for good", async () => {
  const s = mappedSetup();
  s.queue.add({ record_id: "a", operation: "DELETE", bubble_id: "ia" });
  s.queue.add({ record_id: "b", operation: "DELETE", bubble_id: "ib" });
  s.bubble.fault("DELETE", () => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), 1, "/ia");
  s.bubble.fault("DELETE", () => bubbleError(400, "NOT_ALLOWED", "a privacy rule forbids it"), 1, "/ib");
  const summary = await runWait(s);
  assertEquals(pick(summary, "failed", "permanently_failed"), { failed: 1, permanently_failed: 1 });
  assertEquals(
    s.queue.byRecord("a").error_message,
    "deleting ia: Bubble answered 503 SERVICE_UNAVAILABLE: down",
  );
  assertEquals(
    s.queue.byRecord("b").error_message,
    "deleting ib: Bubble answered 400 NOT_ALLOWED: a privacy rule forbids it",
  );
});

Deno.test("DELETE whose search answers a thing without the key changes nothing and fails for good", async () => {
  const s = mappedSetup();
  const other = s.bubble.insert({ supabase_id: "profiles:other" });
  s.bubble.fault(
    "GET",
    () => Response.json({ response: { results: [{ _id: other, supabase_id: "profiles:other" }] } }),
  );
  s.queue.add({ record_id: "7", operation: "DELETE" });
  assertEquals((await runWait(s)).permanently_failed, 1);
  assertEquals(s.bubble.things.has(other), true);
  assertMatch(s.queue.byRecord("7").error_message!, /answered user .* which does not carry that key/);
});

Deno.test("DELETE with onDelete set modifies the thing instead: by its link, or found by its key", async () => {
  const s = mappedSetup();
  const linked = s.bubble.insert({ supabase_id: "listings:l1", Title: "Loft" }, "listing");
  const found = s.bubble.insert({ supabase_id: "listings:l2", Title: "Barn" }, "listing");
  s.queue.add(listingRow("l1", { title: "Loft" }, { operation: "DELETE", bubble_id: linked }));
  s.queue.add(listingRow("l2", { title: "Barn" }, { operation: "DELETE" }));
  s.queue.add(listingRow("l3", { title: "Hut" }, { operation: "DELETE" })); // never in Bubble
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted"), { completed: 3, deleted: 0 });
  assertEquals(s.bubble.things.get(linked), {
    supabase_id: "listings:l1",
    Title: "Loft",
    _id: linked,
    Archived: true,
  });
  assertEquals(s.bubble.things.get(found)!.Archived, true);
  const patches = s.bubble.requests.filter((r) => r.method === "PATCH").map((r) => JSON.parse(r.body));
  assertEquals(patches, [{ Archived: true }, { Archived: true }]);
  assertEquals(s.bubble.count("DELETE"), 0);
  assertEquals(
    s.queue.byRecord("l3").error_message,
    "Bubble never had listing listings:l3: nothing to update",
  );
  assertEquals(s.queue.byRecord("l1").error_message, null);
});

Deno.test("DELETE with onDelete set of a thing Bubble no longer has completes with a note", async () => {
  const s = mappedSetup();
  s.queue.add(listingRow("l1", {}, { operation: "DELETE", bubble_id: "x1" }));
  assertEquals((await runWait(s)).completed, 1);
  assertEquals(s.queue.byRecord("l1").error_message, "Bubble listing x1 is gone: nothing to update");
});

Deno.test("DELETE with onDelete ignore completes without a request, saying so", async () => {
  const s = mappedSetup();
  s.queue.add({ table_name: "app.notes", record_id: "n1", operation: "DELETE", bubble_id: "nb1" });
  s.queue.add({ table_name: "app.notes", record_id: "n2", operation: "DELETE" });
  assertEquals((await runWait(s)).completed, 2);
  assertEquals(s.bubble.requests.length, 0);
  for (const id of ["n1", "n2"]) {
    assertEquals(s.queue.byRecord(id).error_message, "onDelete ignore: nothing sent");
  }
  assertEquals(s.queue.byRecord("n1").bubble_id, "nb1");
});

Deno.test("DELETE of a table no mapping names deletes by key in BUBBLE_DATA_TYPE", async () => {
  for (const mappings of [undefined, []]) {
    const s = mappings === undefined
      ? mappedSetup({ BUBBLE_SYNC_MAPPINGS: undefined })
      : mappedSetup({}, mappings);
    const id = s.bubble.insert({ supabase_id: "profiles:7" });
    s.queue.add({ record_id: "7", operation: "DELETE" });
    s.queue.add({ record_id: "8", operation: "delete" });
    const summary = await runWait(s);
    assertEquals(pick(summary, "completed", "deleted"), { completed: 2, deleted: 1 });
    assertEquals(s.bubble.things.has(id), false);
    assertEquals(s.queue.byRecord("8").error_message, "Bubble never had user profiles:8: nothing to delete");
  }
});

Deno.test("DELETE of a duplicate deletes the thing it names, whatever onDelete says; the record's link stays", async () => {
  const s = mappedSetup();
  const linked = s.bubble.insert({ supabase_id: "listings:l1", Title: "Loft" }, "listing");
  const extra = s.bubble.insert({ supabase_id: "listings:l1", Title: "Loft" }, "listing");
  s.queue.linkTable.set("listings:l1", linked);
  // as bubble_sync.enqueue_delete_duplicate queues it, and the claim hands it out (bubble_id: the link)
  s.queue.add(
    listingRow("l1", {}, {
      operation: "DELETE",
      bubble_id: linked,
      payload: { bubble_sync_duplicate: extra },
    }),
  );
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted"), { completed: 1, deleted: 1 });
  assertEquals(routes(s), [`DELETE listing/${extra}`]); // onDelete set (a soft delete) is for the record's thing
  assertEquals(s.bubble.things.has(linked), true);
  assertEquals(s.bubble.things.has(extra), false);
  assertEquals(s.queue.byRecord("l1").bubble_id, extra);
  assertEquals(s.queue.linkTable.get("listings:l1"), linked);
});

Deno.test("DELETE of a duplicate that is the record's linked thing now keeps it; one already gone completes", async () => {
  const s = mappedSetup();
  const linked = s.bubble.insert({ supabase_id: "profiles:7" });
  s.queue.linkTable.set("profiles:7", linked);
  s.queue.add({
    record_id: "7",
    operation: "DELETE",
    bubble_id: linked,
    payload: { bubble_sync_duplicate: linked },
  });
  s.queue.add({ record_id: "8", operation: "DELETE", payload: { bubble_sync_duplicate: "x-gone" } });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted", "failed"), { completed: 2, deleted: 0, failed: 0 });
  assertEquals(routes(s), ["DELETE user/x-gone"]);
  assertEquals(s.bubble.things.has(linked), true);
  assertEquals(
    s.queue.byRecord("7").error_message,
    `Bubble user ${linked} is the thing profiles:7 is linked to now, not a duplicate: kept`,
  );
  assertEquals(
    s.queue.byRecord("8").error_message,
    "Bubble user x-gone, a duplicate of profiles:8, was already gone",
  );
  assertEquals(s.queue.linkTable.get("profiles:7"), linked);
});

Deno.test("DELETE of a duplicate that Bubble fails (5xx) is retried, naming the thing", async () => {
  const s = mappedSetup();
  s.queue.add({ record_id: "7", operation: "DELETE", payload: { bubble_sync_duplicate: "i7" } });
  s.bubble.fault("DELETE", () => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), 1, "/i7");
  assertEquals((await runWait(s)).failed, 1);
  assertEquals(
    s.queue.byRecord("7").error_message,
    "deleting duplicate i7: Bubble answered 503 SERVICE_UNAVAILABLE: down",
  );
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

// deno test for rows of mapped tables (docs/mappings.md, "How it reaches Bubble"): fields renamed, the
// mapping's data type and key field, INSERTs of records the database links to a thing, values Bubble refuses.
// References are references_test.ts's, deletes deletes_test.ts's, backfilled rows backfill_test.ts's. The
// queue and Bubble are the fakes of fakes.ts: no database, no network.

import { assert, assertEquals, assertMatch, bubbleError, pick, runWait } from "./fakes.ts";
import { listingRow, mappedSetup, USERS } from "./mapping_fakes.ts";
import { bodyOf, routes } from "./support.ts";

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

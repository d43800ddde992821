// deno test for one row's Bubble calls (row_sync.ts): never a second Bubble record for a retried create, a
// used email recovered, UPDATEs, and rows that cannot be sent at all. The queue and Bubble are the fakes of
// fakes.ts: no database, no network.

import { assert, assertEquals, assertMatch, bubbleError, pick, post, runWait, setup } from "./fakes.ts";

// --- idempotency: never a second Bubble record ------------------------------------------------------------------

Deno.test("a retried create looks the thing up by its key first and completes with the found id", async () => {
  const s = setup();
  const existing = s.bubble.insert({ email: "a@example.com", supabase_id: "profiles:a" });
  s.queue.add({ record_id: "a", status: "failed", retry_count: 1 });
  await s.handler(post({ action: "retry_failed", wait: true }));
  assertEquals(s.queue.byRecord("a").bubble_id, existing);
  assertEquals(s.bubble.count("POST"), 0);
  const [search] = s.bubble.requests;
  assertEquals(search.constraints, [{ key: "supabase_id", constraint_type: "equals", value: "profiles:a" }]);
  assert(!search.viaCreateFetch);
});

Deno.test("a row retrying transient failures (no attempt used) is looked up before a create too", async () => {
  const s = setup({ BUBBLE_BULK_CREATE: "true" });
  const existing = s.bubble.insert({ email: "a@example.com", supabase_id: "profiles:a" });
  s.queue.add({ record_id: "a", status: "failed", failing_since: "2025-01-06T09:00:00Z" });
  s.queue.add({ record_id: "b", status: "failed", failing_since: "2025-01-06T09:00:00Z" });
  await s.handler(post({ action: "retry_failed", wait: true }));
  assertEquals(s.queue.byRecord("a").bubble_id, existing);
  assertEquals(s.bubble.requests.map((r) => r.method), ["GET", "GET", "POST"]); // no bulk call for retries
  assertEquals(s.bubble.things.size, 2);
});

Deno.test("a retried create that finds nothing creates once", async () => {
  const s = setup();
  s.queue.add({ record_id: "a", status: "failed", retry_count: 2 });
  await s.handler(post({ action: "retry_failed", wait: true }));
  assertEquals(s.bubble.requests.map((r) => r.method), ["GET", "POST"]);
  assertEquals(s.bubble.things.size, 1);
  assertEquals(s.queue.byRecord("a").status, "completed");
});

Deno.test("a first create answered USED_EMAIL for our own record (a re-sent create) completes with it", async () => {
  const s = setup();
  const ours = s.bubble.insert({ email: "a@example.com", supabase_id: "profiles:a" });
  s.queue.add({ record_id: "a", payload: { email: "a@example.com" } });
  const summary = await runWait(s);
  assertEquals(summary.completed, 1);
  assertEquals(s.queue.byRecord("a").bubble_id, ours);
  assertEquals(s.bubble.things.size, 1);
  assertEquals(s.bubble.requests[1].constraints, [
    { key: "email", constraint_type: "equals", value: "a@example.com" },
  ]);
});

Deno.test("USED_EMAIL for a user made in Bubble links that user (fields and key) instead of failing", async () => {
  const s = setup();
  const theirs = s.bubble.insert({ email: "a@example.com", first_name: "Old" });
  s.queue.add({ record_id: "a", payload: { email: "a@example.com", first_name: "Ada" } });
  await runWait(s);
  assertEquals(s.queue.byRecord("a").bubble_id, theirs);
  assertEquals(s.bubble.things.get(theirs)!.supabase_id, "profiles:a");
  assertEquals(s.bubble.things.get(theirs)!.first_name, "Ada");
  assertEquals(s.bubble.requests.map((r) => r.method), ["POST", "GET", "PATCH"]);
});

Deno.test("USED_EMAIL by a user that belongs to another record fails permanently, saying whose", async () => {
  const s = setup();
  s.bubble.insert({ email: "a@example.com", supabase_id: "auth.users:zzz" });
  s.queue.add({ record_id: "a", payload: { email: "a@example.com" } });
  const summary = await runWait(s);
  assertEquals(summary.permanently_failed, 1);
  assertMatch(s.queue.byRecord("a").error_message!, /belongs to supabase_id "auth\.users:zzz"/);
  assertEquals(s.bubble.things.size, 1);
});

// Bubble documents the code USED_EMAIL but not the status or the body; the email lookup settles it each way.
for (
  const [name, refusal] of [
    [
      "400 with the code in the message",
      () => bubbleError(400, "INVALID_DATA", "USED_EMAIL: already exists"),
    ],
    ["400 in other words", () => bubbleError(400, "INVALID_DATA", "This email is already taken")],
    ["409", () => bubbleError(409, "CONFLICT", "conflict")],
    ["400 with no JSON body", () => new Response("Bad Request", { status: 400 })],
  ] as [string, () => Response][]
) {
  Deno.test(`a used email refused as ${name} links the user Bubble already has`, async () => {
    const s = setup();
    // a real user: the email under authentication.email.email (manual; captured responses)
    const theirs = s.bubble.insert({
      authentication: { email: { email: "A@example.com" } },
      first_name: "Old",
    });
    s.queue.add({ record_id: "a", payload: { email: "a@example.com", first_name: "Ada" } });
    s.bubble.fault("POST", refusal, 1);
    s.bubble.fault("GET", () => Response.json({ response: { results: [s.bubble.things.get(theirs)] } }), 1);
    const summary = await runWait(s);
    assertEquals(summary.completed, 1);
    assertEquals(s.queue.byRecord("a").bubble_id, theirs);
    assertEquals(s.bubble.things.get(theirs)!.supabase_id, "profiles:a");
    assertEquals(s.bubble.things.size, 1);
  });
}

Deno.test("a refusal that is not about the email keeps its message when no user has the email", async () => {
  const s = setup();
  s.queue.add({ record_id: "a", payload: { email: "a@example.com", nickname: "x" } });
  s.bubble.fault("POST", () => bubbleError(400, "INVALID_DATA", "Unrecognized field: nickname"), 1);
  const summary = await runWait(s);
  assertEquals(summary.permanently_failed, 1);
  assertMatch(
    s.queue.byRecord("a").error_message!,
    /^Bubble answered 400 INVALID_DATA: Unrecognized field: nickname$/,
  );
  assertEquals(s.bubble.requests.map((r) => r.method), ["POST", "GET"]);
});

Deno.test("a search that ignores the email constraint does not link someone else", async () => {
  const s = setup();
  s.bubble.insert({ authentication: { email: { email: "other@example.com" } } });
  s.queue.add({ record_id: "a", payload: { email: "a@example.com" } });
  s.bubble.fault("POST", () => bubbleError(400, "USED_EMAIL", "taken"), 1);
  s.bubble.fault("GET", () => Response.json({ response: { results: [...s.bubble.things.values()] } }), 1);
  const summary = await runWait(s);
  assertEquals(summary.failed, 1);
  assertMatch(s.queue.byRecord("a").error_message!, /no user with that email was found; retrying/);
  assertEquals(s.bubble.count("PATCH"), 0);
});

Deno.test("a 401 with Bubble's own body is described by its translation", async () => {
  const s = setup();
  s.queue.add({ record_id: "a" });
  s.bubble.fault(
    "POST",
    () =>
      Response.json({ error_class: "Unauthorized", args: {}, message: null, translation: "Bad token" }, {
        status: 401,
      }),
    1,
  );
  await runWait(s);
  assertMatch(s.queue.byRecord("a").error_message!, /Bubble answered 401: Unauthorized: Bad token/);
});

// --- UPDATE -----------------------------------------------------------------------------------------------------

for (const [setting, sent] of [[undefined, false], ["true", true]] as [string | undefined, boolean][]) {
  Deno.test(`UPDATE of a user ${sent ? "sends" : "leaves out"} email and password (BUBBLE_MODIFY_USER_CREDENTIALS=${setting})`, async () => {
    const s = setup({ BUBBLE_MODIFY_USER_CREDENTIALS: setting });
    const id = s.bubble.insert({ supabase_id: "profiles:a" });
    const payload = { email: "new@example.com", password: "pw-123456", first_name: "Grace" };
    s.queue.add({ record_id: "a", operation: "UPDATE", bubble_id: id, payload });
    await runWait(s);
    const body = JSON.parse(s.bubble.requests[0].body);
    assertEquals(body.first_name, "Grace");
    assertEquals("email" in body && "password" in body, sent);
    assertEquals("email" in body || "password" in body, sent);
  });
}

Deno.test("UPDATE with a bubble_id modifies that thing directly", async () => {
  const s = setup();
  const id = s.bubble.insert({ email: "a@example.com", supabase_id: "profiles:a", first_name: "Ada" });
  s.queue.add({ record_id: "a", operation: "UPDATE", bubble_id: id, payload: { first_name: "Grace" } });
  await runWait(s);
  assertEquals(s.bubble.requests.map((r) => [r.method, r.path]), [[
    "PATCH",
    `/version-test/api/1.1/obj/user/${id}`,
  ]]);
  assertEquals(s.bubble.things.get(id)!.first_name, "Grace");
  assertEquals(s.queue.byRecord("a").status, "completed");
});

Deno.test("UPDATE without a bubble_id finds the thing by its key, then modifies it", async () => {
  const s = setup();
  const id = s.bubble.insert({ email: "a@example.com", supabase_id: "profiles:a" });
  s.queue.add({ record_id: "a", operation: "UPDATE", payload: { first_name: "Grace" } });
  await runWait(s);
  assertEquals(s.bubble.requests.map((r) => r.method), ["GET", "PATCH"]);
  assertEquals(s.queue.byRecord("a").bubble_id, id);
  assertEquals(s.bubble.things.get(id)!.first_name, "Grace");
});

Deno.test("UPDATE of a thing Bubble does not have fails permanently with a clear message", async () => {
  const s = setup();
  s.queue.add({ record_id: "ghost", operation: "UPDATE", payload: { first_name: "Grace" } });
  const summary = await runWait(s);
  assertEquals(summary.permanently_failed, 1);
  assertEquals(
    s.queue.byRecord("ghost").error_message,
    'no Bubble user has supabase_id = "profiles:ghost" to modify (was its INSERT synced?)',
  );
  assertEquals(s.bubble.count("PATCH"), 0);
});

Deno.test("UPDATE whose stored bubble_id Bubble no longer has fails permanently with Bubble's message", async () => {
  const s = setup();
  s.queue.add({ record_id: "a", operation: "UPDATE", bubble_id: "gone", payload: {} });
  await runWait(s);
  assertMatch(s.queue.byRecord("a").error_message!, /^modifying gone: Bubble answered 404 MISSING_DATA/);
});

// --- rows that cannot be sent ----------------------------------------------------------------------------------

Deno.test("unknown operations and malformed payloads fail only their own row, without a request", async () => {
  const s = setup();
  s.queue.add({ record_id: "atomic", operation: "SIGNUP_ATOMIC" });
  s.queue.add({ record_id: "upsert", operation: "UPSERT" }); // a DELETE is a delete now (deletes_test.ts)
  s.queue.add({ record_id: "string", payload: "just text" });
  s.queue.add({ record_id: "array", payload: [1, 2] });
  s.queue.add({ record_id: "null", payload: null });
  s.queue.add({ record_id: "huge", payload: { bio: "x".repeat(1024 * 1024) } });
  s.queue.add({ record_id: "fine" });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 1, permanently_failed: 6 });
  assertEquals(s.bubble.requests.length, 1);
  assertMatch(s.queue.byRecord("atomic").error_message!, /unknown operation "SIGNUP_ATOMIC"/);
  assertMatch(
    s.queue.byRecord("upsert").error_message!,
    /^unknown operation "UPSERT": bubble_sync sends INSERT \(create\), UPDATE \(modify\) and DELETE$/,
  );
  assertMatch(s.queue.byRecord("string").error_message!, /payload must be a JSON object.*got string/);
  assertMatch(s.queue.byRecord("array").error_message!, /got an array/);
  assertMatch(s.queue.byRecord("null").error_message!, /got null/);
  assertMatch(s.queue.byRecord("huge").error_message!, /bytes, more than the 1048576/);
  for (const fail of s.queue.fails) assertEquals(fail.reason, { kind: "permanent" });
});

// deno test for what each class of Bubble's answers does to a row (verdicts.ts, status_kind.ts): created,
// retried, deferred without an attempt, failed for good, or the run paused. The queue and Bubble are the fakes
// of fakes.ts: no database, no network.

import {
  assert,
  assertEquals,
  assertMatch,
  bubbleError,
  COUNTS,
  hang,
  pick,
  post,
  runWait,
  setup,
  TOKEN,
} from "./fakes.ts";

// --- Bubble's answers, one class at a time --------------------------------------------------------------------

Deno.test("201: the thing is created with the payload and the external key, the row completed with its id", async () => {
  const s = setup();
  s.queue.add({ record_id: "42", payload: { email: "ada@example.com", first_name: "Ada" } });
  await runWait(s);
  const row = s.queue.byRecord("42");
  assertEquals(row.status, "completed");
  assertEquals(s.bubble.things.get(row.bubble_id!), {
    email: "ada@example.com",
    first_name: "Ada",
    supabase_id: "profiles:42",
    _id: row.bubble_id,
  });
  const [request] = s.bubble.requests;
  assertEquals([request.method, request.path, request.contentType], [
    "POST",
    "/version-test/api/1.1/obj/user",
    "application/json",
  ]);
  assertEquals(request.authorization, `Bearer ${TOKEN}`);
  assert(request.viaCreateFetch, "creates must go through the no-pool fetch");
});

Deno.test("type and key field come from config", async () => {
  const s = setup({ BUBBLE_DATA_TYPE: "member", BUBBLE_EXTERNAL_KEY_FIELD: "External ID" });
  s.bubble.overrides.push((request) => {
    assertEquals(request.path, "/version-test/api/1.1/obj/member");
    assertEquals(JSON.parse(request.body)["External ID"], "profiles:7");
    return Response.json({ status: "success", id: "m1" }, { status: 201 });
  });
  s.queue.add({ record_id: "7" });
  assertEquals((await runWait(s)).completed, 1);
  assertEquals(s.queue.byRecord("7").bubble_id, "m1");
});

Deno.test("5xx is retryable: no attempt used, the message is kept, the row waits for retry_failed", async () => {
  const s = setup();
  s.queue.add({ record_id: "a" });
  s.bubble.fault("POST", () => bubbleError(503, "SERVICE_UNAVAILABLE", "down for maintenance"));
  const summary = await runWait(s);
  assertEquals(pick(summary, ...COUNTS), {
    claimed: 1,
    completed: 0,
    failed: 1,
    deferred: 0,
    permanently_failed: 0,
  });
  const row = s.queue.byRecord("a");
  assertEquals([row.status, row.retry_count], ["failed", 0]);
  assert(row.failing_since !== null);
  assertEquals(row.error_message, "Bubble answered 503 SERVICE_UNAVAILABLE: down for maintenance");
  assertEquals(s.queue.fails[0].reason, { httpStatus: 503 });
});

Deno.test("a transient failure the queue gives up on (past the horizon) counts as permanently failed", async () => {
  const s = setup();
  s.queue.pastHorizon = true;
  s.queue.add({ record_id: "a", status: "failed", failing_since: "2025-01-05T09:00:00Z" });
  s.bubble.fault("GET", () => bubbleError(502, "BAD_GATEWAY", "proxy"));
  const summary = await s.handler(post({ action: "retry_failed", wait: true })).then((r) => r.json());
  assertEquals(pick(summary, "failed", "permanently_failed"), { failed: 0, permanently_failed: 1 });
});

Deno.test("429 passes Retry-After, uses no attempt, and the rest of the run waits instead of sending", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "1", BUBBLE_SYNC_BATCH_SIZE: "10" });
  for (const id of ["a", "b", "c"]) s.queue.add({ record_id: id });
  s.bubble.fault(
    "POST",
    () => bubbleError(429, "TOO_MANY_REQUESTS", "slow down", { "retry-after": "42" }),
    1,
  );
  const summary = await runWait(s);
  assertEquals(pick(summary, ...COUNTS, "stopped_by"), {
    claimed: 3,
    completed: 0,
    failed: 0,
    deferred: 3,
    permanently_failed: 0,
    stopped_by: "rate_limited",
  });
  assertEquals(s.bubble.requests.length, 1, "rows after the 429 must not be sent");
  assertEquals(s.queue.fails[0].reason, { httpStatus: 429 });
  assertEquals(s.queue.fails[0].retryAfterSeconds, 42);
  for (const id of ["a", "b", "c"]) {
    const row = s.queue.byRecord(id);
    assertEquals([row.status, row.retry_count], ["pending", 0]);
  }
  assertEquals(s.queue.byRecord("b").next_retry_at, 42);
});

Deno.test("429 with an HTTP-date Retry-After is turned into seconds", async () => {
  const s = setup({}, { now: () => Date.parse("2025-01-06T09:00:00Z") });
  s.queue.add({ record_id: "a" });
  s.bubble.fault(
    "POST",
    () => bubbleError(429, "TOO_MANY_REQUESTS", "x", { "retry-after": "Mon, 06 Jan 2025 09:01:30 GMT" }),
  );
  await runWait(s);
  assertEquals(s.queue.fails[0].retryAfterSeconds, 90);
});

Deno.test("a create slower than the timeout is retryable once Bubble can no longer be storing it", async () => {
  const s = setup({ BUBBLE_SYNC_HTTP_TIMEOUT_MS: "100", BUBBLE_SETTLE_SECONDS: "240" });
  s.queue.add({ record_id: "a" });
  s.bubble.fault("POST", hang);
  const started = performance.now();
  const summary = await runWait(s);
  assert(performance.now() - started < 2000, "the timeout did not cut the request");
  assertEquals(pick(summary, "failed"), { failed: 1 });
  assertEquals(s.queue.fails[0].reason, { httpStatus: null });
  assertEquals(s.queue.fails[0].retryAfterSeconds, 240); // the settle window: no lookup before then
  assertEquals(
    s.queue.byRecord("a").error_message,
    "Bubble did not answer the create within 100 ms (the create may still be stored: looked up again after 240 s)",
  );
});

Deno.test("a lookup slower than the timeout is retried without a settle window (nothing was sent)", async () => {
  const s = setup({ BUBBLE_SYNC_HTTP_TIMEOUT_MS: "100" });
  s.queue.add({ record_id: "a", status: "failed", failing_since: "2025-01-06T09:00:00Z" });
  s.bubble.fault("GET", hang);
  await s.handler(post({ action: "retry_failed", wait: true }));
  assertEquals(s.bubble.count("POST"), 0);
  assertEquals(s.queue.fails[0].retryAfterSeconds, null);
});

Deno.test("a network error is retryable", async () => {
  const s = setup();
  s.queue.add({ record_id: "a" });
  s.bubble.fault("POST", () => Promise.reject(new TypeError("error sending request: connection reset")));
  await runWait(s);
  assertEquals(s.queue.fails[0].reason, { httpStatus: null });
  assertMatch(s.queue.byRecord("a").error_message!, /connection reset/);
});

Deno.test("a 4xx fails only that row, for good, with Bubble's message", async () => {
  const s = setup();
  for (const id of ["a", "bad", "c"]) s.queue.add({ record_id: id });
  s.bubble.fault("POST", (request) => {
    if (!request.body.includes("profiles:bad")) return undefined;
    return bubbleError(400, "INVALID_DATA", "Unrecognized field: shoe_size");
  });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 2, permanently_failed: 1 });
  const bad = s.queue.byRecord("bad");
  assertEquals([bad.status, bad.retry_count], ["failed", 3]);
  assertEquals(bad.error_message, "Bubble answered 400 INVALID_DATA: Unrecognized field: shoe_size");
  assertEquals(s.queue.fails[0].reason, { httpStatus: 400 });
});

Deno.test("408 is retryable (classification by the queue's failure_kind)", async () => {
  const s = setup();
  s.queue.add({ record_id: "slow" });
  s.bubble.fault("POST", () => bubbleError(408, "REQUEST_TIMEOUT", "t"));
  const summary = await runWait(s);
  assertEquals(pick(summary, "failed", "permanently_failed"), { failed: 1, permanently_failed: 0 });
});

Deno.test("a refused token (401/403) pauses the run and uses no attempt", async () => {
  for (const status of [401, 403]) {
    const s = setup();
    for (const id of ["a", "b", "c"]) s.queue.add({ record_id: id });
    s.bubble.fault("POST", () => bubbleError(status, "UNAUTHORIZED", "token revoked"));
    const summary = await runWait(s);
    assertEquals(pick(summary, "failed", "permanently_failed"), { failed: 0, permanently_failed: 0 });
    assertEquals(pick(summary, "deferred", "stopped_by"), { deferred: 3, stopped_by: "token_refused" });
    // the queue's failure_kind decides the row's fate from the status; the message names the real cause
    assertEquals(s.queue.fails[0].reason, { httpStatus: status });
    for (const id of ["a", "b", "c"]) {
      assertEquals(s.queue.byRecord(id).retry_count, 0);
      assertMatch(s.queue.byRecord(id).error_message ?? "", /^refused token: .*Bubble refused the API token/);
    }
  }
});

Deno.test("a row without a record id fails for good without a request", async () => {
  const s = setup();
  s.queue.add({ record_id: "" });
  s.queue.add({ record_id: "ok" });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 1, permanently_failed: 1 });
  assertEquals(s.bubble.count("POST"), 1);
});

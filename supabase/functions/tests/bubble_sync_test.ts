// deno test for the bubble_sync handler: no database, no network. The queue is an in-memory fake that follows
// sql/functions/lease.sql; Bubble is a fake `fetch` holding things in memory. Both record every call (fakes.ts).
//
//   deno test --config supabase/functions/deno.json supabase/functions/tests/

import { autoConcurrency, PARALLEL_RUNS, runsWanted } from "../bubble_sync/sizing.ts";
import { loadConfig } from "../bubble_sync/config.ts";
import { SETTINGS } from "../bubble_sync/settings.ts";
import { PostgresQueue } from "../bubble_sync/postgres_queue.ts";
import { VerdictBatcher } from "../bubble_sync/verdict_batcher.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  BASE,
  BASE_ENV,
  bubbleError,
  COUNTS,
  DB_PASSWORD,
  hang,
  LEGACY_KEY,
  type Override,
  pick,
  post,
  runWait,
  SECRET_KEY,
  type Setup,
  setup,
  TOKEN,
} from "./fakes.ts";

// --- authentication ----------------------------------------------------------------------------------------

Deno.test("a POST without a credential is 401 and touches nothing", async () => {
  const s = setup();
  s.queue.add({ record_id: "a" });
  const response = await s.handler(post({ action: "process_queue_data_api", wait: true }, {}));
  assertEquals(response.status, 401);
  assertEquals((await response.json()).error, "unauthorized");
  assertEquals(s.queue.claims.length, 0);
});

Deno.test("a wrong key, a key as the wrong scheme, or a key's prefix is 401", async () => {
  const s = setup();
  for (
    const headers of <Record<string, string>[]> [
      { authorization: "Bearer sb_secret_wrong" },
      { authorization: `Basic ${SECRET_KEY}` },
      { authorization: `Bearer ${SECRET_KEY.slice(0, -1)}` },
      { authorization: `Bearer ${SECRET_KEY}x` },
      { apikey: "nope" },
      { authorization: "Bearer " },
    ]
  ) {
    const response = await s.handler(post({ action: "process_queue_data_api" }, headers));
    assertEquals(response.status, 401, JSON.stringify(headers));
  }
  assertEquals(s.queue.claims.length, 0);
});

Deno.test("the legacy service role JWT, a new sb_secret key, and the apikey header are accepted", async () => {
  for (
    const headers of <Record<string, string>[]> [
      { authorization: `Bearer ${LEGACY_KEY}` },
      { authorization: `bearer ${SECRET_KEY}` },
      { apikey: SECRET_KEY },
      { authorization: "Bearer some-user-jwt", apikey: SECRET_KEY },
    ]
  ) {
    const s = setup();
    const response = await s.handler(post({ action: "process_queue_data_api", wait: true }, headers));
    assertEquals(response.status, 200, JSON.stringify(headers));
  }
});

Deno.test("only the new secret keys: the legacy key is absent and other SUPABASE_SECRET_KEYS entries work", async () => {
  const s = setup({
    SUPABASE_SERVICE_ROLE_KEY: undefined,
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY, rotated: "sb_secret_rotated_key_123" }),
  });
  const ok = await s.handler(
    post({ action: "retry_failed", wait: true }, { authorization: "Bearer sb_secret_rotated_key_123" }),
  );
  assertEquals(ok.status, 200);
  const legacy = await s.handler(post({ action: "retry_failed" }, { authorization: `Bearer ${LEGACY_KEY}` }));
  assertEquals(legacy.status, 401);
});

Deno.test("no key configured, or unreadable SUPABASE_SECRET_KEYS, is a 500 naming the variable", async () => {
  const none = setup({ SUPABASE_SERVICE_ROLE_KEY: undefined, SUPABASE_SECRET_KEYS: undefined });
  const r1 = await none.handler(post({ action: "process_queue_data_api" }));
  assertEquals(r1.status, 500);
  assertEquals((await r1.json()).variable, "SUPABASE_SERVICE_ROLE_KEY");

  const broken = setup({ SUPABASE_SECRET_KEYS: `{"default": "${SECRET_KEY}"` });
  const r2 = await broken.handler(post({ action: "process_queue_data_api" }));
  const body = await r2.text();
  assertEquals(r2.status, 500);
  assertMatch(body, /SUPABASE_SECRET_KEYS/);
  assert(!body.includes(SECRET_KEY), "the key leaked into the answer");
});

// --- methods, bodies, configuration ------------------------------------------------------------------------

Deno.test("GET is a liveness answer without credential, I/O or secrets", async () => {
  const s = setup();
  const response = await s.handler(new Request("http://localhost/bubble_sync"));
  assertEquals(response.status, 200);
  assertEquals(await response.json(), { status: "ok", function: "bubble_sync" });
  assertEquals(s.queue.claims.length + s.bubble.requests.length, 0);
});

Deno.test("GET ?check=deep needs the credential and checks config and database", async () => {
  const s = setup();
  const url = "http://localhost/bubble_sync?check=deep";
  assertEquals((await s.handler(new Request(url))).status, 401);
  const auth = { headers: { authorization: `Bearer ${SECRET_KEY}` } };
  const ok = await s.handler(new Request(url, auth));
  assertEquals(await ok.json(), { status: "ok", function: "bubble_sync", config: "ok", database: "ok" });

  s.queue.claimError = new Error(`password authentication failed (${DB_PASSWORD})`);
  const down = await s.handler(new Request(url, auth));
  const text = await down.text();
  assertEquals(down.status, 503);
  assert(!text.includes(DB_PASSWORD), text);

  const unconfigured = setup({ BUBBLE_API_TOKEN: undefined });
  const bad = await unconfigured.handler(new Request(url, auth));
  assertEquals(bad.status, 503);
  assertMatch((await bad.json()).config, /BUBBLE_API_TOKEN/);
});

Deno.test("methods other than GET and POST are 405", async () => {
  const s = setup();
  for (const method of ["PUT", "PATCH", "DELETE", "OPTIONS"]) {
    const response = await s.handler(new Request("http://localhost/bubble_sync", { method }));
    assertEquals(response.status, 405, method);
    assertEquals(response.headers.get("allow"), "GET, POST");
  }
});

Deno.test("bad JSON, an unknown action, a bad limit or wait is 400", async () => {
  const s = setup();
  for (
    const body of [
      "not json",
      "",
      "[1]",
      { action: "sync_everything" },
      {},
      { action: "retry_failed", limit: 0 },
      { action: "retry_failed", limit: 2.5 },
      { action: "retry_failed", limit: "10" },
      { action: "retry_failed", wait: "yes" },
    ]
  ) {
    const response = await s.handler(post(body));
    assertEquals(response.status, 400, JSON.stringify(body));
    assertEquals((await response.json()).error, "bad_request");
  }
  assertEquals(s.queue.claims.length, 0);
});

Deno.test("missing or invalid config is a 500 naming the variable, never its value, and no work", async () => {
  const cases: [Record<string, string | undefined>, string][] = [
    [{ BUBBLE_API_TOKEN: undefined }, "BUBBLE_API_TOKEN"],
    [{ BUBBLE_BASE_URL: undefined }, "BUBBLE_BASE_URL"],
    [{ BUBBLE_BASE_URL: "https://app.example.com/api/1.0" }, "BUBBLE_BASE_URL"],
    [{ BUBBLE_BASE_URL: `https://user:${TOKEN}@app.example.com/api/1.1` }, "BUBBLE_BASE_URL"],
    [{ SUPABASE_DB_URL: undefined }, "SUPABASE_DB_URL"],
    [{ BUBBLE_SYNC_BATCH_SIZE: "lots" }, "BUBBLE_SYNC_BATCH_SIZE"],
    [{ BUBBLE_SYNC_BATCH_SIZE: "1001" }, "BUBBLE_SYNC_BATCH_SIZE"],
    [{ BUBBLE_SYNC_CONCURRENCY: "-1" }, "BUBBLE_SYNC_CONCURRENCY"],
    [{ BUBBLE_SYNC_HTTP_TIMEOUT_MS: "60000" }, "BUBBLE_SYNC_HTTP_TIMEOUT_MS"], // 4 x 60 s > 180 s lease
    [{ BUBBLE_BULK_CREATE: "maybe" }, "BUBBLE_BULK_CREATE"],
    [{ BUBBLE_DATA_TYPE: "user/../admin" }, "BUBBLE_DATA_TYPE"],
  ];
  for (const [env, variable] of cases) {
    const s = setup(env);
    s.queue.add({ record_id: "a" });
    const response = await s.handler(post({ action: "process_queue_data_api", wait: true }));
    const text = await response.text();
    assertEquals(response.status, 500, variable);
    assertEquals(JSON.parse(text).variable, variable);
    assert(!text.includes(TOKEN), `token leaked: ${text}`);
    for (const value of Object.values(env)) {
      if (value && value.length >= 4) assert(!text.includes(value), `value leaked: ${text}`);
    }
    assertEquals(s.queue.claims.length, 0);
  }
});

// --- answering: 202 now, or the summary ---------------------------------------------------------------------

Deno.test("by default the answer is 202 at once and the work goes to EdgeRuntime.waitUntil", async () => {
  const background: Promise<unknown>[] = [];
  const s = setup({}, { waitUntil: (work) => background.push(work) });
  s.queue.add({ record_id: "a" });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  s.bubble.fault("POST", async () => {
    await gate; // Bubble is slow: the answer must not wait for it
    return undefined;
  }, 1);
  const response = await s.handler(post({ action: "process_queue_data_api" }));
  assertEquals(response.status, 202);
  assertEquals(await response.json(), { accepted: true, action: "process_queue_data_api" });
  assertEquals(background.length, 1);
  assertEquals(s.queue.byRecord("a").status, "processing");
  release();
  await Promise.all(background);
  assertEquals(s.queue.byRecord("a").status, "completed");
  assertEquals(s.logs.length, 1);
});

Deno.test("without EdgeRuntime the work is awaited before the 202", async () => {
  const s = setup();
  s.queue.add({ record_id: "a" });
  const response = await s.handler(post({ action: "process_queue_data_api" }));
  assertEquals(response.status, 202);
  assertEquals(s.queue.byRecord("a").status, "completed");
});

Deno.test("wait:true answers 200 with the summary, and one log line per run", async () => {
  const s = setup({ BUBBLE_SYNC_BATCH_SIZE: "2" });
  for (const id of ["a", "b", "c"]) s.queue.add({ record_id: id });
  const summary = await runWait(s);
  assertEquals(pick(summary, "action", ...COUNTS, "lease_lost", "bubble_requests", "stopped_by"), {
    action: "process_queue_data_api",
    claimed: 3,
    completed: 3,
    failed: 0,
    deferred: 0,
    permanently_failed: 0,
    lease_lost: 0,
    bubble_requests: 3,
    stopped_by: "drained",
  });
  assertEquals(typeof summary.duration_ms, "number");
  // claims of 2, 2, 2: the second came back short, but its row completed (it may have released rows held
  // behind it), so the run claimed once more and found nothing
  assertEquals(s.queue.claims.map((c) => c.limit), [2, 2, 2]);
  assertEquals(s.queue.claims[0].leaseSeconds, 180);
  assertEquals(s.logs.length, 1);
  assertEquals(JSON.parse(s.logs[0]).event, "bubble_sync.run");
});

Deno.test("limit caps the rows a run claims", async () => {
  const s = setup({ BUBBLE_SYNC_BATCH_SIZE: "3" });
  for (const id of ["a", "b", "c", "d", "e"]) s.queue.add({ record_id: id });
  const summary = await runWait(s, { limit: 4 });
  assertEquals(pick(summary, "claimed", "completed", "stopped_by"), {
    claimed: 4,
    completed: 4,
    stopped_by: "limit",
  });
  assertEquals(s.queue.claims.map((c) => c.limit), [3, 1]);
});

Deno.test("retry_failed claims with its own action", async () => {
  const s = setup();
  s.queue.add({ record_id: "a", status: "failed", retry_count: 1 });
  const response = await s.handler(post({ action: "retry_failed", wait: true }));
  assertEquals((await response.json()).completed, 1);
  assertEquals(s.queue.claims[0].action, "retry_failed");
});

Deno.test("a database failure is a 500 with the reason, without the password", async () => {
  const s = setup();
  s.queue.claimError = new Error(`connection to postgresql://postgres:${DB_PASSWORD}@db refused`);
  const response = await s.handler(post({ action: "process_queue_data_api", wait: true }));
  const text = await response.text();
  assertEquals(response.status, 500);
  assertEquals(JSON.parse(text).error, "run_failed");
  assert(!text.includes(DB_PASSWORD) && !s.logs.join("\n").includes(DB_PASSWORD), text);
});

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
  s.queue.add({ record_id: "upsert", operation: "UPSERT" }); // a DELETE is a delete now (mappings_test.ts)
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

// --- bulk --------------------------------------------------------------------------------------------------------

Deno.test("bulk: first-attempt creates go in one NDJSON call, each line mapped to its row", async () => {
  const s = setup({ BUBBLE_BULK_CREATE: "true" });
  for (const id of ["a", "b", "c"]) s.queue.add({ record_id: id });
  s.queue.add({ record_id: "u", operation: "UPDATE", payload: { first_name: "x" } }); // not in the bulk call
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 3, permanently_failed: 1 });
  const bulk = s.bubble.requests.filter((r) => r.path.endsWith("/bulk"));
  assertEquals(bulk.length, 1);
  assertEquals(bulk[0].contentType, "text/plain");
  assert(bulk[0].viaCreateFetch);
  assertEquals(bulk[0].body.split("\n").map((line) => JSON.parse(line).supabase_id), [
    "profiles:a",
    "profiles:b",
    "profiles:c",
  ]);
  assertEquals(s.bubble.count("POST", "/user"), 0, "no single creates");
  for (const id of ["a", "b", "c"]) {
    const row = s.queue.byRecord(id);
    assertEquals(s.bubble.things.get(row.bubble_id!)!.supabase_id, `profiles:${id}`);
  }
});

Deno.test("bulk: a refused line is sent again alone and classified by its own status; the others complete", async () => {
  const s = setup({ BUBBLE_BULK_CREATE: "true" });
  for (const id of ["a", "bad", "c"]) s.queue.add({ record_id: id });
  s.bubble.fault(
    "POST",
    (request) => {
      const lines = request.body.split("\n");
      return new Response(
        lines.map((line, i) =>
          line.includes("profiles:bad")
            ? JSON.stringify({ status: "error", message: "Unrecognized field: shoe_size" })
            : JSON.stringify({ status: "success", id: `id-${i}` })
        ).join("\n"),
        { status: 200, headers: { "content-type": "text/plain" } },
      );
    },
    1,
    "/bulk",
  );
  s.bubble.fault("POST", () => bubbleError(400, "INVALID_DATA", "Unrecognized field: shoe_size"), 1, "/user");
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "permanently_failed"), { completed: 2, permanently_failed: 1 });
  assertEquals(s.queue.byRecord("a").bubble_id, "id-0");
  assertEquals(s.queue.byRecord("c").bubble_id, "id-2");
  assertEquals(
    s.queue.byRecord("bad").error_message,
    "Bubble answered 400 INVALID_DATA: Unrecognized field: shoe_size",
  );
});

Deno.test("bulk: a line that is missing or unreadable is retryable (the retry looks before creating)", async () => {
  const s = setup({ BUBBLE_BULK_CREATE: "true" });
  for (const id of ["a", "b"]) s.queue.add({ record_id: id });
  s.bubble.fault("POST", () => new Response('{"status":"success","id":"x1"}\n', { status: 200 }), 1, "/bulk");
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "failed"), { completed: 1, failed: 1 });
  assertEquals(s.queue.fails[0].reason, { httpStatus: null });
  assertEquals(s.queue.fails[0].retryAfterSeconds, 300); // Bubble may still store it: the default window
});

Deno.test("bulk: a failed call fails every row by its status; 429 defers them all", async () => {
  // the last column: the wait each row is given; only a call left unanswered may still be stored at Bubble,
  // so it alone waits for the settle window
  for (
    const [answer, expected, wait] of [
      [() => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), { failed: 2, deferred: 0 }, null],
      [() => bubbleError(429, "TOO_MANY_REQUESTS", "wait", { "retry-after": "7" }), {
        failed: 0,
        deferred: 2,
      }, 7],
      [hang, { failed: 2, deferred: 0 }, 300],
    ] as [Override, Record<string, number>, number | null][]
  ) {
    // a bulk call has its own timeout (BUBBLE_BULK_TIMEOUT_SECONDS), not the single request's
    const s = setup({ BUBBLE_BULK_CREATE: "true", BUBBLE_BULK_TIMEOUT_SECONDS: "1" });
    for (const id of ["a", "b"]) s.queue.add({ record_id: id });
    s.bubble.fault("POST", answer, 1, "/bulk");
    const summary = await runWait(s);
    assertEquals(pick(summary, "failed", "deferred"), expected);
    if (answer === hang) assertMatch(s.queue.fails[0].error, /did not answer the bulk create within 1000 ms/);
    assertEquals(s.bubble.requests.length, 1);
    assertEquals(s.queue.fails.map((f) => f.retryAfterSeconds), [wait, wait]);
  }
});

Deno.test("bulk: a 400 for the whole call sends each row alone", async () => {
  const s = setup({ BUBBLE_BULK_CREATE: "true" });
  for (const id of ["a", "b"]) s.queue.add({ record_id: id });
  s.bubble.fault("POST", () => bubbleError(400, "INVALID_DATA", "line 2 is not valid JSON"), 1, "/bulk");
  const summary = await runWait(s);
  assertEquals(summary.completed, 2);
  assertEquals(s.bubble.count("POST", "/user"), 2);
});

Deno.test("bulk: a call carries no more lines than Bubble can finish within its timeout", async () => {
  // manual: up to 4 minutes for 1,000 lines, so 240 ms a line: a 1 s timeout fits 4 lines
  const s = setup({ BUBBLE_BULK_CREATE: "true", BUBBLE_BULK_TIMEOUT_SECONDS: "1" });
  for (let i = 0; i < 10; i++) s.queue.add({ record_id: `r${i}` });
  const summary = await runWait(s);
  assertEquals(summary.completed, 10);
  const sizes = s.bubble.requests.filter((r) => r.path.endsWith("/bulk")).map((r) =>
    r.body.split("\n").length
  );
  assertEquals(sizes, [4, 4, 2]);
});

Deno.test("bulk: the time budget bounds a bulk call's timeout and its size", async () => {
  // 2 s of budget left: a call of at most 8 lines, given at most 2 s, though the bulk timeout is 240 s
  const s = setup({ BUBBLE_BULK_CREATE: "true", BUBBLE_SYNC_TIME_BUDGET_MS: "2000" });
  for (let i = 0; i < 10; i++) s.queue.add({ record_id: `r${i}` });
  s.bubble.fault("POST", hang, 1, "/bulk");
  await runWait(s);
  const first = s.bubble.requests.find((r) => r.path.endsWith("/bulk"))!;
  assertEquals(first.body.split("\n").length, 8);
  assertMatch(s.queue.fails[0].error, /within (1\d{3}|2000) ms/);
});

Deno.test("bulk: one error line for a whole call is a failure of the call, retried after the settle window", async () => {
  // manual: a capacity or system failure gives one error, no per-line results
  const s = setup({ BUBBLE_BULK_CREATE: "true" });
  for (const id of ["a", "b", "c"]) s.queue.add({ record_id: id });
  s.bubble.fault(
    "POST",
    () =>
      new Response(JSON.stringify({ status: "error", message: "capacity exceeded" }), {
        status: 200,
        headers: { "content-type": "text/plain" },
      }),
    1,
    "/bulk",
  );
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "failed"), { completed: 0, failed: 3 });
  assertEquals(s.bubble.count("POST", "/user"), 0, "no line was sent alone as if it alone had been refused");
  assertMatch(s.queue.fails[0].error, /failed the bulk create of 3 lines as a whole: capacity exceeded/);
  assertEquals(s.queue.fails.map((f) => f.retryAfterSeconds), [300, 300, 300]);
});

Deno.test("bulk: retried rows and a lone create do not use the bulk endpoint", async () => {
  const s = setup({ BUBBLE_BULK_CREATE: "true" });
  s.queue.add({ record_id: "a" });
  s.queue.add({ record_id: "r", status: "failed", retry_count: 1 });
  await runWait(s);
  assertEquals(s.bubble.count("POST", "/bulk"), 0);
});

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

// --- time, leases, logs ----------------------------------------------------------------------------------------

Deno.test("the time budget stops claiming", async () => {
  const s = setup({ BUBBLE_SYNC_BATCH_SIZE: "2", BUBBLE_SYNC_TIME_BUDGET_MS: "120000" });
  for (let i = 0; i < 20; i++) s.queue.add({ record_id: `r${i}` });
  s.queue.onComplete = () => (s.clock.now += 25_000); // a batch of two "takes" 50 s
  const summary = await runWait(s);
  // claims at 0 s, 50 s and 100 s; at 150 s the budget (120 s) is spent
  assertEquals(pick(summary, "claimed", "completed", "stopped_by"), {
    claimed: 6,
    completed: 6,
    stopped_by: "time_budget",
  });
  assertEquals(s.queue.claims.length, 3);
});

Deno.test("a run stops at its row budget and has the next run invoked at once", async () => {
  // BUBBLE_SYNC_ROWS_PER_RUN: what fits in the CPU time a worker leaves an invocation
  const s = setup({ BUBBLE_SYNC_BATCH_SIZE: "2", BUBBLE_SYNC_ROWS_PER_RUN: "5" });
  for (let i = 0; i < 9; i++) s.queue.add({ record_id: `r${i}` });
  const summary = await runWait(s);
  assertEquals(pick(summary, "claimed", "completed", "stopped_by", "runs_invoked"), {
    claimed: 5,
    completed: 5,
    stopped_by: "row_budget",
    runs_invoked: 1,
  });
  assertEquals(s.queue.claims.map((c) => c.limit), [2, 2, 1]);
  assertEquals(s.queue.wakes, ["process_queue_data_api"]);
  assertEquals(s.queue.runsGoing.size, 0, "the run ended its registration");
  const drained = await runWait(s);
  assertEquals(pick(drained, "claimed", "stopped_by", "runs_invoked"), {
    claimed: 4,
    stopped_by: "drained",
    runs_invoked: 0,
  });
  assertEquals(s.queue.wakes.length, 1, "a drained run wakes nobody");
  assertEquals(s.queue.fanOuts.at(-1)?.wanted, 0);
});

Deno.test("without a rate to keep busy one run carries the backlog: no run is invoked beside it", async () => {
  const s = setup({ BUBBLE_RATE_LIMIT_PER_MINUTE: "0" });
  for (let i = 0; i < 60; i++) s.queue.add({ record_id: `r${i}` }); // a full claim of 50, then 10
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "stopped_by", "runs_invoked"), {
    completed: 60,
    stopped_by: "drained",
    runs_invoked: 0,
  });
  assertEquals(s.queue.fanOuts.map((f) => f.wanted), [0], "only the end, asking for none");
});

Deno.test("a backlog at a high rate is shared by parallel runs, as many as the rate needs", async () => {
  // Team's 35,000/min at the assumed 250 ms: 182 requests in flight, 25 a run (half a batch of 50): 8 runs.
  const s = setup({ BUBBLE_RATE_LIMIT_PER_MINUTE: "35000", BUBBLE_SYNC_ROWS_PER_RUN: "100" });
  for (let i = 0; i < 1000; i++) s.queue.add({ record_id: `r${i}` });
  const summary = await runWait(s);
  assertEquals(s.queue.fanOuts[0], {
    action: "process_queue_data_api",
    wanted: 8,
    rowsPerRun: 50,
    endingRun: undefined,
  });
  assertEquals(summary.stopped_by, "row_budget");
  assertEquals(summary.runs_invoked, 7, "7 beside this one, and no successor: 7 are still going");
  assertEquals(s.queue.wakes.length, 7);
});

Deno.test("a fixed concurrency is all the requests in flight: one run at a time", async () => {
  const s = setup({
    BUBBLE_RATE_LIMIT_PER_MINUTE: "35000",
    BUBBLE_SYNC_CONCURRENCY: "5",
    BUBBLE_SYNC_ROWS_PER_RUN: "100",
  });
  for (let i = 0; i < 1000; i++) s.queue.add({ record_id: `r${i}` });
  const summary = await runWait(s);
  assertEquals(pick(summary, "stopped_by", "runs_invoked"), { stopped_by: "row_budget", runs_invoked: 1 });
  assertEquals(
    s.queue.fanOuts.map((f) => f.wanted),
    [1],
    "its successor, asked for as it claimed its last rows",
  );
});

Deno.test("a run whose successor cannot be invoked finishes its rows and says why", async () => {
  const s = setup({ BUBBLE_SYNC_ROWS_PER_RUN: "2" });
  for (let i = 0; i < 3; i++) s.queue.add({ record_id: `r${i}` });
  s.queue.fanOutError = new Error(`bubble_sync: Vault secret "supabase_url" is missing (token ${TOKEN})`);
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "stopped_by", "runs_invoked"), {
    completed: 2,
    stopped_by: "row_budget",
    runs_invoked: 0,
  });
  const error = String(summary.invoke_error);
  assert(error.includes('Vault secret "supabase_url" is missing'), error);
  assert(!error.includes(TOKEN), "the summary is redacted");
});

Deno.test("runsWanted follows the rate and Bubble's answer time", () => {
  assertEquals(runsWanted(1000, 150, 50), 1); // the legacy limit: 4 requests in flight
  assertEquals(runsWanted(15_000, 150, 50), 2); // Starter: 47 in flight, 25 a run
  assertEquals(runsWanted(25_000, 150, 50), 4); // Growth: 79
  assertEquals(runsWanted(35_000, 150, 50), 5); // Team: 110
  assertEquals(runsWanted(35_000, 2000, 50), PARALLEL_RUNS.most); // a slow Bubble: bounded
  assertEquals(runsWanted(35_000, 150, 500), 1); // a big batch keeps enough in flight in one run
  assertEquals(runsWanted(0, 150, 50), 1); // no rate limit: one run
});

Deno.test("rows whose turn comes after the budget go back to pending unsent, without using an attempt", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "1", BUBBLE_SYNC_TIME_BUDGET_MS: "10000" });
  for (const id of ["a", "b", "c"]) s.queue.add({ record_id: id });
  s.bubble.fault("POST", () => {
    s.clock.now += 20_000; // the first create takes 20 s
    return undefined;
  });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deferred", "stopped_by"), {
    completed: 1,
    deferred: 2,
    stopped_by: "time_budget",
  });
  assertEquals(s.bubble.requests.length, 1);
  for (const id of ["b", "c"]) {
    assertEquals([s.queue.byRecord(id).status, s.queue.byRecord(id).retry_count], ["pending", 0]);
    assertMatch(s.queue.byRecord(id).error_message ?? "", /^time budget: not sent/);
  }
});

Deno.test("a claim that answers too late for its lease hands the rows back and the run claims them again", async () => {
  const s = setup({ BUBBLE_SYNC_LEASE_SECONDS: "30", BUBBLE_SYNC_TIME_BUDGET_MS: "120000" });
  for (const id of ["a", "b"]) s.queue.add({ record_id: id });
  const claim = s.queue.claim.bind(s.queue);
  let first = true;
  s.queue.claim = (...args) => {
    if (first) s.clock.now += 40_000; // the database was slow to answer the first claim: its lease is spent
    first = false;
    return claim(...args);
  };
  const summary = await runWait(s);
  assertEquals(pick(summary, "claimed", "completed", "deferred", "stopped_by"), {
    claimed: 4,
    completed: 2,
    deferred: 2,
    stopped_by: "drained",
  });
  assertEquals(s.bubble.requests.length, 2, "nothing was sent under the late lease");
  assertMatch(s.queue.fails[0].error, /^time budget: not sent, the row's lease would have run out/);
});

Deno.test("a verdict refused because the lease was lost is counted, not retried", async () => {
  const s = setup();
  s.queue.add({ record_id: "a" });
  s.queue.loseLeases = true;
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "lease_lost"), { completed: 0, lease_lost: 1 });
});

/** Creates take 5 ms at the fake Bubble; `most` is the most that were in flight at once. */
function countCreatesInFlight(s: Setup): { most: number } {
  const counter = { most: 0 };
  let inFlight = 0;
  s.bubble.fault("POST", async () => {
    counter.most = Math.max(counter.most, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight--;
    return undefined;
  });
  return counter;
}

Deno.test("bounded concurrency: never more Bubble requests in flight than BUBBLE_SYNC_CONCURRENCY", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "3", BUBBLE_SYNC_BATCH_SIZE: "20" });
  for (let i = 0; i < 12; i++) s.queue.add({ record_id: `r${i}` });
  const inFlight = countCreatesInFlight(s);
  assertEquals((await runWait(s)).completed, 12);
  assertEquals(inFlight.most, 3);
});

Deno.test("no token, key or password in logs, answers or stored messages, even when Bubble echoes them", async () => {
  const s = setup();
  s.queue.add({ record_id: "a" });
  s.bubble.fault("POST", () => bubbleError(400, "INVALID_DATA", `bad request with token ${TOKEN}`));
  const response = await s.handler(post({ action: "process_queue_data_api", wait: true }));
  const everything = [await response.text(), ...s.logs, ...s.queue.rows.map((r) => r.error_message)].join(
    "\n",
  );
  for (const secret of [TOKEN, SECRET_KEY, LEGACY_KEY, DB_PASSWORD]) {
    assert(!everything.includes(secret), `a secret leaked: ${everything}`);
  }
  assertMatch(s.queue.byRecord("a").error_message!, /\[redacted\]/);
  assertEquals(s.logs.length, 1);
  assert(!s.logs[0].includes("example.com"), "payload fields must not be logged");
});

// --- Bubble's gate: the circuit breaker and the pacing every worker shares (sql/functions/gate.sql) -----------

Deno.test("while the breaker is open nothing is sent and held rows go back to pending without an attempt", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "2" });
  for (const id of ["a", "b", "c"]) s.queue.add({ record_id: id });
  // The breaker opened after this run claimed (another worker saw the failures): its turn is refused.
  const claim = s.queue.claim.bind(s.queue);
  s.queue.claim = async (...args) => {
    const rows = await claim(...args);
    s.queue.gate.openedAt = 0;
    s.queue.gate.unavailableSince = "2025-01-06T09:00:00Z";
    return rows;
  };
  const summary = await runWait(s);
  assertEquals(pick(summary, ...COUNTS, "stopped_by"), {
    claimed: 3,
    completed: 0,
    failed: 0,
    deferred: 3,
    permanently_failed: 0,
    stopped_by: "bubble_unavailable",
  });
  assertEquals(s.bubble.requests.length, 0);
  for (const fail of s.queue.fails) {
    assertEquals([fail.reason, fail.retryAfterSeconds], [{ kind: "unavailable" }, 30]);
    assertMatch(
      fail.error,
      /^bubble unavailable: .*not sent.*failing since 2025-01-06T09:00:00Z.*next probe in 30 s/,
    );
  }
  for (const id of ["a", "b", "c"]) {
    const row = s.queue.byRecord(id);
    assertEquals([row.status, row.retry_count, row.failing_since], ["pending", 0, null]);
  }
});

Deno.test("transient failures are reported to the gate; once it opens the rest of the run is not sent", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "1" });
  s.queue.gate.breakerFailures = 2;
  for (const id of ["a", "b", "c", "d", "e"]) s.queue.add({ record_id: id });
  s.bubble.fault("POST", () => bubbleError(503, "UNAVAILABLE", "down"));
  const summary = await runWait(s);
  assertEquals(s.bubble.requests.length, 2, "two failures open the breaker: nothing after them is sent");
  assertEquals(s.queue.gate.notes, ["unavailable", "unavailable"]);
  assertEquals(pick(summary, "failed", "deferred", "stopped_by"), {
    failed: 2,
    deferred: 3,
    stopped_by: "bubble_unavailable",
  });
});

Deno.test("a probe that gets an answer closes the breaker, and the run goes on with the backlog", async () => {
  const s = setup({ BUBBLE_SYNC_BATCH_SIZE: "10" });
  for (const id of ["a", "b", "c", "d"]) s.queue.add({ record_id: id });
  Object.assign(s.queue.gate, { openedAt: 0, failuresInARow: 10, probeDue: true });
  const summary = await runWait(s);
  // The probe's claim is cut to one row (rows_to_claim); its success lets the run claim again (and a last,
  // empty claim after the short batch that completed rows).
  assertEquals(s.queue.claims.length, 3);
  assertEquals(pick(summary, "claimed", "completed", "stopped_by"), {
    claimed: 4,
    completed: 4,
    stopped_by: "drained",
  });
  assertEquals(
    s.queue.gate.notes,
    ["answered"],
    "the probe's answer closes it; then a clean gate costs nothing",
  );
  assertEquals(s.queue.gate.openedAt, null);
});

Deno.test("a failed probe: one request, the row retried, and the run stops saying Bubble is unavailable", async () => {
  const s = setup();
  for (const id of ["a", "b"]) s.queue.add({ record_id: id });
  Object.assign(s.queue.gate, { openedAt: 0, failuresInARow: 10, probeDue: true });
  s.bubble.fault("POST", () => bubbleError(503, "UNAVAILABLE", "down"));
  const probe = await runWait(s);
  assertEquals(pick(probe, "claimed", "failed", "stopped_by"), {
    claimed: 1,
    failed: 1,
    stopped_by: "bubble_unavailable",
  });
  assertEquals(s.bubble.requests.length, 1, "one probe");
  // Until the next probe is due, runs claim nothing and send nothing.
  const next = await runWait(s);
  assertEquals(pick(next, "claimed"), { claimed: 0 });
  assertEquals(s.bubble.requests.length, 1);
});

Deno.test("a healthy Bubble costs the gate no writes, and a run reserves only the turns it uses", async () => {
  const s = setup({ BUBBLE_SYNC_BATCH_SIZE: "50", BUBBLE_SYNC_CONCURRENCY: "5" });
  for (let i = 0; i < 25; i++) s.queue.add({ record_id: `r${i}` });
  const summary = await runWait(s);
  assertEquals(summary.completed, 25);
  assertEquals(s.queue.gate.notes, []);
  const reserved = s.queue.gate.reservations.reduce((sum, r) => sum + r.wanted, 0);
  assertEquals(reserved, 25, "a turn reserved and not used is a slot of the rate limit nobody gets");
  assert(s.queue.gate.reservations.length < 25, "requests waiting together share a reservation");
});

Deno.test("a 429 is reported with its Retry-After, so every worker holds back, not just this run", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "1" });
  s.queue.add({ record_id: "a" });
  s.bubble.fault(
    "POST",
    () => bubbleError(429, "TOO_MANY_REQUESTS", "slow down", { "retry-after": "42" }),
    1,
  );
  const before = performance.now();
  await runWait(s);
  assertEquals(s.queue.gate.notes, ["rate_limited"]);
  assert(s.queue.gate.nextAt >= before + 41_000, "the shared next turn moved by Retry-After");
});

Deno.test("a turn further away than 10 s is not waited for: the row goes back to pending unsent", async () => {
  const s = setup({ BUBBLE_SYNC_CONCURRENCY: "1" });
  for (const id of ["a", "b"]) s.queue.add({ record_id: id });
  s.queue.gate.nextAt = performance.now() + 60_000; // another worker's 429 asked everyone to wait a minute
  const summary = await runWait(s);
  assertEquals(s.bubble.requests.length, 0);
  assertEquals(pick(summary, "deferred", "stopped_by"), { deferred: 2, stopped_by: "rate_limited" });
  assertEquals(s.queue.fails[0].reason, { kind: "deferred" });
  assert((s.queue.fails[0].retryAfterSeconds ?? 0) >= 59, "due when the turn comes");
  assertMatch(s.queue.fails[0].error, /^rate limited: .*not sent: no turn at Bubble's rate limit/);
});

// --- pacing at Bubble's rate limit ----------------------------------------------------------------------------

Deno.test("with BUBBLE_RATE_LIMIT_PER_MINUTE the requests are spaced at the limit", async () => {
  // 1200/min = one request every 50 ms: four creates take at least 150 ms, however high the concurrency.
  const s = setup({ BUBBLE_RATE_LIMIT_PER_MINUTE: "1200", BUBBLE_SYNC_CONCURRENCY: "10" });
  for (const id of ["a", "b", "c", "d"]) s.queue.add({ record_id: id });
  const started = performance.now();
  const summary = await runWait(s);
  const elapsed = performance.now() - started;
  assertEquals(summary.completed, 4);
  assert(elapsed >= 140, `4 paced requests took only ${elapsed.toFixed(0)} ms`);
});

Deno.test("a bad BUBBLE_RATE_LIMIT_PER_MINUTE is refused, naming it", async () => {
  const s = setup({ BUBBLE_RATE_LIMIT_PER_MINUTE: "-1" });
  s.queue.add({ record_id: "a" });
  const response = await s.handler(post({ action: "process_queue_data_api", wait: true }));
  assertEquals(response.status, 500);
  assert((await response.text()).includes("BUBBLE_RATE_LIMIT_PER_MINUTE"));
});

Deno.test("unset settings take the stack config's defaults (settings.ts), and the deploy checks the ranges", () => {
  const only = (env: Record<string, string>) => (name: string) => env[name];
  const required = {
    SUPABASE_DB_URL: BASE_ENV.SUPABASE_DB_URL,
    BUBBLE_BASE_URL: BASE,
    BUBBLE_API_TOKEN: TOKEN,
  };
  const config = loadConfig(only(required));
  assertEquals(
    [
      config.httpTimeoutMs,
      config.rateLimitPerMinute,
      config.concurrency,
      config.leaseSeconds,
      config.batchSize,
    ],
    [5000, 1000, 0, 180, 50],
  );
  assertEquals(config.httpTimeoutMs, SETTINGS.BUBBLE_SYNC_HTTP_TIMEOUT_MS.default);
  assertEquals(config.rateLimitPerMinute, SETTINGS.BUBBLE_RATE_LIMIT_PER_MINUTE.default);
  // The stack config's upper bounds are checked before a deploy; the function only needs a usable value.
  assertEquals(loadConfig(only({ ...required, BUBBLE_SYNC_CONCURRENCY: "150" })).concurrency, 150);
});

Deno.test("concurrency 0 follows the rate limit and Bubble's answer time (Little's law, a quarter more)", () => {
  // plans: legacy 1,000/min, Starter 15,000, Growth 25,000, Team 35,000 (Bubble's hard limits page)
  assertEquals(autoConcurrency(1_000, 150), 4);
  assertEquals(autoConcurrency(15_000, 150), 47);
  assertEquals(autoConcurrency(35_000, 200), 146);
  assertEquals(autoConcurrency(25_000, null), 131); // before the first answer: 250 ms assumed
  assertEquals(autoConcurrency(1_000, 5), 2); // at least two
  assertEquals(autoConcurrency(1_000_000, 1000), 200); // at most 200
  assertEquals(autoConcurrency(0, 150), 20); // unpaced
});

Deno.test("concurrency 0 without a rate limit keeps 20 requests in flight", async () => {
  const s = setup({
    BUBBLE_SYNC_CONCURRENCY: "0",
    BUBBLE_RATE_LIMIT_PER_MINUTE: "0",
    BUBBLE_SYNC_BATCH_SIZE: "60",
  });
  for (let i = 0; i < 60; i++) s.queue.add({ record_id: `r${i}` });
  const inFlight = countCreatesInFlight(s);
  await runWait(s);
  assertEquals(inFlight.most, 20);
});

// --- verdicts in batches (verdict_batcher.ts) ----------------------------------------------------------------------

Deno.test("verdicts given within the linger share one write, and each caller gets its own row's outcome", async () => {
  const writes: unknown[][] = [];
  const batcher = new VerdictBatcher((items) => {
    writes.push(items);
    const outcome = (item: (typeof items)[number]) =>
      "bubble_id" in item ? "completed" : item.lease_token === "lost" ? null : "retrying";
    return Promise.resolve(items.map(outcome));
  }, 5);
  const outcomes = await Promise.all([
    batcher.add({ lease_token: "a", bubble_id: "1x1" }),
    batcher.add({ lease_token: "b", error: "503", kind: null, http_status: 503, retry_after_seconds: null }),
    batcher.add({
      lease_token: "lost",
      error: "x",
      kind: "permanent",
      http_status: null,
      retry_after_seconds: null,
    }),
  ]);
  assertEquals(outcomes, ["completed", "retrying", null]);
  assertEquals(writes.length, 1);
  assertEquals(writes[0].length, 3);
});

Deno.test("a full batch is written at once; a failed write fails each of its verdicts", async () => {
  let calls = 0;
  const batcher = new VerdictBatcher(
    (items) => {
      calls++;
      if (items.length === 2) return Promise.reject(new Error("database gone"));
      return Promise.resolve(items.map(() => "completed"));
    },
    60_000,
    2,
  );
  const started = Date.now();
  const results = await Promise.allSettled([
    batcher.add({ lease_token: "a", bubble_id: "1" }),
    batcher.add({ lease_token: "b", bubble_id: "2" }),
  ]);
  assert(Date.now() - started < 1000, "a full batch waited for the linger");
  assertEquals(results.map((r) => r.status), ["rejected", "rejected"]);
  assertEquals(calls, 1);
});

Deno.test("a statement the database never answers fails the call after the timeout and drops the pool", async () => {
  // postgres.js 3.4.9 may wait forever on a connection closed during startup (porsager/postgres#1193)
  let dropped = 0;
  const never = () => new Promise<never>(() => {});
  const sql = Object.assign(never, { json: (value: unknown) => value });
  const queue = new PostgresQueue(
    sql as unknown as ConstructorParameters<typeof PostgresQueue>[0],
    () => dropped++,
    50,
  );
  const started = Date.now();
  let message = "";
  try {
    await queue.claim("process_queue_data_api", 10, 60);
  } catch (error) {
    message = (error as Error).message;
  }
  assertEquals(message, "the database did not answer within 0.05 s");
  assert(Date.now() - started < 2000);
  assertEquals(dropped, 1);
});

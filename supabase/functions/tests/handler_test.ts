// deno test for the bubble_sync handler's HTTP side: who may call it (keys), methods, bodies and
// configuration, and how it answers (202 at once, or the run's summary). The queue and Bubble are the fakes of
// fakes.ts: no database, no network.
//
//   deno test --config supabase/functions/deno.json supabase/functions/tests/

import {
  assert,
  assertEquals,
  assertMatch,
  COUNTS,
  DB_PASSWORD,
  LEGACY_KEY,
  pick,
  post,
  runWait,
  SECRET_KEY,
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

// deno test for first-attempt creates sent in bulk (BUBBLE_BULK_CREATE): one NDJSON call, each line mapped to
// its row, refused lines sent again alone, and calls sized to Bubble's timeout and the run's budget. The queue
// and Bubble are the fakes of fakes.ts: no database, no network.

import {
  assert,
  assertEquals,
  assertMatch,
  bubbleError,
  hang,
  type Override,
  pick,
  runWait,
  setup,
} from "./fakes.ts";

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

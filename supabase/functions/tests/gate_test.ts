// deno test for Bubble's gate, shared by every worker (gate.ts, sql/functions/gate.sql): the circuit breaker,
// pacing at BUBBLE_RATE_LIMIT_PER_MINUTE, and the concurrency that follows it (sizing.ts). The queue and
// Bubble are the fakes of fakes.ts: no database, no network.

import { loadConfig } from "../bubble_sync/config.ts";
import { SETTINGS } from "../bubble_sync/settings.ts";
import { autoConcurrency } from "../bubble_sync/sizing.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  BASE,
  BASE_ENV,
  bubbleError,
  COUNTS,
  pick,
  post,
  runWait,
  setup,
  TOKEN,
} from "./fakes.ts";
import { countCreatesInFlight } from "./support.ts";

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

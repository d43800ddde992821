// deno test for a run as a whole (process.ts): its time, row and lease budgets, the runs it has invoked beside
// it or after it (runs.ts, sizing.ts), lost leases, bounded concurrency, and secrets kept out of logs. The
// queue and Bubble are the fakes of fakes.ts: no database, no network.

import { PARALLEL_RUNS, runsWanted } from "../bubble_sync/sizing.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  bubbleError,
  DB_PASSWORD,
  LEGACY_KEY,
  pick,
  post,
  runWait,
  SECRET_KEY,
  setup,
  TOKEN,
} from "./fakes.ts";
import { countCreatesInFlight } from "./support.ts";

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

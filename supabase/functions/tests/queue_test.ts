// deno test for the queue's database side (postgres_queue.ts, verdict_batcher.ts): links (bubble_sync.links), a
// completion's note, verdicts written in batches, and a statement the database never answers. postgres.js is
// replaced by a tagged template that records each statement and answers as told.

import { PostgresQueue } from "../bubble_sync/postgres_queue.ts";
import { VerdictBatcher } from "../bubble_sync/verdict_batcher.ts";
import { assert, assertEquals } from "./fakes.ts";

type Answer = Record<string, unknown>[] | { code: string; message: string };

/** A stand-in for postgres.js's `sql`: each statement's text and values, answered from `answers` in turn. */
function fakeSql(answers: Answer[]) {
  const statements: { text: string; values: unknown[] }[] = [];
  const sql = (strings: TemplateStringsArray, ...values: unknown[]) => {
    statements.push({ text: strings.join("$").replace(/\s+/g, " ").trim(), values });
    const answer = answers.shift() ?? [];
    return Array.isArray(answer)
      ? Promise.resolve(answer)
      : Promise.reject(Object.assign(new Error(), answer));
  };
  const queue = new PostgresQueue(
    Object.assign(sql, { json: (value: unknown) => value }) as unknown as ConstructorParameters<
      typeof PostgresQueue
    >[0],
  );
  return { queue, statements };
}

Deno.test("links: one statement for every key, answered as a map by <table>:<record id>", async () => {
  const { queue, statements } = fakeSql([[
    { table_name: "profiles", record_id: "1", bubble_id: "b1" },
    { table_name: "auth.users", record_id: "7", bubble_id: "u7" },
  ]]);
  const links = await queue.links([
    { table: "profiles", recordId: "1" },
    { table: "profiles", recordId: "2" },
    { table: "auth.users", recordId: "7" },
  ]);
  assertEquals([...links], [["profiles:1", "b1"], ["auth.users:7", "u7"]]);
  assertEquals(statements.length, 1);
  assert(statements[0].text.includes("from bubble_sync.links"), statements[0].text);
  assert(statements[0].text.includes("unnest($::text[], $::text[])"), statements[0].text);
  assertEquals(statements[0].values, [["profiles", "profiles", "auth.users"], ["1", "2", "7"]]);
  assertEquals(queue.roundTrips, 1);
});

Deno.test("links: no keys, no statement; a database without bubble_sync.links (42P01) has none, asked once", async () => {
  const { queue, statements } = fakeSql([{
    code: "42P01",
    message: 'relation "bubble_sync.links" does not exist',
  }]);
  assertEquals((await queue.links([])).size, 0);
  assertEquals(statements.length, 0);
  assertEquals((await queue.links([{ table: "profiles", recordId: "1" }])).size, 0);
  assertEquals((await queue.links([{ table: "profiles", recordId: "2" }])).size, 0);
  assertEquals(statements.length, 1);
});

Deno.test("links: any other database error is the run's error", async () => {
  const { queue } = fakeSql([{ code: "57014", message: "canceling statement due to statement timeout" }]);
  let message = "";
  try {
    await queue.links([{ table: "profiles", recordId: "1" }]);
  } catch (error) {
    message = (error as Error).message;
  }
  assertEquals(message, "canceling statement due to statement timeout");
});

Deno.test("a completion's note and a completion without a Bubble id go to report_verdicts as given", async () => {
  const { queue, statements } = fakeSql([[
    { verdict: 1, outcome: "completed" },
    { verdict: 2, outcome: "completed" },
    { verdict: 3, outcome: "completed" },
  ]]);
  const outcomes = await Promise.all([
    queue.complete("t1", "b1"),
    queue.complete("t2", null, "Bubble never had user profiles:2: nothing to delete"),
    queue.complete("t3", "b3", "onDelete ignore: nothing sent"),
  ]);
  assertEquals(outcomes, [true, true, true]);
  assertEquals(statements.length, 1);
  assertEquals(statements[0].values[0], [
    { lease_token: "t1", bubble_id: "b1" },
    { lease_token: "t2", bubble_id: null, note: "Bubble never had user profiles:2: nothing to delete" },
    { lease_token: "t3", bubble_id: "b3", note: "onDelete ignore: nothing sent" },
  ]);
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

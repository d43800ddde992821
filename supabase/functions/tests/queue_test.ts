// deno test for PostgresQueue's statements that mappings added: links (bubble_sync.links) and a completion's
// note. postgres.js is replaced by a tagged template that records each statement and answers as told.

import { PostgresQueue } from "../bubble_sync/postgres_queue.ts";
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

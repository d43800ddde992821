// deno test for BUBBLE_SYNC_MAPPINGS as config.ts reads it: none, the stack's mappings, and every way a value
// can be unusable (a configuration error naming the variable and the place, never a value).

import { ConfigError, loadConfig } from "../bubble_sync/config.ts";
import { assert, assertEquals, BASE_ENV, post, runWait, SECRET_KEY, setup } from "./fakes.ts";
import { LISTINGS, mappedSetup, MAPPINGS, NOTES, USERS } from "./mapping_fakes.ts";

function configWith(mappings: string | undefined) {
  return loadConfig((name) => name === "BUBBLE_SYNC_MAPPINGS" ? mappings : BASE_ENV[name]);
}

/** The message loadConfig refuses `mappings` with (it must name the variable). */
function refusal(mappings: unknown): string {
  const raw = typeof mappings === "string" ? mappings : JSON.stringify(mappings);
  try {
    configWith(raw);
  } catch (error) {
    assert(error instanceof ConfigError, String(error));
    assertEquals(error.variable, "BUBBLE_SYNC_MAPPINGS");
    return error.message;
  }
  throw new Error(`accepted: ${raw}`);
}

/** MAPPINGS with `change` applied to a copy of entry `i`. */
function changed(i: number, change: (entry: Record<string, unknown>) => void): unknown[] {
  const copy = structuredClone(MAPPINGS) as Record<string, unknown>[];
  change(copy[i]);
  return copy;
}

Deno.test("mappings config: absent, empty, blank or [] is no mappings", () => {
  for (const raw of [undefined, "", "  ", "[]", " [ ] "]) {
    assertEquals(configWith(raw).mappings, [], String(raw));
  }
});

Deno.test("mappings config: the stack's mappings are read as written", () => {
  const { mappings } = configWith(JSON.stringify(MAPPINGS));
  assertEquals(mappings.map((m) => [m.name, m.table, m.dataType, m.keyField, m.onDelete]), [
    ["users", "profiles", "user", "supabase_id", { action: "delete" }],
    ["listings", "listings", "listing", "supabase_id", { action: "set", fields: { Archived: true } }],
    ["notes", "app.notes", "note", "External ID", { action: "ignore" }],
  ]);
  assertEquals(mappings[1].fields[3], {
    column: "host_id",
    field: "Host",
    ref: "users",
    refTable: "profiles",
  });
  assertEquals(mappings[0].fields[0], { column: "email", field: "email", ref: null, refTable: null });
});

Deno.test("mappings config: a reference without refTable gets the table of the mapping it names", () => {
  const mappings = changed(1, (m) => {
    (m.fields as Record<string, unknown>[])[3] = { column: "host_id", field: "Host", ref: "users" };
  });
  assertEquals(configWith(JSON.stringify(mappings)).mappings[1].fields[3].refTable, "profiles");
});

Deno.test("mappings config: keys the function does not use may be missing or new; onDelete defaults to delete", () => {
  const [entry] = changed(0, (m) => {
    for (const key of ["schema", "sourceTable", "where", "operations", "onDelete"]) delete m[key];
    m.comment = "a key of a later version";
  }) as Record<string, unknown>[];
  const [mapping] = configWith(JSON.stringify([entry])).mappings;
  assertEquals([mapping.schema, mapping.where, mapping.onDelete], [null, null, { action: "delete" }]);
});

Deno.test("mappings config: each problem names BUBBLE_SYNC_MAPPINGS and its place, never a value", () => {
  const cases: [unknown, string][] = [
    [
      '[{"name": "users", "table": "secret_table_name"',
      "is not valid JSON (expected a JSON array of mappings)",
    ],
    [{ users: USERS }, "must be a JSON array of mappings"],
    [[USERS, "secret_table_name"], "[1]: must be an object"],
    [changed(0, (m) => delete m.table), "[0].table: must be a non-empty string"],
    [changed(1, (m) => (m.dataType = "secret table name")), "[1].dataType: must be Bubble's API name"],
    [changed(0, (m) => (m.keyField = "")), "[0].keyField: must be a non-empty string"],
    [changed(2, (m) => (m.fields = [])), "[2].fields: must be a non-empty array"],
    [
      changed(2, (m) => (m.fields = [{ column: "secret_table_name" }])),
      "[2].fields[0].field: must be a non-empty",
    ],
    [
      changed(0, (m) => (m.fields as unknown[]).push({ column: "email", field: "Email 2" })),
      "[0].fields[4].column: the same as fields[0]",
    ],
    [
      changed(0, (m) => (m.fields as unknown[]).push({ column: "secret_table_name", field: "First Name" })),
      "[0].fields[4].field: the same as fields[1]",
    ],
    [
      changed(0, (m) => (m.fields as unknown[]).push({ column: "secret_table_name", field: "supabase_id" })),
      "[0].fields[4].field: the keyField",
    ],
    [
      changed(2, (m) => (m.table = "profiles")),
      "[2].table: the same as [0].table (each mapping has its own table)",
    ],
    [changed(2, (m) => (m.name = "users")), "[2].name: the same as [0].name (each mapping has its own name)"],
    [
      changed(1, (m) => ((m.fields as Record<string, unknown>[])[3].ref = "secret_table_name")),
      "[1].fields[3].ref: no mapping of the list has that name",
    ],
    [
      changed(1, (m) => ((m.fields as Record<string, unknown>[])[3].refTable = "secret_table_name")),
      "[1].fields[3].refTable: not the table of the mapping its ref names ([0])",
    ],
    [
      changed(0, (m) => (m.onDelete = { action: "secret_table_name" })),
      "[0].onDelete.action: must be delete",
    ],
    [changed(0, (m) => (m.onDelete = { action: "set" })), "[0].onDelete.fields: must be an object"],
    [changed(0, (m) => (m.operations = ["insert", "secret_table_name"])), "[0].operations: must be an array"],
    [changed(0, (m) => (m.where = 42)), "[0].where: must be a string or null"],
  ];
  for (const [value, expected] of cases) {
    const message = refusal(value);
    assert(message.startsWith(`BUBBLE_SYNC_MAPPINGS: ${expected}`), `${message}\nexpected: ${expected}`);
    assert(!message.includes("secret"), message);
  }
});

Deno.test("mappings config: a malformed BUBBLE_SYNC_MAPPINGS is a 500 naming it, and no work", async () => {
  const s = mappedSetup({}, [LISTINGS, NOTES]); // listings refers to users, which is not in the list
  s.queue.add({ record_id: "1" });
  const response = await s.handler(post({ action: "process_queue_data_api", wait: true }));
  assertEquals(response.status, 500);
  const body = await response.json();
  assertEquals([body.error, body.variable], ["configuration", "BUBBLE_SYNC_MAPPINGS"]);
  assertEquals(body.message, "BUBBLE_SYNC_MAPPINGS: [0].fields[3].ref: no mapping of the list has that name");
  assertEquals([s.queue.claims.length, s.bubble.requests.length], [0, 0]);
  // the deep health check says the same
  const deep = await s.handler(
    new Request("http://localhost/bubble_sync?check=deep", {
      headers: { authorization: `Bearer ${SECRET_KEY}` },
    }),
  );
  assertEquals(deep.status, 503);
  assertEquals((await deep.json()).config, body.message);
});

Deno.test("mappings config: with [] a row is sent exactly as without the variable", async () => {
  const sent: string[] = [];
  for (const env of [{}, { BUBBLE_SYNC_MAPPINGS: "[]" }, { BUBBLE_SYNC_MAPPINGS: "" }]) {
    const s = setup(env);
    s.queue.add({ record_id: "42", payload: { email: "ada@example.com", first_name: "Ada", bio: null } });
    assertEquals((await runWait(s)).completed, 1);
    assertEquals(s.queue.linkCalls.length, 0);
    sent.push(JSON.stringify(s.bubble.requests.map((r) => [r.method, r.path, r.body])));
  }
  assertEquals(new Set(sent).size, 1, sent.join("\n"));
  assertEquals(
    JSON.parse(sent[0])[0][2],
    '{"email":"ada@example.com","first_name":"Ada","bio":null,"supabase_id":"profiles:42"}',
  );
});

// deno test for DELETE rows (deletes.ts): as the mapping's onDelete says (delete, set, ignore), of tables no
// mapping names, and of duplicates the database found. The queue and Bubble are the fakes of fakes.ts: no
// database, no network.

import { assertEquals, assertMatch, bubbleError, pick, runWait } from "./fakes.ts";
import { listingRow, mappedSetup } from "./mapping_fakes.ts";
import { routes } from "./support.ts";

// --- deletes -----------------------------------------------------------------------------------------------

Deno.test("DELETE (onDelete delete) of a linked record deletes the thing by its id", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "profiles:7" });
  s.queue.linkTable.set("profiles:7", id);
  s.queue.add({ record_id: "7", operation: "DELETE", bubble_id: id, payload: { email: "a@example.com" } });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted"), { completed: 1, deleted: 1 });
  assertEquals(routes(s), [`DELETE user/${id}`]);
  assertEquals(s.bubble.things.has(id), false);
  const row = s.queue.byRecord("7");
  assertEquals([row.status, row.bubble_id, row.error_message], ["completed", id, null]);
  assertEquals(s.queue.linkTable.has("profiles:7"), false);
});

Deno.test("DELETE without a link finds the thing by its key, then deletes it", async () => {
  const s = mappedSetup();
  const id = s.bubble.insert({ supabase_id: "profiles:7" });
  s.queue.add({ record_id: "7", operation: "DELETE", payload: null }); // a delete's payload is not needed
  assertEquals((await runWait(s)).deleted, 1);
  assertEquals(routes(s).map((r) => r.split("?")[0]), ["GET user", `DELETE user/${id}`]);
  assertEquals(s.queue.byRecord("7").bubble_id, id);
});

Deno.test("DELETE of a record Bubble never had, or of a thing already gone, completes with a note", async () => {
  const s = mappedSetup();
  s.queue.add({ record_id: "never", operation: "DELETE" });
  s.queue.add({ record_id: "gone", operation: "DELETE", bubble_id: "x-gone" });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted", "failed"), { completed: 2, deleted: 0, failed: 0 });
  assertEquals(
    s.queue.byRecord("never").error_message,
    "Bubble never had user profiles:never: nothing to delete",
  );
  assertEquals(s.queue.byRecord("never").bubble_id, null);
  assertEquals(
    s.queue.byRecord("gone").error_message,
    "Bubble user x-gone was already gone: nothing to delete",
  );
  assertEquals(routes(s).map((r) => r.split("?")[0]).sort(), ["DELETE user/x-gone", "GET user"]);
});

Deno.test("DELETE that Bubble fails (5xx) is retried; a refused one (400) fails for good", async () => {
  const s = mappedSetup();
  s.queue.add({ record_id: "a", operation: "DELETE", bubble_id: "ia" });
  s.queue.add({ record_id: "b", operation: "DELETE", bubble_id: "ib" });
  s.bubble.fault("DELETE", () => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), 1, "/ia");
  s.bubble.fault("DELETE", () => bubbleError(400, "NOT_ALLOWED", "a privacy rule forbids it"), 1, "/ib");
  const summary = await runWait(s);
  assertEquals(pick(summary, "failed", "permanently_failed"), { failed: 1, permanently_failed: 1 });
  assertEquals(
    s.queue.byRecord("a").error_message,
    "deleting ia: Bubble answered 503 SERVICE_UNAVAILABLE: down",
  );
  assertEquals(
    s.queue.byRecord("b").error_message,
    "deleting ib: Bubble answered 400 NOT_ALLOWED: a privacy rule forbids it",
  );
});

Deno.test("DELETE whose search answers a thing without the key changes nothing and fails for good", async () => {
  const s = mappedSetup();
  const other = s.bubble.insert({ supabase_id: "profiles:other" });
  s.bubble.fault(
    "GET",
    () => Response.json({ response: { results: [{ _id: other, supabase_id: "profiles:other" }] } }),
  );
  s.queue.add({ record_id: "7", operation: "DELETE" });
  assertEquals((await runWait(s)).permanently_failed, 1);
  assertEquals(s.bubble.things.has(other), true);
  assertMatch(s.queue.byRecord("7").error_message!, /answered user .* which does not carry that key/);
});

Deno.test("DELETE with onDelete set modifies the thing instead: by its link, or found by its key", async () => {
  const s = mappedSetup();
  const linked = s.bubble.insert({ supabase_id: "listings:l1", Title: "Loft" }, "listing");
  const found = s.bubble.insert({ supabase_id: "listings:l2", Title: "Barn" }, "listing");
  s.queue.add(listingRow("l1", { title: "Loft" }, { operation: "DELETE", bubble_id: linked }));
  s.queue.add(listingRow("l2", { title: "Barn" }, { operation: "DELETE" }));
  s.queue.add(listingRow("l3", { title: "Hut" }, { operation: "DELETE" })); // never in Bubble
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted"), { completed: 3, deleted: 0 });
  assertEquals(s.bubble.things.get(linked), {
    supabase_id: "listings:l1",
    Title: "Loft",
    _id: linked,
    Archived: true,
  });
  assertEquals(s.bubble.things.get(found)!.Archived, true);
  const patches = s.bubble.requests.filter((r) => r.method === "PATCH").map((r) => JSON.parse(r.body));
  assertEquals(patches, [{ Archived: true }, { Archived: true }]);
  assertEquals(s.bubble.count("DELETE"), 0);
  assertEquals(
    s.queue.byRecord("l3").error_message,
    "Bubble never had listing listings:l3: nothing to update",
  );
  assertEquals(s.queue.byRecord("l1").error_message, null);
});

Deno.test("DELETE with onDelete set of a thing Bubble no longer has completes with a note", async () => {
  const s = mappedSetup();
  s.queue.add(listingRow("l1", {}, { operation: "DELETE", bubble_id: "x1" }));
  assertEquals((await runWait(s)).completed, 1);
  assertEquals(s.queue.byRecord("l1").error_message, "Bubble listing x1 is gone: nothing to update");
});

Deno.test("DELETE with onDelete ignore completes without a request, saying so", async () => {
  const s = mappedSetup();
  s.queue.add({ table_name: "app.notes", record_id: "n1", operation: "DELETE", bubble_id: "nb1" });
  s.queue.add({ table_name: "app.notes", record_id: "n2", operation: "DELETE" });
  assertEquals((await runWait(s)).completed, 2);
  assertEquals(s.bubble.requests.length, 0);
  for (const id of ["n1", "n2"]) {
    assertEquals(s.queue.byRecord(id).error_message, "onDelete ignore: nothing sent");
  }
  assertEquals(s.queue.byRecord("n1").bubble_id, "nb1");
});

Deno.test("DELETE of a table no mapping names deletes by key in BUBBLE_DATA_TYPE", async () => {
  for (const mappings of [undefined, []]) {
    const s = mappings === undefined
      ? mappedSetup({ BUBBLE_SYNC_MAPPINGS: undefined })
      : mappedSetup({}, mappings);
    const id = s.bubble.insert({ supabase_id: "profiles:7" });
    s.queue.add({ record_id: "7", operation: "DELETE" });
    s.queue.add({ record_id: "8", operation: "delete" });
    const summary = await runWait(s);
    assertEquals(pick(summary, "completed", "deleted"), { completed: 2, deleted: 1 });
    assertEquals(s.bubble.things.has(id), false);
    assertEquals(s.queue.byRecord("8").error_message, "Bubble never had user profiles:8: nothing to delete");
  }
});

Deno.test("DELETE of a duplicate deletes the thing it names, whatever onDelete says; the record's link stays", async () => {
  const s = mappedSetup();
  const linked = s.bubble.insert({ supabase_id: "listings:l1", Title: "Loft" }, "listing");
  const extra = s.bubble.insert({ supabase_id: "listings:l1", Title: "Loft" }, "listing");
  s.queue.linkTable.set("listings:l1", linked);
  // as bubble_sync.enqueue_delete_duplicate queues it, and the claim hands it out (bubble_id: the link)
  s.queue.add(
    listingRow("l1", {}, {
      operation: "DELETE",
      bubble_id: linked,
      payload: { bubble_sync_duplicate: extra },
    }),
  );
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted"), { completed: 1, deleted: 1 });
  assertEquals(routes(s), [`DELETE listing/${extra}`]); // onDelete set (a soft delete) is for the record's thing
  assertEquals(s.bubble.things.has(linked), true);
  assertEquals(s.bubble.things.has(extra), false);
  assertEquals(s.queue.byRecord("l1").bubble_id, extra);
  assertEquals(s.queue.linkTable.get("listings:l1"), linked);
});

Deno.test("DELETE of a duplicate that is the record's linked thing now keeps it; one already gone completes", async () => {
  const s = mappedSetup();
  const linked = s.bubble.insert({ supabase_id: "profiles:7" });
  s.queue.linkTable.set("profiles:7", linked);
  s.queue.add({
    record_id: "7",
    operation: "DELETE",
    bubble_id: linked,
    payload: { bubble_sync_duplicate: linked },
  });
  s.queue.add({ record_id: "8", operation: "DELETE", payload: { bubble_sync_duplicate: "x-gone" } });
  const summary = await runWait(s);
  assertEquals(pick(summary, "completed", "deleted", "failed"), { completed: 2, deleted: 0, failed: 0 });
  assertEquals(routes(s), ["DELETE user/x-gone"]);
  assertEquals(s.bubble.things.has(linked), true);
  assertEquals(
    s.queue.byRecord("7").error_message,
    `Bubble user ${linked} is the thing profiles:7 is linked to now, not a duplicate: kept`,
  );
  assertEquals(
    s.queue.byRecord("8").error_message,
    "Bubble user x-gone, a duplicate of profiles:8, was already gone",
  );
  assertEquals(s.queue.linkTable.get("profiles:7"), linked);
});

Deno.test("DELETE of a duplicate that Bubble fails (5xx) is retried, naming the thing", async () => {
  const s = mappedSetup();
  s.queue.add({ record_id: "7", operation: "DELETE", payload: { bubble_sync_duplicate: "i7" } });
  s.bubble.fault("DELETE", () => bubbleError(503, "SERVICE_UNAVAILABLE", "down"), 1, "/i7");
  assertEquals((await runWait(s)).failed, 1);
  assertEquals(
    s.queue.byRecord("7").error_message,
    "deleting duplicate i7: Bubble answered 503 SERVICE_UNAVAILABLE: down",
  );
});

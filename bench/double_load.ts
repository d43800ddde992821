/**
 * What the Bubble double serves on its own: `concurrency` loops, each creating one thing after the other
 * (POST <base>/obj/<type>, as the function's single creates), for `seconds`. Prints one JSON line:
 * {"requests": n, "ok": n, "seconds": s} (ok: 2xx answers).
 *
 * Usage: deno run --allow-net bench/double_load.ts <base url> <token> <concurrency> <seconds> [<type> <fields>]
 * <type> (default user) and <fields> (JSON, default {"first_name": "Ceiling"}): what each create sends, plus
 * a unique supabase_id and, for a user, a unique email; a double told the app's schema (the mappings profile)
 * refuses fields it does not know. The bench runs it beside the double of a plan profile (harness.py).
 */

const [base, token, concurrencyText, secondsText, typeText, fieldsText] = Deno.args;
const concurrency = Number(concurrencyText);
const seconds = Number(secondsText);
const type = typeText ?? "user";
const fields: Record<string, unknown> = fieldsText ? JSON.parse(fieldsText) : { first_name: "Ceiling" };
if (!base || !token || !(concurrency >= 1) || !(seconds > 0)) {
  console.error("usage: double_load.ts <base url> <token> <concurrency> <seconds> [<type> <fields JSON>]");
  Deno.exit(2);
}

let requests = 0;
let ok = 0;
const statuses: Record<number, number> = {};
let serial = 0;
const run = crypto.randomUUID().slice(0, 8);
const started = performance.now();
const deadline = started + seconds * 1000;

async function loop(): Promise<void> {
  while (performance.now() < deadline) {
    const id = `ceiling-${run}-${++serial}`;
    const email = type === "user" ? { email: `${id}@bench.example` } : {};
    const response = await fetch(`${base}/obj/${type}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ ...email, ...fields, supabase_id: `ceiling:${id}` }),
    });
    await response.body?.cancel();
    requests++;
    if (response.ok) ok++;
    else statuses[response.status] = (statuses[response.status] ?? 0) + 1;
  }
}

await Promise.all(Array.from({ length: concurrency }, loop));
console.log(JSON.stringify({ requests, ok, statuses, seconds: (performance.now() - started) / 1000 }));

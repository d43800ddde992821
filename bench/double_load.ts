/**
 * What the Bubble double serves on its own: `concurrency` loops, each creating one user after the other
 * (POST <base>/obj/user, as the function's single creates), for `seconds`. Prints one JSON line:
 * {"requests": n, "ok": n, "seconds": s} (ok: 2xx answers).
 *
 * Usage: deno run --allow-net bench/double_load.ts <base url> <token> <concurrency> <seconds>
 * The bench starts it beside the double of a throughput profile (bench/ceiling.py).
 */

const [base, token, concurrencyText, secondsText] = Deno.args;
const concurrency = Number(concurrencyText);
const seconds = Number(secondsText);
if (!base || !token || !(concurrency >= 1) || !(seconds > 0)) {
  console.error("usage: double_load.ts <base url> <token> <concurrency> <seconds>");
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
    const response = await fetch(`${base}/obj/user`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        email: `${id}@bench.example`,
        first_name: "Ceiling",
        supabase_id: `ceiling:${id}`,
      }),
    });
    await response.body?.cancel();
    requests++;
    if (response.ok) ok++;
    else statuses[response.status] = (statuses[response.status] ?? 0) + 1;
  }
}

await Promise.all(Array.from({ length: concurrency }, loop));
console.log(JSON.stringify({ requests, ok, statuses, seconds: (performance.now() - started) / 1000 }));

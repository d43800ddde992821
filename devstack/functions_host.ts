/**
 * Local edge-function host for the dev stack.
 *
 * Serves every `<functions-dir>/<slug>/index.ts` at `http://127.0.0.1:<port>/functions/v1/<slug>`,
 * the way Supabase exposes Edge Functions at `https://<ref>.supabase.co/functions/v1/<slug>`, and
 * stops a function's worker at Supabase's CPU-time and wall-clock limits the way its edge runtime does.
 *
 * Usage:
 *   deno run --no-prompt --allow-all devstack/functions_host.ts --functions-dir supabase/functions --port 0
 * `--port` falls back to env FUNCTIONS_PORT, then 0 (pick a free port). Once listening, the host
 * prints exactly one stdout line, `FUNCTIONS_URL=http://127.0.0.1:<port>/functions/v1`; everything
 * else (request lines, invocation lines, function logs, errors) goes to stderr.
 * Limits, from the environment: EDGE_CPU_LIMIT_MS (default 2000) and EDGE_WALL_CLOCK_LIMIT_MS
 * (default 150000, the Free plan; paid plans have 400000). Functions do not see these two.
 *
 * Processes. The command above starts the router: it owns the listener and runs no function code.
 * Functions run in worker processes (this file with `--worker <slug>`), started by the router with
 * only `--allow-net --allow-env --allow-read=<functions-dir>,<this file>`. A worker serves one
 * function, one invocation at a time; the router forwards each request over loopback HTTP to an idle
 * worker of its function, or starts one. The router needs --allow-all: --allow-run (to start workers)
 * grants as much anyway, and Deno 2 lets nothing less read /proc, where it reads workers' CPU time.
 * Warm workers: at start the router boots one worker per function (so /_internal/health can report
 * boot errors), and it replaces a worker that retires or dies in the background, so requests one
 * after another rarely wait for Deno to start (about 80 ms); a request that finds every worker busy
 * waits for a new one, like a cold start. A worker's clocks start at its first invocation. At most
 * 16 workers per function exist at once; more concurrent requests wait for one to be free.
 *
 * Limits, as the platform documents and implements them (supabase.com/docs/guides/functions/limits;
 * troubleshooting pages "546 - WORKER_LIMIT Exceeded", "Edge Function shutdown reasons explained",
 * "Edge Functions worker timeouts and WebSocket drops"; supabase/edge-runtime's per-worker supervisor,
 * crates/base/src/worker/supervisor/strategy_per_worker.rs):
 * - An invocation is a request and everything it hands to `EdgeRuntime.waitUntil`: it ends when its
 *   response has been sent and those promises have settled. Its worker takes no other request until
 *   then (on the platform a worker is offered new requests once it has answered; see below).
 * - CPU time is that of the worker's main thread, where its JavaScript runs
 *   (/proc/<pid>/task/<pid>/schedstat; the platform reads CLOCK_THREAD_CPUTIME_ID of the isolate's
 *   thread): async I/O waits and sleeps do not count. Like the platform, it is counted per worker,
 *   from its first invocation on, over everything the worker runs (handlers, background work, stray
 *   timers between invocations). At half of EDGE_CPU_LIMIT_MS (the platform's soft limit, "once an
 *   isolate uses 50% of any resource") the worker retires: it finishes the invocation, then exits.
 *   At EDGE_CPU_LIMIT_MS (the hard limit) it is killed at once, mid-handler or mid-background work.
 *   So one invocation gets at least half the limit and never more than all of it.
 * - Wall clock: a worker lives EDGE_WALL_CLOCK_LIMIT_MS from its first invocation, background work
 *   included; at half it retires, at the limit it is killed.
 * - The router checks a busy worker's CPU time again after as many milliseconds as it has left (a
 *   thread cannot burn CPU faster than real time; at least every 2 ms near the limit), so a kill
 *   lands within a few milliseconds of the limit.
 * - A request whose worker is killed before it answered gets what the platform answers:
 *   546 {"code": "WORKER_RESOURCE_LIMIT", "message": "Function failed due to not having enough
 *   compute resources (please check logs)"} (the code was WORKER_LIMIT before 2026-05; the status
 *   code page and the 546 troubleshooting page). After a 202 the client has its answer; the kill
 *   still stops the background work.
 * - Other platform errors as JSON `{code, message}`: unknown slug 404 NOT_FOUND; a function that
 *   fails to import (or never calls Deno.serve) 503 BOOT_ERROR; an uncaught handler error 500
 *   WORKER_ERROR (the worker survives it); a worker that dies by itself 500 WORKER_ERROR.
 * - Discovery like the Supabase CLI: each subfolder with an `index.ts` is a function, except names
 *   starting with `_` or `.`, and `tests`. Functions are written as `Deno.serve(handler)`: like the
 *   edge runtime, the worker captures the handler while importing the module instead of letting it
 *   bind a port.
 * - Routing: `/functions/v1/<slug>[/rest]?query` reaches the function as `/<slug>[/rest]?query`,
 *   which is the path deployed functions see (hence routers using `basePath("/<slug>")`).
 * - The environment: functions get whatever the host was started with, minus EDGE_*_LIMIT_MS and
 *   FUNCTIONS_PORT; devstack/functions.py starts it with only what Supabase injects (SUPABASE_URL,
 *   SUPABASE_DB_URL, keys) plus the function secrets.
 *
 * Logs (stderr, one line each; numbers are whole milliseconds; values never contain spaces):
 *   <METHOD> <path> <status> <ms>ms      per request, when its response starts (no query, no headers)
 *   invocation function=<slug> status=<http status> cpu_ms=<n> wall_ms=<n> end=<end> worker=<pid>
 *     worker_cpu_ms=<n> worker_invocations=<n>
 *     per invocation, when it ends. cpu_ms: the worker's CPU time from dispatch to the end of the
 *     invocation (background work included); wall_ms: from the request's arrival to that end;
 *     status: what the client got (546 if the worker was killed before it answered);
 *     end: done | cpu_limit | wall_clock_limit | crashed; worker_cpu_ms: the worker's CPU time so
 *     far, the figure the limit is checked against; worker_invocations: how many it has started.
 *   limit_reached function=<slug> limit=<cpu_time|wall_clock> limit_ms=<n> used_ms=<n> worker=<pid>
 *     when a worker is killed at a limit (used_ms: the worker's CPU time, or its age), just before
 *     the invocation line with end=cpu_limit or end=wall_clock_limit.
 *   worker_retired function=<slug> reason=<cpu_soft_limit|wall_clock_half> worker=<pid> worker_cpu_ms=<n>
 *
 * What it does NOT mirror:
 * - The platform offers a worker new requests once it has answered, even while background work of
 *   an earlier request runs in it; here that work keeps the worker to its invocation, and a second
 *   request gets another worker. So cpu_ms is exactly one invocation's, where the platform would
 *   charge both to the same worker.
 * - Boot: the platform's clocks start when a worker is created and its CPU count includes evaluating
 *   the module; here both start at the first invocation, and Deno's start-up is not counted (the
 *   platform boots a pre-bundled eszip in milliseconds; Deno here transpiles and starts a process).
 * - No memory limit (256 MB on the platform), no request idle timeout (504 after 150 s without a
 *   response, which on paid plans comes before the 400 s wall clock), no `beforeunload` event, no
 *   EarlyDrop of an idle worker before it retires.
 * - Stray errors: an unhandled rejection or uncaught error in a function's background work is logged
 *   and the worker keeps running.
 * - A function's request comes from the router: `info.remoteAddr` is the router's loopback address,
 *   and `accept-encoding` reads `identity` (the client's response is compressed by the router).
 * - No JWT verification gateway. On Supabase, verify_jwt (on by default) makes the gateway answer 401
 *   to requests without a valid JWT before the function runs. bubble_sync is deployed with
 *   verify_jwt=false and checks its own shared secret, so doing no verification here is faithful for
 *   it; a function relying on verify_jwt would be unprotected here.
 * - No `sb-error-code` header, no 405 for methods outside GET/POST/PUT/PATCH/DELETE/OPTIONS, no
 *   text/html -> text/plain rewrite, no per-function deno.json/import map, no hot reload (restart the
 *   host after editing a function), no WebSocket upgrade.
 *
 * Code: this file reads the command line and runs the router (functions_host/router_main.ts) or a worker
 * (functions_host/worker_main.ts); the router's parts are the other modules in functions_host/.
 */

import { parseArgs } from "./functions_host/args.ts";
import { routerMain } from "./functions_host/router_main.ts";
import { workerMain } from "./functions_host/worker_main.ts";

// Function logs belong with the other logs on stderr: stdout is the control channel (the router's
// FUNCTIONS_URL line; a worker's messages to the router).
for (const method of ["log", "info", "debug"] as const) {
  console[method] = (...args: unknown[]) => console.error(...args);
}

const args = parseArgs(Deno.args);
if (args.mode === "worker") await workerMain(args);
else await routerMain({ ...args, script: decodeURIComponent(new URL(import.meta.url).pathname) });

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
 */

const HEALTH_PATH = "/_internal/health";
const ROUTE = /^\/functions\/v1\/([^/]+)(\/.*)?$/;
const SKIPPED_DIRS = new Set(["tests"]);
const DEFAULT_CPU_LIMIT_MS = 2_000;
const DEFAULT_WALL_CLOCK_LIMIT_MS = 150_000;
const MAX_WORKERS_PER_FUNCTION = 16;
const MIN_CPU_CHECK_MS = 2;
const SHUTDOWN_GRACE_MS = 5_000;
// Headers that describe one hop, not the request: the router's fetch sets its own.
const HOP_HEADERS = ["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"];
const RESOURCE_LIMIT = {
  code: "WORKER_RESOURCE_LIMIT",
  message: "Function failed due to not having enough compute resources (please check logs)",
};
const WORKER_ERROR = { code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" };
const BOOT_ERROR = { code: "BOOT_ERROR", message: "Function failed to start (please check logs)" };

// Function logs belong with the other logs on stderr: stdout is the control channel (the router's
// FUNCTIONS_URL line; a worker's messages to the router).
for (const method of ["log", "info", "debug"] as const) {
  console[method] = (...args: unknown[]) => console.error(...args);
}

// --- shared -------------------------------------------------------------------------------------------

type Args =
  | { mode: "router"; functionsDir: string; port: number }
  | { mode: "worker"; functionsDir: string; slug: string; token: string };

function usage(message: string): never {
  console.error(`functions_host: ${message}`);
  console.error("usage: functions_host.ts [--functions-dir DIR] [--port N]");
  Deno.exit(2);
}

function parsePort(raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) usage(`invalid port ${JSON.stringify(raw)}`);
  return port;
}

function parseArgs(args: string[]): Args {
  const flags = new Set(["--functions-dir", "--port", "--worker", "--control-token"]);
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (!flags.has(flag)) usage(`unknown argument ${args[i]}`);
    const value = inline ?? args[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    values.set(flag, value);
  }
  const functionsDir = values.get("--functions-dir") ?? "supabase/functions";
  const slug = values.get("--worker");
  if (slug !== undefined) {
    const token = values.get("--control-token");
    if (token === undefined) usage("--worker needs --control-token");
    return { mode: "worker", functionsDir, slug, token };
  }
  const rawPort = values.get("--port") ?? Deno.env.get("FUNCTIONS_PORT") ?? "0";
  return { mode: "router", functionsDir, port: parsePort(rawPort) };
}

function positiveIntegerEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) usage(`${name} must be a positive integer`);
  return value;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function fileUrl(path: string): URL {
  // The pathname setter percent-encodes characters such as `#` and `?` that would break a naive
  // string concatenation.
  const url = new URL("file:///");
  url.pathname = path;
  return url;
}

function keepRunningOnStrayErrors(who: string): void {
  // Background work of a function (timers, un-awaited promises) must not take the process down.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    console.error(`unhandled rejection in ${who} (it keeps running):`, event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    console.error(`uncaught error in ${who} (it keeps running):`, event.error);
  });
}

// --- worker: one function, one invocation at a time ------------------------------------------------------

function pickHandler(args: unknown[]): Deno.ServeHandler | undefined {
  const [first, second] = args;
  if (typeof first === "function") return first as Deno.ServeHandler;
  if (typeof second === "function") return second as Deno.ServeHandler;
  const handler = (first as { handler?: unknown } | null | undefined)?.handler;
  return typeof handler === "function" ? (handler as Deno.ServeHandler) : undefined;
}

// Resolved on shutdown, so a module awaiting `server.finished` behaves as if its server closed then.
const { promise: hostFinished, resolve: finishHost } = Promise.withResolvers<void>();

async function loadFunction(indexPath: string): Promise<Deno.ServeHandler> {
  let captured: Deno.ServeHandler | undefined;
  const deno = Deno as unknown as { serve: unknown };
  const realServe = deno.serve;
  deno.serve = (...args: unknown[]) => {
    const handler = pickHandler(args);
    if (handler === undefined) throw new TypeError("Deno.serve was called without a handler");
    captured ??= handler;
    const stub = {
      finished: hostFinished,
      addr: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
      ref() {},
      unref() {},
      shutdown: () => Promise.resolve(),
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
    return stub;
  };
  try {
    await import(fileUrl(indexPath).href);
  } finally {
    deno.serve = realServe;
  }
  if (captured === undefined) throw new Error("index.ts never called Deno.serve(handler)");
  return captured;
}

/** `EdgeRuntime.waitUntil`, keeping the background work still running. */
function installEdgeRuntime(): Set<Promise<unknown>> {
  const pending = new Set<Promise<unknown>>();
  const g = globalThis as unknown as { EdgeRuntime?: unknown };
  g.EdgeRuntime ??= {
    waitUntil<T>(promise: Promise<T>): Promise<T> {
      const tracked: Promise<unknown> = Promise.resolve(promise)
        .catch((err) => console.error("EdgeRuntime.waitUntil task failed:", err))
        .finally(() => pending.delete(tracked));
      pending.add(tracked);
      return promise;
    },
  };
  return pending;
}

async function runHandler(
  slug: string,
  handler: Deno.ServeHandler,
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
): Promise<Response> {
  // The function's request signal never aborts: Deno's own req.signal also fires after every
  // successful response (legacy behaviour, with a warning), and a limit kills the worker instead.
  const forwarded = new Request(req.url, {
    method: req.method,
    headers: req.headers,
    body: req.body,
    redirect: req.redirect,
    signal: new AbortController().signal,
  });
  try {
    // Going through then() turns a synchronous throw in the handler into a rejection.
    return await Promise.resolve().then(() => handler(forwarded, info));
  } catch (err) {
    console.error(`[${slug}] uncaught error:`, err);
    return json(500, WORKER_ERROR);
  }
}

async function workerMain(
  { functionsDir, slug, token }: { functionsDir: string; slug: string; token: string },
) {
  const encoder = new TextEncoder();
  const tell = (message: Record<string, unknown>) =>
    Deno.stdout.writeSync(encoder.encode(`${token} ${JSON.stringify(message)}\n`));
  const pending = installEdgeRuntime();
  keepRunningOnStrayErrors(`function ${slug}`);
  Deno.addSignalListener("SIGTERM", () => {
    finishHost();
    Deno.exit(0);
  });
  // Exit with the router: it holds our stdin open and never writes to it.
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* nothing is ever sent */ }
    Deno.exit(0);
  })();

  let handler: Deno.ServeHandler;
  try {
    handler = await loadFunction(`${functionsDir}/${slug}/index.ts`);
  } catch (err) {
    console.error(`[${slug}] failed to boot:`, err);
    tell({ event: "boot_error" });
    Deno.exit(1);
  }

  // An invocation ends once its response is delivered (or abandoned by the client) and every
  // waitUntil promise has settled, including ones added meanwhile.
  const endAfter = async (completed: Promise<void>) => {
    await completed.catch(() => {});
    while (pending.size > 0) await Promise.allSettled([...pending]);
    tell({ event: "idle" });
  };

  Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => tell({ event: "ready", port }) },
    async (req, info) => {
      const response = await runHandler(slug, handler, req, info);
      endAfter(info.completed);
      return response;
    },
  );
}

// --- router: workers, limits, forwarding -----------------------------------------------------------------

type End = "done" | "cpu_limit" | "wall_clock_limit" | "crashed";

interface Limits {
  cpuMs: number;
  wallClockMs: number;
}

function cpuClock(): (pid: number) => number | undefined {
  // schedstat's first field: nanoseconds the thread has run (user + system), exact; stat's utime and
  // stime are clock ticks (USER_HZ, 100 on Linux), 10 ms apart. The main thread's id is the pid.
  const schedstat = (pid: number) => {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/schedstat`);
    return Number(text.slice(0, text.indexOf(" "))) / 1e6;
  };
  const stat = (pid: number) => {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
  let read = schedstat;
  try {
    schedstat(Deno.pid);
  } catch {
    read = stat;
    console.error("functions_host: no /proc/<pid>/schedstat; CPU time in 10 ms clock ticks");
  }
  return (pid) => {
    try {
      return read(pid);
    } catch {
      return undefined; // the worker is gone
    }
  };
}

let readThreadCpu: ((pid: number) => number | undefined) | undefined;

/** The CPU time of a process's main thread, where its JavaScript runs; undefined once it is gone. */
function threadCpuMs(pid: number): number | undefined {
  readThreadCpu ??= cpuClock(); // the router's; a worker may not read /proc
  return readThreadCpu(pid);
}

class Invocation {
  readonly answered = Promise.withResolvers<number>();
  readonly abort = new AbortController();
  status: number | undefined;
  killedFor: End | undefined;
  ended = false;

  constructor(readonly startedAt: number, readonly cpuStartMs: number) {}

  /** The status the client got; the first one given counts. */
  answer(status: number): void {
    this.status ??= status;
    this.answered.resolve(this.status);
  }
}

class Worker {
  readonly pid: number;
  readonly ready: Promise<void>;
  port = 0;
  state: "booting" | "idle" | "busy" | "gone" = "booting";
  /** Booting for a request that waits for it. */
  reserved = false;
  retiring = false;
  invocations = 0;
  current: Invocation | undefined;
  private readonly readyResolvers = Promise.withResolvers<void>();
  private firstUsedAt: number | undefined;
  private cpuBaseMs = 0;
  private lastCpuMs: number | undefined;
  private timers: ReturnType<typeof setTimeout>[] = [];
  private cpuTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly pool: Pool, private readonly child: Deno.ChildProcess) {
    this.pid = child.pid;
    this.ready = this.readyResolvers.promise;
    // A failed boot reaches whoever waits for the worker; the pool only stops booting spares.
    this.ready.then(() => pool.booted(true), () => pool.booted(false));
    this.readControl(child.stdout);
    child.status.then((status) => this.exited(status.code));
  }

  /** CPU time since the first invocation: what the limits are checked against. */
  cpuUsedMs(now = this.readCpu()): number | undefined {
    return now === undefined ? undefined : now - this.cpuBaseMs;
  }

  begin(startedAt: number): Invocation {
    const cpu = this.readCpu() ?? 0;
    if (this.firstUsedAt === undefined) {
      this.firstUsedAt = performance.now();
      this.cpuBaseMs = cpu;
      const { wallClockMs } = this.pool.limits;
      this.timers.push(setTimeout(() => this.retire("wall_clock_half"), Math.floor(wallClockMs / 2)));
      this.timers.push(setTimeout(() => this.wallClockReached(), wallClockMs));
    }
    this.invocations++;
    const invocation = new Invocation(startedAt, cpu);
    this.current = invocation;
    this.checkCpu(invocation, cpu);
    return invocation;
  }

  /** Takes no new invocation; exits once the current one has ended. */
  retire(reason: string): void {
    if (this.retiring || this.state === "gone") return;
    this.retiring = true;
    const cpu = Math.round(this.cpuUsedMs() ?? 0);
    console.error(
      `worker_retired function=${this.pool.slug} reason=${reason} worker=${this.pid} worker_cpu_ms=${cpu}`,
    );
    if (this.state === "idle") this.stop();
    this.pool.ensureSpare();
  }

  stop(): void {
    this.signal("SIGTERM");
  }

  /** The main thread's CPU time; the last value read once the worker is gone. */
  private readCpu(): number | undefined {
    this.lastCpuMs = threadCpuMs(this.pid) ?? this.lastCpuMs;
    return this.lastCpuMs;
  }

  // A thread cannot use more CPU time than real time passes, so the next look is due when the time left
  // under the limit has passed.
  private checkCpu(invocation: Invocation, now = this.readCpu()): void {
    if (this.current !== invocation || this.state === "gone") return;
    const used = this.cpuUsedMs(now);
    if (used === undefined) return;
    const limit = this.pool.limits.cpuMs;
    if (used >= limit) return this.kill("cpu_limit", "cpu_time", limit, used);
    this.cpuTimer = setTimeout(() => this.checkCpu(invocation), Math.max(limit - used, MIN_CPU_CHECK_MS));
  }

  private wallClockReached(): void {
    if (this.state === "gone") return;
    const limit = this.pool.limits.wallClockMs;
    const age = performance.now() - (this.firstUsedAt ?? 0);
    if (this.current && !this.current.ended) this.kill("wall_clock_limit", "wall_clock", limit, age);
    else this.stop();
  }

  private kill(end: End, limit: string, limitMs: number, usedMs: number): void {
    const invocation = this.current;
    const cpuEnd = this.readCpu();
    console.error(
      `limit_reached function=${this.pool.slug} limit=${limit} limit_ms=${limitMs} ` +
        `used_ms=${Math.round(usedMs)} worker=${this.pid}`,
    );
    this.signal("SIGKILL");
    if (invocation) {
      invocation.killedFor = end;
      invocation.abort.abort();
      this.end(invocation, end, cpuEnd);
    }
  }

  private signal(signal: Deno.Signal): void {
    const wasUsable = this.state === "idle" || this.state === "booting";
    this.state = "gone";
    this.clearTimers();
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
    if (wasUsable) this.pool.wake();
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    clearTimeout(this.cpuTimer);
  }

  /** The invocation is over: the worker takes the next one, or retires; the line is logged once the
   * client's status is known. */
  private async end(invocation: Invocation, end: End, cpuEnd: number | undefined): Promise<void> {
    if (invocation.ended) return;
    invocation.ended = true;
    clearTimeout(this.cpuTimer);
    const wallMs = performance.now() - invocation.startedAt;
    const cpuMs = (cpuEnd ?? invocation.cpuStartMs) - invocation.cpuStartMs;
    const workerCpuMs = this.cpuUsedMs(cpuEnd) ?? 0;
    if (this.current === invocation) this.current = undefined;
    if (this.state !== "gone") {
      if (workerCpuMs >= this.pool.limits.cpuMs / 2) this.retire("cpu_soft_limit");
      if (this.retiring) this.stop();
      else {
        this.state = "idle";
        this.pool.wake();
      }
    }
    const status = await invocation.answered.promise;
    console.error(
      `invocation function=${this.pool.slug} status=${status} cpu_ms=${Math.round(cpuMs)} ` +
        `wall_ms=${Math.round(wallMs)} end=${end} worker=${this.pid} ` +
        `worker_cpu_ms=${Math.round(workerCpuMs)} worker_invocations=${this.invocations}`,
    );
  }

  private onMessage(message: { event?: string; port?: number }): void {
    if (message.event === "ready" && typeof message.port === "number") {
      this.port = message.port;
      if (this.state === "booting") this.state = this.reserved ? "busy" : "idle";
      this.readyResolvers.resolve();
      if (this.state === "idle") this.pool.wake();
    } else if (message.event === "boot_error") {
      this.readyResolvers.reject(new Error("the function failed to boot"));
    } else if (message.event === "idle" && this.current && this.state === "busy") {
      this.end(this.current, "done", this.readCpu());
    }
  }

  private async readControl(stdout: ReadableStream<Uint8Array>): Promise<void> {
    const prefix = `${this.pool.router.token} `;
    let buffered = "";
    for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        // Anything else is a function writing to stdout itself: it belongs with the logs.
        if (line.startsWith(prefix)) this.onMessage(JSON.parse(line.slice(prefix.length)));
        else console.error(line);
      }
    }
  }

  private exited(code: number): void {
    const expected = this.state === "gone";
    this.state = "gone";
    this.clearTimers();
    this.readyResolvers.reject(new Error(`the worker exited with code ${code} before it was ready`));
    const invocation = this.current;
    const stopping = this.pool.router.stopping;
    if (invocation && !invocation.ended) {
      if (!stopping) {
        console.error(`[${this.pool.slug}] worker ${this.pid} exited with code ${code} mid-invocation`);
      }
      invocation.abort.abort();
      this.end(invocation, "crashed", this.lastCpuMs);
    } else if (!expected && !stopping && this.firstUsedAt !== undefined) {
      console.error(`[${this.pool.slug}] worker ${this.pid} exited with code ${code}`);
    }
    this.pool.forget(this);
  }
}

/** The workers of one function. */
class Pool {
  bootError = false;
  /** The last boot failed (the function was edited?): boot only for a request, not as a spare. */
  private lastBootFailed = false;
  private readonly workers = new Set<Worker>();
  private waiters: Array<() => void> = [];

  constructor(readonly router: Router, readonly slug: string, readonly limits: Limits) {}

  /** Boots the first worker; a function that cannot boot answers 503 from then on. */
  async start(): Promise<void> {
    try {
      await this.boot().ready;
    } catch {
      this.bootError = true;
    }
  }

  /** An idle worker, now busy: one that has served before, then a fresh one, then a new one. */
  async acquire(): Promise<Worker> {
    for (;;) {
      const idle = [...this.workers].filter((w) => w.state === "idle" && !w.retiring);
      const worker = idle.find((w) => w.invocations > 0) ?? idle[0];
      if (worker) {
        worker.state = "busy";
        return worker;
      }
      const booting = [...this.workers].find((w) => w.state === "booting" && !w.reserved) ??
        (this.live() < MAX_WORKERS_PER_FUNCTION ? this.boot() : undefined);
      if (booting) {
        booting.reserved = true;
        await booting.ready; // a boot failure reaches the caller: 503
        return booting;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Keeps a worker that will take the next request (idle, booting, or busy and staying), so a retired
   * or killed one is replaced in the background rather than when a request comes. */
  ensureSpare(): void {
    if (this.bootError || this.lastBootFailed || this.router.stopping) return;
    const spare = [...this.workers].some((w) =>
      !w.retiring && (w.state === "idle" || w.state === "busy" || (w.state === "booting" && !w.reserved))
    );
    if (spare || this.live() >= MAX_WORKERS_PER_FUNCTION) return;
    try {
      this.boot();
    } catch (err) {
      this.lastBootFailed = true;
      console.error(`[${this.slug}] cannot start a worker:`, err);
    }
  }

  booted(ok: boolean): void {
    this.lastBootFailed = !ok;
  }

  /** A worker became free, or went away: requests waiting for one look again. */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  forget(worker: Worker): void {
    this.workers.delete(worker);
    this.wake();
    this.ensureSpare();
  }

  stopAll(): void {
    for (const worker of this.workers) worker.stop();
  }

  private live(): number {
    return [...this.workers].filter((w) => w.state !== "gone").length;
  }

  private boot(): Worker {
    const worker = new Worker(this, this.router.spawn(this.slug));
    this.workers.add(worker);
    return worker;
  }
}

class Router {
  readonly token = crypto.randomUUID();
  readonly pools = new Map<string, Pool>();
  stopping = false;
  private readonly script = decodeURIComponent(new URL(import.meta.url).pathname);
  private readonly env: Record<string, string>;

  constructor(readonly root: string, slugs: string[], limits: Limits) {
    const env = Deno.env.toObject();
    for (const name of ["EDGE_CPU_LIMIT_MS", "EDGE_WALL_CLOCK_LIMIT_MS", "FUNCTIONS_PORT"]) delete env[name];
    this.env = env;
    for (const slug of slugs) this.pools.set(slug, new Pool(this, slug, limits));
  }

  spawn(slug: string): Deno.ChildProcess {
    const permissions = ["--allow-net", "--allow-env", `--allow-read=${this.root},${this.script}`];
    return new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        ...permissions,
        this.script,
        ...["--worker", slug, "--functions-dir", this.root, "--control-token", this.token],
      ],
      clearEnv: true,
      env: { ...this.env },
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  }

  async invoke(slug: string, req: Request, target: URL): Promise<Response> {
    const startedAt = performance.now();
    const pool = this.pools.get(slug)!;
    // The body first: a slow upload must not hold a worker.
    const body = req.body ? await req.arrayBuffer() : undefined;
    let worker: Worker;
    try {
      worker = await pool.acquire();
    } catch (err) {
      console.error(`[${slug}] no worker:`, err instanceof Error ? err.message : err);
      return json(503, BOOT_ERROR);
    }
    const invocation = worker.begin(startedAt);
    const headers = new Headers(req.headers);
    for (const name of HOP_HEADERS) headers.delete(name);
    // The worker must not compress: fetch would decode the body and keep the header.
    headers.set("accept-encoding", "identity");
    try {
      const answer = await fetch(`http://127.0.0.1:${worker.port}${target.pathname}${target.search}`, {
        method: req.method,
        headers,
        body,
        redirect: "manual",
        signal: invocation.abort.signal,
      });
      invocation.answer(answer.status);
      return new Response(answer.body, {
        status: answer.status,
        statusText: answer.statusText,
        headers: answer.headers,
      });
    } catch (err) {
      if (invocation.killedFor === "cpu_limit" || invocation.killedFor === "wall_clock_limit") {
        invocation.answer(546);
        return json(546, RESOURCE_LIMIT);
      }
      console.error(
        `[${slug}] worker ${worker.pid} did not answer:`,
        err instanceof Error ? err.message : err,
      );
      invocation.answer(500);
      if (worker.state !== "gone") worker.stop();
      return json(500, WORKER_ERROR);
    }
  }

  handler(): (req: Request) => Promise<Response> | Response {
    const loaded = [...this.pools].filter(([, p]) => !p.bootError).map(([slug]) => slug);
    const failed = [...this.pools].filter(([, p]) => p.bootError).map(([slug]) => slug);
    const notFound = () => json(404, { code: "NOT_FOUND", message: "Requested function was not found" });

    return (req) => {
      const url = new URL(req.url);
      if (url.pathname === HEALTH_PATH) {
        if (req.method !== "GET") return json(405, { code: "METHOD_NOT_ALLOWED" }, { allow: "GET" });
        return json(200, { status: "ok", functions: loaded, boot_errors: failed });
      }
      const match = ROUTE.exec(url.pathname);
      const pool = match ? this.pools.get(match[1]) : undefined;
      if (!match || pool === undefined) return notFound();
      const [, slug, rest = ""] = match;
      if (pool.bootError) return json(503, BOOT_ERROR);
      const target = new URL(url);
      target.pathname = `/${slug}${rest}`;
      return this.invoke(slug, req, target);
    };
  }

  stopWorkers(): void {
    this.stopping = true;
    for (const pool of this.pools.values()) pool.stopAll();
  }
}

async function discover(root: string): Promise<string[]> {
  const slugs: string[] = [];
  for await (const entry of Deno.readDir(root)) {
    const name = entry.name;
    if (name.startsWith("_") || name.startsWith(".") || SKIPPED_DIRS.has(name)) continue;
    try {
      if ((await Deno.stat(`${root}/${name}/index.ts`)).isFile) slugs.push(name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) throw err;
    }
  }
  return slugs.sort();
}

async function routerMain({ functionsDir, port }: { functionsDir: string; port: number }): Promise<void> {
  const limits = {
    cpuMs: positiveIntegerEnv("EDGE_CPU_LIMIT_MS", DEFAULT_CPU_LIMIT_MS),
    wallClockMs: positiveIntegerEnv("EDGE_WALL_CLOCK_LIMIT_MS", DEFAULT_WALL_CLOCK_LIMIT_MS),
  };
  keepRunningOnStrayErrors("the functions host");
  const root = await Deno.realPath(functionsDir);
  const router = new Router(root, await discover(root), limits);
  await Promise.all([...router.pools.values()].map((pool) => pool.start()));
  const names = [...router.pools.keys()].join(", ");
  console.error(
    `functions_host: ${router.pools.size} function(s) from ${root}: ${names}; ` +
      `limits per worker: cpu ${limits.cpuMs} ms, wall clock ${limits.wallClockMs} ms`,
  );

  const route = router.handler();
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port,
      // Replaces Deno's default "Listening on ..." stdout line with the one line the launcher parses.
      onListen: ({ port }) => {
        const line = `FUNCTIONS_URL=http://127.0.0.1:${port}/functions/v1\n`;
        Deno.stdout.writeSync(new TextEncoder().encode(line));
      },
    },
    async (req) => {
      const started = performance.now();
      const response = await route(req);
      // Method, path and status only: headers, bodies and query strings can carry keys.
      const ms = Math.round(performance.now() - started);
      console.error(`${req.method} ${new URL(req.url).pathname} ${response.status} ${ms}ms`);
      return response;
    },
  );

  const stop = (signal: Deno.Signal) => {
    if (router.stopping) return;
    console.error(`functions_host: ${signal}, shutting down`);
    router.stopWorkers();
    // In-flight requests get a short grace period.
    setTimeout(() => Deno.exit(0), SHUTDOWN_GRACE_MS);
    server.shutdown().finally(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}

const args = parseArgs(Deno.args);
if (args.mode === "worker") await workerMain(args);
else await routerMain(args);

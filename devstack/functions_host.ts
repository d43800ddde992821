/**
 * Local edge-function host for the dev stack.
 *
 * Serves every `<functions-dir>/<slug>/index.ts` at `http://127.0.0.1:<port>/functions/v1/<slug>`,
 * the way Supabase exposes Edge Functions at `https://<ref>.supabase.co/functions/v1/<slug>`.
 *
 * Usage:
 *   deno run --no-prompt --allow-net --allow-env --allow-read=<functions-dir>,<this file> \
 *     devstack/functions_host.ts --functions-dir supabase/functions --port 0
 * `--port` falls back to env FUNCTIONS_PORT, then 0 (pick a free port). Once listening, the host
 * prints exactly one stdout line, `FUNCTIONS_URL=http://127.0.0.1:<port>/functions/v1`; everything
 * else (request lines, function logs, errors) goes to stderr.
 *
 * What it mirrors:
 * - Discovery like the Supabase CLI: each subfolder with an `index.ts` is a function, except names
 *   starting with `_` or `.`, and `tests`.
 * - Functions are written as `Deno.serve(handler)`. Like Supabase's edge runtime, the host owns the
 *   listener: it captures the handler while importing the module instead of letting it bind a port.
 * - Routing: `/functions/v1/<slug>[/rest]?query` reaches the function as `/<slug>[/rest]?query`,
 *   which is the path deployed functions see (hence routers using `basePath("/<slug>")`).
 * - Platform errors as JSON `{code, message}`: unknown slug 404 NOT_FOUND; a module that fails to
 *   import (or never calls Deno.serve) 503 BOOT_ERROR; an uncaught handler error 500 WORKER_ERROR;
 *   no response within EDGE_WALL_CLOCK_LIMIT_MS (default 150000, the Free-plan limit) 546 WORKER_LIMIT.
 * - The environment: the host passes on whatever it was started with; devstack/functions.py starts it
 *   with only what Supabase injects (SUPABASE_URL, SUPABASE_DB_URL, keys) plus the function secrets.
 * - `EdgeRuntime.waitUntil(promise)` exists (minimal shim: the promise just runs, failures are logged).
 *
 * What it does NOT mirror:
 * - No isolate per function: all functions share this process, its globals, module cache and env.
 *   A busy loop in one blocks all; an uncaught error is contained only as far as listed above.
 * - No CPU-time (2 s) or memory (256 MB) limit.
 * - The wall-clock limit here is per request. On the platform it bounds a worker's lifetime (a worker
 *   may serve several requests), and a request left without a response for 150 s gets a 504 idle
 *   timeout. Past the limit the host answers 546 but cannot kill the handler: it keeps running in the
 *   background; the request's `signal` is aborted so cooperative code (fetch with signal) stops.
 *   A client disconnecting early does not abort that signal.
 *   The limit covers the time to the response headers, not the streaming of a response body.
 * - No JWT verification gateway. On Supabase, verify_jwt (on by default) makes the gateway answer 401
 *   to requests without a valid JWT before the function runs. bubble_sync is deployed with
 *   verify_jwt=false and checks its own shared secret, so doing no verification here is faithful for
 *   it; a function relying on verify_jwt would be unprotected here.
 * - No `sb-error-code` header, no 405 for methods outside GET/POST/PUT/PATCH/DELETE/OPTIONS, no
 *   text/html -> text/plain rewrite, no per-function deno.json/import map, no hot reload (restart the
 *   host after editing a function), no `beforeunload` event.
 */

type Loaded = { handler: Deno.ServeHandler } | { bootError: string };

const HEALTH_PATH = "/_internal/health";
const ROUTE = /^\/functions\/v1\/([^/]+)(\/.*)?$/;
const SKIPPED_DIRS = new Set(["tests"]);
const DEFAULT_WALL_CLOCK_LIMIT_MS = 150_000;
const SHUTDOWN_GRACE_MS = 5_000;

// Function logs belong with the other logs on stderr: stdout is the launcher's control channel and
// carries only the FUNCTIONS_URL line (a pipe nobody reads could also fill up and block the host).
for (const method of ["log", "info", "debug"] as const) {
  console[method] = (...args: unknown[]) => console.error(...args);
}

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

function parseArgs(args: string[]): { functionsDir: string; port: number } {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag !== "--functions-dir" && flag !== "--port") usage(`unknown argument ${args[i]}`);
    const value = inline ?? args[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    values.set(flag, value);
  }
  const rawPort = values.get("--port") ?? Deno.env.get("FUNCTIONS_PORT") ?? "0";
  return {
    functionsDir: values.get("--functions-dir") ?? "supabase/functions",
    port: parsePort(rawPort),
  };
}

function wallClockLimitMs(): number {
  const raw = Deno.env.get("EDGE_WALL_CLOCK_LIMIT_MS");
  if (raw === undefined || raw === "") return DEFAULT_WALL_CLOCK_LIMIT_MS;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms <= 0) usage(`EDGE_WALL_CLOCK_LIMIT_MS must be a positive integer`);
  return ms;
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
    // Modules import one at a time, so whatever Deno.serve captures belongs to this function.
    await import(fileUrl(indexPath).href);
  } finally {
    deno.serve = realServe;
  }
  if (captured === undefined) throw new Error("index.ts never called Deno.serve(handler)");
  return captured;
}

async function loadAll(root: string): Promise<Map<string, Loaded>> {
  const functions = new Map<string, Loaded>();
  for (const slug of await discover(root)) {
    try {
      functions.set(slug, { handler: await loadFunction(`${root}/${slug}/index.ts`) });
    } catch (err) {
      console.error(`[${slug}] failed to boot:`, err);
      functions.set(slug, { bootError: String(err) });
    }
  }
  return functions;
}

function installEdgeRuntimeShim(): void {
  const g = globalThis as unknown as { EdgeRuntime?: unknown };
  g.EdgeRuntime ??= {
    waitUntil<T>(promise: Promise<T>): Promise<T> {
      promise.catch((err) => console.error("EdgeRuntime.waitUntil task failed:", err));
      return promise;
    },
  };
}

function keepHostAliveOnStrayErrors(): void {
  // Background work of one function (timers, un-awaited promises, a handler still running after
  // its 546) must not take down the host and every other function with it.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    console.error("unhandled rejection in a function (host keeps running):", event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    console.error("uncaught error in a function (host keeps running):", event.error);
  });
}

const TIMED_OUT = Symbol("timed out");

async function invoke(
  slug: string,
  handler: Deno.ServeHandler,
  req: Request,
  target: URL,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  limitMs: number,
): Promise<Response> {
  // The function's request signal aborts only at the wall clock limit. Deno's own req.signal is not
  // chained in: it also fires after every successful response (legacy behaviour, with a warning).
  const limit = new AbortController();
  const forwarded = new Request(target, {
    method: req.method,
    headers: req.headers,
    body: req.body,
    redirect: req.redirect,
    signal: limit.signal,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), limitMs);
  });
  // Going through then() turns a synchronous throw in the handler into a rejection.
  const work = Promise.resolve().then(() => handler(forwarded, info));
  try {
    const result = await Promise.race([work, timeout]);
    if (result !== TIMED_OUT) return result;
    limit.abort(new DOMException("Wall clock limit reached", "TimeoutError"));
    console.error(`[${slug}] wall clock limit of ${limitMs} ms reached; handler left running`);
    work.catch((err) => console.error(`[${slug}] handler failed after its wall clock limit:`, err));
    return json(546, { code: "WORKER_LIMIT", message: "Wall clock limit reached" });
  } catch (err) {
    console.error(`[${slug}] uncaught error:`, err);
    return json(500, {
      code: "WORKER_ERROR",
      message: "Function exited due to an error (please check logs)",
    });
  } finally {
    clearTimeout(timer);
  }
}

function makeRouter(functions: Map<string, Loaded>, limitMs: number) {
  const loaded = [...functions].filter(([, f]) => "handler" in f).map(([slug]) => slug);
  const failed = [...functions].filter(([, f]) => "bootError" in f).map(([slug]) => slug);
  const notFound = () => json(404, { code: "NOT_FOUND", message: "Requested function was not found" });

  return (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> | Response => {
    const url = new URL(req.url);
    if (url.pathname === HEALTH_PATH) {
      if (req.method !== "GET") return json(405, { code: "METHOD_NOT_ALLOWED" }, { allow: "GET" });
      return json(200, { status: "ok", functions: loaded, boot_errors: failed });
    }
    const match = ROUTE.exec(url.pathname);
    const fn = match ? functions.get(match[1]) : undefined;
    if (!match || fn === undefined) return notFound();
    const [, slug, rest = ""] = match;
    if ("bootError" in fn) {
      return json(503, { code: "BOOT_ERROR", message: "Function failed to start (please check logs)" });
    }
    const target = new URL(url);
    target.pathname = `/${slug}${rest}`;
    return invoke(slug, fn.handler, req, target, info, limitMs);
  };
}

async function main(): Promise<void> {
  const { functionsDir, port } = parseArgs(Deno.args);
  const limitMs = wallClockLimitMs();
  installEdgeRuntimeShim();
  keepHostAliveOnStrayErrors();

  const root = await Deno.realPath(functionsDir);
  const functions = await loadAll(root);
  console.error(
    `functions_host: ${functions.size} function(s) from ${root}: ${[...functions.keys()].join(", ")}`,
  );

  const route = makeRouter(functions, limitMs);
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
    async (req, info) => {
      const started = performance.now();
      const response = await route(req, info);
      // Method, path and status only: headers, bodies and query strings can carry keys.
      const ms = Math.round(performance.now() - started);
      console.error(`${req.method} ${new URL(req.url).pathname} ${response.status} ${ms}ms`);
      return response;
    },
  );

  let stopping = false;
  const stop = (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    console.error(`functions_host: ${signal}, shutting down`);
    finishHost();
    // In-flight requests get a short grace period; handlers left running past their limit would
    // otherwise keep the process alive.
    setTimeout(() => Deno.exit(0), SHUTDOWN_GRACE_MS);
    server.shutdown().finally(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}

await main();

/**
 * A worker process (`functions_host.ts --worker <slug>`): it imports one function, captures the handler it
 * gives `Deno.serve`, serves it on loopback one invocation at a time, and tells the router on stdout when
 * it is ready, failed to boot, or is idle again.
 */

import { json, WORKER_ERROR } from "./platform_errors.ts";
import { keepRunningOnStrayErrors } from "./stray_errors.ts";

function pickHandler(args: unknown[]): Deno.ServeHandler | undefined {
  const [first, second] = args;
  if (typeof first === "function") return first as Deno.ServeHandler;
  if (typeof second === "function") return second as Deno.ServeHandler;
  const handler = (first as { handler?: unknown } | null | undefined)?.handler;
  return typeof handler === "function" ? (handler as Deno.ServeHandler) : undefined;
}

// Resolved on shutdown, so a module awaiting `server.finished` behaves as if its server closed then.
const { promise: hostFinished, resolve: finishHost } = Promise.withResolvers<void>();

function fileUrl(path: string): URL {
  // The pathname setter percent-encodes characters such as `#` and `?` that would break a naive
  // string concatenation.
  const url = new URL("file:///");
  url.pathname = path;
  return url;
}

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

export async function workerMain(
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

/** The router process: finds the functions, boots a worker of each, listens, and shuts down on a signal. */

import { discover } from "./discover.ts";
import { limitsFromEnv } from "./limits.ts";
import { Router } from "./router.ts";
import { keepRunningOnStrayErrors } from "./stray_errors.ts";

const SHUTDOWN_GRACE_MS = 5_000;

/** `script` is the host's entry point, which the router starts workers from. */
export async function routerMain(
  { script, functionsDir, port }: { script: string; functionsDir: string; port: number },
): Promise<void> {
  const limits = limitsFromEnv();
  keepRunningOnStrayErrors("the functions host");
  const root = await Deno.realPath(functionsDir);
  const router = new Router(script, root, await discover(root), limits);
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

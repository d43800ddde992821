/** The router: routes `/functions/v1/<slug>` to a worker of the function, starts workers, and answers health. */

import { HOST_ENV_NAMES, type Limits } from "./limits.ts";
import { BOOT_ERROR, json, NOT_FOUND, RESOURCE_LIMIT, WORKER_ERROR } from "./platform_errors.ts";
import { Pool } from "./pool.ts";
import type { Worker } from "./worker_process.ts";

const HEALTH_PATH = "/_internal/health";
const ROUTE = /^\/functions\/v1\/([^/]+)(\/.*)?$/;
// Headers that describe one hop, not the request: the router's fetch sets its own.
const HOP_HEADERS = ["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"];

export class Router {
  readonly token = crypto.randomUUID();
  readonly pools = new Map<string, Pool>();
  stopping = false;
  private readonly env: Record<string, string>;

  /** `script` is the host's entry point, which workers run with `--worker <slug>`. */
  constructor(private readonly script: string, readonly root: string, slugs: string[], limits: Limits) {
    const env = Deno.env.toObject();
    for (const name of HOST_ENV_NAMES) delete env[name];
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

    return (req) => {
      const url = new URL(req.url);
      if (url.pathname === HEALTH_PATH) {
        if (req.method !== "GET") return json(405, { code: "METHOD_NOT_ALLOWED" }, { allow: "GET" });
        return json(200, { status: "ok", functions: loaded, boot_errors: failed });
      }
      const match = ROUTE.exec(url.pathname);
      const pool = match ? this.pools.get(match[1]) : undefined;
      if (!match || pool === undefined) return json(404, NOT_FOUND);
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

// The HTTP face of bubble_sync: who may call it, what it accepts, and how it answers.
//
//   GET                      200 {"status": "ok", "function": "bubble_sync"}: liveness, no I/O, no credential.
//   GET ?check=deep          with the credential: also checks the config and that the database answers
//                            (200, or 503 naming the problem).
//   POST {"action": "process_queue_data_api" | "retry_failed" | "verify", "limit"?: n, "wait"?: bool}
//                            (limit: the most rows this run claims; without it, until no row is due; verify:
//                            the scheduled verification of each mapping's sample against Bubble, verify.ts)
//                            with `Authorization: Bearer <key>` or `apikey: <key>`, the key being
//                            SUPABASE_SERVICE_ROLE_KEY or one of SUPABASE_SECRET_KEYS:
//                            202 {"accepted": true, "action"} at once, the work continuing in the background
//                            (pg_net waits 5 s and reads no answer); with "wait": true, 200 and the run's
//                            summary once it is done.
//   401 without the credential, 400 for a bad body, 405 for other methods, 500 naming a missing or invalid
//   environment variable (never its value).

import { isAuthorized } from "./auth.ts";
import { BubbleClient, createFetchWithoutPool, type Fetch } from "./bubble.ts";
import {
  type Config,
  ConfigError,
  type EnvReader,
  loadCallerKeys,
  loadConfig,
  redact,
  secretsOf,
} from "./config.ts";
import { SharedGate } from "./gate.ts";
import { Run, type RunOptions } from "./process.ts";
import { postgresQueue } from "./postgres_queue.ts";
import { type Action, ACTIONS, type Queue } from "./queue.ts";
import type { Summary } from "./summary.ts";
import { verifyMappings, type VerifySummary } from "./verify.ts";

/** What a caller may ask for: a run of the queue, or the scheduled verification. */
const REQUESTS = [...ACTIONS, "verify"] as const;
type Requested = typeof REQUESTS[number];

export interface HandlerDeps {
  env: EnvReader;
  /** The queue for a configuration (the database at SUPABASE_DB_URL in production). */
  queueFor: (config: Config) => Queue;
  /** fetch for searches and modifies. */
  fetch: Fetch;
  /** fetch for creates; the default opens a fresh connection per request (see createFetchWithoutPool). */
  fetchCreate: Fetch;
  /** Milliseconds; only differences matter. */
  now: () => number;
  /** One line per run; never a token, a key or a payload. */
  log: (line: string) => void;
  /** Keeps background work alive after the response (Supabase's EdgeRuntime.waitUntil); null: await it. */
  waitUntil: ((work: Promise<unknown>) => void) | null;
}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_LIMIT = 100_000;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function configProblem(error: ConfigError): Response {
  return json(500, { error: "configuration", variable: error.variable, message: error.message });
}

class BadRequest extends Error {}

interface Body {
  action: Requested;
  limit: number | null;
  wait: boolean;
}

async function readBody(req: Request): Promise<Body> {
  const text = await req.text();
  if (text.length > MAX_BODY_BYTES) throw new BadRequest(`the body is larger than ${MAX_BODY_BYTES} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest('the body must be JSON: {"action": "process_queue_data_api" | "retry_failed"}');
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequest(
      'the body must be a JSON object: {"action": "process_queue_data_api" | "retry_failed"}',
    );
  }
  const { action, limit, wait } = body as Record<string, unknown>;
  if (typeof action !== "string" || !(REQUESTS as readonly string[]).includes(action)) {
    throw new BadRequest(`unknown action ${JSON.stringify(action ?? null)}; use ${REQUESTS.join(" or ")}`);
  }
  if (
    limit !== undefined && limit !== null && !(Number.isInteger(limit) && (limit as number) >= 1 &&
      (limit as number) <= MAX_LIMIT)
  ) {
    throw new BadRequest(`limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  if (wait !== undefined && typeof wait !== "boolean") throw new BadRequest("wait must be true or false");
  return { action: action as Requested, limit: (limit as number | undefined) ?? null, wait: wait === true };
}

let sharedFetchCreate: Fetch | undefined;

function defaultDeps(): HandlerDeps {
  return {
    env: (name) => Deno.env.get(name),
    queueFor: (config) => postgresQueue(config.dbUrl),
    fetch: (input, init) => fetch(input, init),
    fetchCreate: (input, init) => {
      sharedFetchCreate ??= createFetchWithoutPool() ?? ((i, n) => fetch(i, n));
      return sharedFetchCreate(input, init);
    },
    now: () => Date.now(),
    log: (line) => console.log(line),
    waitUntil: null, // looked up per request: the runtime provides EdgeRuntime
  };
}

function edgeRuntimeWaitUntil(): ((work: Promise<unknown>) => void) | null {
  const runtime =
    (globalThis as { EdgeRuntime?: { waitUntil?: (work: Promise<unknown>) => void } }).EdgeRuntime;
  return typeof runtime?.waitUntil === "function" ? (work) => runtime.waitUntil!(work) : null;
}

/** The request handler, with its dependencies replaceable for tests. */
export function createHandler(overrides: Partial<HandlerDeps> = {}): (req: Request) => Promise<Response> {
  const deps: HandlerDeps = { ...defaultDeps(), ...overrides };
  const waitUntil = () => "waitUntil" in overrides ? deps.waitUntil : edgeRuntimeWaitUntil();

  function bubbleFor(config: Config, queue: Queue): BubbleClient {
    return new BubbleClient(
      {
        baseUrl: config.bubbleBaseUrl,
        token: config.bubbleToken,
        timeoutMs: config.httpTimeoutMs,
      },
      deps.fetch,
      deps.fetchCreate,
      deps.now,
      new SharedGate(queue, config.rateLimitPerMinute, deps.now),
    );
  }

  async function run(config: Config, options: RunOptions, secrets: string[]): Promise<Summary> {
    const queue = deps.queueFor(config);
    const bubble = bubbleFor(config, queue);
    const scrub = (text: string) => redact(text, secrets);
    try {
      const summary = await new Run(config, queue, bubble, deps.now, scrub, options)
        .execute();
      deps.log(JSON.stringify({ event: "bubble_sync.run", ...summary }));
      return summary;
    } catch (error) {
      const message = scrub(error instanceof Error ? error.message : String(error));
      deps.log(JSON.stringify({ event: "bubble_sync.run_failed", action: options.action, error: message }));
      throw new Error(message);
    }
  }

  async function verify(config: Config, secrets: string[]): Promise<VerifySummary> {
    const queue = deps.queueFor(config);
    const scrub = (text: string) => redact(text, secrets);
    const summary = await verifyMappings(
      config.mappings,
      config.verifySample,
      queue,
      bubbleFor(config, queue),
      deps.now,
      scrub,
    );
    // counts and mapping names only: never a key or a value
    deps.log(JSON.stringify({ event: "bubble_sync.verify", ...summary }));
    return summary;
  }

  /** The work a request asked for: a run of the queue, or the verification. */
  function work(config: Config, options: Body, secrets: string[]): Promise<Summary | VerifySummary> {
    if (options.action === "verify") return verify(config, secrets);
    return run(config, { action: options.action as Action, limit: options.limit }, secrets);
  }

  async function health(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.searchParams.get("check") !== "deep") return json(200, { status: "ok", function: "bubble_sync" });
    const keys = loadCallerKeys(deps.env);
    if (!(await isAuthorized(req.headers, keys))) return json(401, { error: "unauthorized" });
    let config: Config;
    try {
      config = loadConfig(deps.env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return json(503, { status: "error", function: "bubble_sync", config: error.message });
    }
    try {
      await deps.queueFor(config).ping();
    } catch (error) {
      const message = redact(error instanceof Error ? error.message : String(error), secretsOf(deps.env));
      return json(503, { status: "error", function: "bubble_sync", config: "ok", database: message });
    }
    return json(200, { status: "ok", function: "bubble_sync", config: "ok", database: "ok" });
  }

  async function post(req: Request): Promise<Response> {
    const keys = loadCallerKeys(deps.env);
    if (!(await isAuthorized(req.headers, keys))) {
      return json(401, {
        error: "unauthorized",
        message:
          "send the service role key or a secret key as Authorization: Bearer <key> (or apikey: <key>)",
      }, { "www-authenticate": "Bearer" });
    }
    let options: Body;
    try {
      options = await readBody(req);
    } catch (error) {
      if (error instanceof BadRequest) return json(400, { error: "bad_request", message: error.message });
      throw error;
    }
    const config = loadConfig(deps.env);
    const secrets = secretsOf(deps.env);

    if (options.wait) {
      try {
        return json(200, await work(config, options, secrets));
      } catch (error) {
        const message = redact((error as Error).message, secrets);
        return json(500, { error: "run_failed", action: options.action, message });
      }
    }
    // Failures are logged by run(); the caller (pg_net) reads no answer anyway.
    const background = work(config, options, secrets).catch(() => {});
    const keepAlive = waitUntil();
    if (keepAlive) keepAlive(background);
    else await background;
    return json(202, { accepted: true, action: options.action });
  }

  return async (req: Request): Promise<Response> => {
    try {
      if (req.method === "GET") return await health(req);
      if (req.method !== "POST") {
        return json(405, { error: "method_not_allowed", message: "use POST (or GET for health)" }, {
          allow: "GET, POST",
        });
      }
      return await post(req);
    } catch (error) {
      if (error instanceof ConfigError) return configProblem(error);
      const message = redact(error instanceof Error ? error.message : String(error), secretsOf(deps.env));
      deps.log(JSON.stringify({ event: "bubble_sync.error", error: message }));
      return json(500, { error: "internal", message });
    }
  };
}

/** The handler Supabase runs (see index.ts). */
export const handler: (req: Request) => Promise<Response> = createHandler();

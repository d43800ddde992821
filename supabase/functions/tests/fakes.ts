// The fakes the bubble_sync tests share, and the one module they import them from: no database, no network.
// FakeQueue (fake_queue.ts) is an in-memory queue that follows sql/functions/lease.sql; FakeBubble
// (fake_bubble.ts) is a fake `fetch` holding things in memory. Both record every call. `setup` builds the
// handler under test around them.

import { createHandler, type HandlerDeps } from "../bubble_sync/handler.ts";
import { assertEquals } from "./assertions.ts";
import { BASE, FakeBubble, TOKEN } from "./fake_bubble.ts";
import { FakeQueue } from "./fake_queue.ts";

export { assert, assertEquals, assertMatch } from "./assertions.ts";
export {
  BASE,
  bubbleError,
  FakeBubble,
  hang,
  type Override,
  type SeenRequest,
  TOKEN,
} from "./fake_bubble.ts";
export { FakeQueue, type FakeRow } from "./fake_queue.ts";

// --- the handler under test --------------------------------------------------------------------------------

export const LEGACY_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.signature-legacy";
export const SECRET_KEY = "sb_secret_abcdefghijklmnopqrstuvwx";
export const DB_PASSWORD = "db-password-9c1e";

export const BASE_ENV: Record<string, string> = {
  SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co",
  SUPABASE_DB_URL: `postgresql://postgres:${DB_PASSWORD}@db.example:5432/postgres`,
  SUPABASE_SERVICE_ROLE_KEY: LEGACY_KEY,
  SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
  BUBBLE_BASE_URL: BASE,
  BUBBLE_API_TOKEN: TOKEN,
  BUBBLE_SYNC_HTTP_TIMEOUT_MS: "200",
  // Unpaced unless a test is about pacing (the stack config's default paces at 1,000 requests a minute).
  BUBBLE_RATE_LIMIT_PER_MINUTE: "0",
};

export interface Setup {
  handler: (req: Request) => Promise<Response>;
  queue: FakeQueue;
  bubble: FakeBubble;
  logs: string[];
  clock: { now: number };
}

export function setup(env: Record<string, string | undefined> = {}, deps: Partial<HandlerDeps> = {}): Setup {
  const queue = new FakeQueue();
  const bubble = new FakeBubble();
  const logs: string[] = [];
  const clock = { now: 1_000_000 };
  const merged = { ...BASE_ENV, ...env };
  const handler = createHandler({
    env: (name) => merged[name],
    queueFor: () => queue,
    fetch: bubble.fetch,
    fetchCreate: bubble.fetchCreate,
    now: () => clock.now,
    log: (line) => logs.push(line),
    waitUntil: null,
    ...deps,
  });
  return { handler, queue, bubble, logs, clock };
}

export function post(
  body: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${SECRET_KEY}` },
) {
  return new Request("http://localhost/bubble_sync", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export async function runWait(
  s: Setup,
  body: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const response = await s.handler(post({ action: "process_queue_data_api", wait: true, ...body }));
  const summary = await response.json();
  assertEquals(response.status, 200, JSON.stringify(summary));
  return summary;
}

export function pick(summary: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, summary[k]]));
}

export const COUNTS = ["claimed", "completed", "failed", "deferred", "permanently_failed"];

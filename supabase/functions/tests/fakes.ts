// The fakes the bubble_sync tests share: no database, no network. FakeQueue is an in-memory queue that follows
// sql/functions/lease.sql (and bubble_sync.links); FakeBubble is a fake `fetch` holding things in memory, by
// data type. Both record every call. `setup` builds the handler under test around them.

import { createHandler, type HandlerDeps } from "../bubble_sync/handler.ts";
import type { Fetch } from "../bubble_sync/bubble.ts";
import { duplicateOf } from "../bubble_sync/deletes.ts";
import {
  type Action,
  type FailOutcome,
  type FailReason,
  linkKey,
  type Queue,
  type QueueRow,
  type RecordKey,
} from "../bubble_sync/queue.ts";
import type { Answer, GateView, Grant } from "../bubble_sync/gate.ts";
import { failureKind } from "../bubble_sync/status_kind.ts";

// --- assertions (no jsr:@std available here) -------------------------------------------------------------

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEquals(actual: unknown, expected: unknown, message = ""): void {
  const a = JSON.stringify(actual, null, 1);
  const e = JSON.stringify(expected, null, 1);
  if (a !== e) throw new Error(`${message}\nexpected: ${e}\nactual:   ${a}`);
}

export function assertMatch(actual: string, pattern: RegExp): void {
  if (!pattern.test(actual)) throw new Error(`${JSON.stringify(actual)} does not match ${pattern}`);
}

// --- the fake queue ----------------------------------------------------------------------------------------

export interface FakeRow extends QueueRow {
  id: number;
  status: "pending" | "processing" | "completed" | "failed";
  error_message: string | null;
  next_retry_at: number | null;
}

export class FakeQueue implements Queue {
  /** The runs the database was asked to invoke (fan_out), by action. */
  wakes: Action[] = [];
  registrations: { action: Action; seconds: number }[] = [];
  fanOuts: { action: Action; wanted: number; rowsPerRun: number; endingRun: string | null | undefined }[] =
    [];
  /** Runs registered and not ended (bubble_sync.worker_runs with started_at). */
  runsGoing = new Set<string>();
  /** Runs invoked by fan_out that have not begun. */
  invokedNotBegun = 0;
  /** What bubble_sync.fan_out raises at a run's end (say, a Vault secret missing). */
  fanOutError: Error | null = null;
  rows: FakeRow[] = [];
  claims: { action: Action; limit: number; leaseSeconds: number }[] = [];
  fails: { token: string; error: string; reason: FailReason; retryAfterSeconds: number | null }[] = [];
  onComplete: () => void = () => {};
  claimError: Error | null = null;
  loseLeases = false;
  /** The database's verdict on transient failures: true once the rows have outlasted the retry horizon. */
  pastHorizon = false;
  /** bubble_sync.links: `<table>:<record id>` -> Bubble id, written as rows complete (a delete's removes it). */
  linkTable = new Map<string, string>();
  /** The keys of each links() call. */
  linkCalls: RecordKey[][] = [];
  private nextId = 1;
  private nextToken = 1;

  add(row: Partial<FakeRow> & { record_id: string }): FakeRow {
    const full: FakeRow = {
      id: this.nextId++,
      lease_token: "",
      table_name: "profiles",
      operation: "INSERT",
      payload: { email: `${row.record_id}@example.com`, first_name: "Ada" },
      retry_count: 0,
      max_retries: 3,
      bubble_id: null,
      status: "pending",
      error_message: null,
      next_retry_at: null,
      ...row,
      failing_since: row.failing_since ?? null,
    };
    this.rows.push(full);
    return full;
  }

  byRecord(recordId: string): FakeRow {
    const row = this.rows.find((r) => r.record_id === recordId);
    assert(row, `no row ${recordId}`);
    return row;
  }

  /** bubble_sync.begin_run: registers a run, taking the place of one invoked that has not begun. */
  beginRun(action: Action, seconds: number): Promise<string | null> {
    this.registrations.push({ action, seconds });
    if (this.invokedNotBegun > 0) this.invokedNotBegun--;
    this.runsGoing.add(`run-${this.registrations.length}`);
    return Promise.resolve(`run-${this.registrations.length}`);
  }

  /** bubble_sync.fan_out: invokes runs until `wanted` are going, at most one per `rowsPerRun` rows due. */
  fanOut(action: Action, wanted: number, rowsPerRun: number): Promise<number> {
    this.fanOuts.push({ action, wanted, rowsPerRun, endingRun: undefined });
    return Promise.resolve(this.invokeMissing(action, wanted, rowsPerRun));
  }

  endRun(action: Action, run: string | null, wanted: number, rowsPerRun: number): Promise<number> {
    this.fanOuts.push({ action, wanted, rowsPerRun, endingRun: run });
    if (this.fanOutError) return Promise.reject(this.fanOutError);
    if (run !== null) this.runsGoing.delete(run);
    return Promise.resolve(this.invokeMissing(action, wanted, rowsPerRun));
  }

  private invokeMissing(action: Action, wanted: number, rowsPerRun: number): number {
    const going = this.runsGoing.size + this.invokedNotBegun;
    const due = this.rows.filter((r) => r.status === "pending").length;
    const missing = Math.max(0, Math.min(wanted - going, Math.ceil(due / rowsPerRun)));
    for (let i = 0; i < missing; i++) this.wakes.push(action);
    this.invokedNotBegun += missing;
    return missing;
  }

  claim(action: Action, limit: number, leaseSeconds: number): Promise<QueueRow[]> {
    this.claims.push({ action, limit, leaseSeconds });
    if (this.claimError) return Promise.reject(this.claimError);
    // bubble_sync.rows_to_claim: while the breaker is open, the probe's row or none
    if (this.gate.openedAt !== null) limit = this.gate.probeDue ? Math.min(limit, 1) : 0;
    const due = this.rows.filter((r) =>
      action === "process_queue_data_api"
        ? r.status === "pending"
        : r.status === "failed" && r.retry_count < r.max_retries
    ).slice(0, limit);
    for (const row of due) {
      row.status = "processing";
      row.lease_token = `lease-${this.nextToken++}`;
    }
    return Promise.resolve(due.map((row) => ({ ...row })));
  }

  private holder(token: string): FakeRow | undefined {
    if (this.loseLeases) return undefined;
    return this.rows.find((r) => r.lease_token === token && r.status === "processing");
  }

  complete(token: string, bubbleId: string | null, note?: string): Promise<boolean> {
    this.onComplete();
    const row = this.holder(token);
    if (!row) return Promise.resolve(false);
    Object.assign(row, {
      status: "completed",
      bubble_id: bubbleId ?? row.bubble_id,
      lease_token: "",
      error_message: note ?? null,
    });
    const key = linkKey({ table: row.table_name, recordId: row.record_id });
    if (duplicateOf(row) !== null) return Promise.resolve(true); // another thing deleted: the link stays
    if (row.operation.toUpperCase() === "DELETE") this.linkTable.delete(key);
    else if (bubbleId !== null) this.linkTable.set(key, bubbleId);
    return Promise.resolve(true);
  }

  links(keys: RecordKey[]): Promise<Map<string, string>> {
    this.linkCalls.push(keys);
    const found = new Map<string, string>();
    for (const key of keys) {
      const id = this.linkTable.get(linkKey(key));
      if (id !== undefined) found.set(linkKey(key), id);
    }
    return Promise.resolve(found);
  }

  fail(
    token: string,
    error: string,
    reason: FailReason,
    retryAfterSeconds: number | null,
  ): Promise<FailOutcome | null> {
    this.fails.push({ token, error, reason, retryAfterSeconds });
    const kind = "kind" in reason ? reason.kind : failureKind(reason.httpStatus);
    const row = this.holder(token);
    if (!row) return Promise.resolve(null);
    row.lease_token = "";
    row.error_message = error;
    if (kind === "deferred" || kind === "unavailable") {
      row.status = "pending";
      row.next_retry_at = retryAfterSeconds;
    } else if (kind === "permanent") {
      row.status = "failed";
      row.retry_count = Math.max(row.retry_count + 1, row.max_retries);
    } else {
      // transient: no attempt used, until the horizon or when no retry is left
      row.status = "failed";
      row.failing_since ??= "2025-01-06T09:00:00Z";
      if (this.pastHorizon || row.retry_count >= row.max_retries) {
        row.retry_count = Math.max(row.retry_count + 1, row.max_retries);
      }
    }
    if (row.status === "pending") return Promise.resolve("deferred");
    return Promise.resolve(row.retry_count < row.max_retries ? "retrying" : "failed_for_good");
  }

  ping(): Promise<void> {
    return this.claimError ? Promise.reject(this.claimError) : Promise.resolve();
  }

  /** Bubble's gate as sql/functions/gate.sql keeps it: pacing on the real clock, and the circuit breaker. */
  gate = {
    nextAt: 0,
    failuresInARow: 0,
    openedAt: null as number | null,
    unavailableSince: null as string | null,
    /** The breaker lets one probe through when this is true (the test decides when a probe is due). */
    probeDue: false,
    breakerFailures: 10,
    reservations: [] as { wanted: number; perMinute: number; maxWaitMs: number | null }[],
    notes: [] as Answer[],
  };

  takeRequests(wanted: number, perMinute: number, maxWaitMs: number | null): Promise<Grant> {
    const g = this.gate;
    g.reservations.push({ wanted, perMinute, maxWaitMs });
    const now = performance.now();
    const spacingMs = perMinute > 0 ? 60_000 / perMinute : 0;
    const start = Math.max(now, g.nextAt);
    const view = { unavailableSince: g.unavailableSince, failuresInARow: g.failuresInARow };
    let granted = wanted;
    let breaker: Grant["breaker"] = "closed";
    if (g.openedAt !== null) {
      if (!g.probeDue) {
        return Promise.resolve({ granted: 0, firstInMs: 30_000, spacingMs, breaker: "open", ...view });
      }
      g.probeDue = false;
      [granted, breaker] = [1, "probe"];
    } else if (maxWaitMs !== null && start - now > maxWaitMs) {
      granted = 0;
    } else if (maxWaitMs !== null && spacingMs > 0) {
      granted = Math.min(wanted, Math.floor((maxWaitMs - (start - now)) / spacingMs) + 1);
    }
    g.nextAt = start + granted * spacingMs;
    return Promise.resolve({ granted, firstInMs: Math.ceil(start - now), spacingMs, breaker, ...view });
  }

  noteAnswer(answer: Answer, _error: string | null, retryAfterSeconds: number | null): Promise<GateView> {
    const g = this.gate;
    g.notes.push(answer);
    if (answer === "unavailable") {
      g.failuresInARow++;
      g.unavailableSince ??= "2025-01-06T09:00:00Z";
      if (g.failuresInARow >= g.breakerFailures) g.openedAt ??= performance.now();
    } else {
      [g.failuresInARow, g.openedAt, g.unavailableSince] = [0, null, null];
      if (answer === "rate_limited") {
        g.nextAt = Math.max(g.nextAt, performance.now() + (retryAfterSeconds ?? 0) * 1000);
      }
    }
    const breaker = g.openedAt === null ? "closed" : "open";
    return Promise.resolve({
      breaker,
      unavailableSince: breaker === "open" ? g.unavailableSince : null,
      failuresInARow: g.failuresInARow,
    });
  }
}

// --- the fake Bubble ---------------------------------------------------------------------------------------

export interface SeenRequest {
  method: string;
  path: string;
  constraints: unknown;
  authorization: string | null;
  contentType: string | null;
  body: string;
  /** A search's `cursor` (where its page starts), null when it has none. */
  cursor: number | null;
  /** Whether it came through fetchCreate (the no-pool client in production). */
  viaCreateFetch: boolean;
}

export type Override = (
  request: SeenRequest,
  signal: AbortSignal | undefined,
) => Promise<Response | undefined> | Response | undefined;

export const BASE = "https://app.example.com/version-test/api/1.1";
export const TOKEN = "bubble-token-0123456789abcdef0123";

export function bubbleError(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  return new Response(JSON.stringify({ statusCode: status, body: { status: code, message } }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export class FakeBubble {
  things = new Map<string, Record<string, unknown>>();
  /** Each thing's data type (things keep exactly their fields, `_id` included). */
  typeOf = new Map<string, string>();
  requests: SeenRequest[] = [];
  /** Consulted first for every request; the first to return a Response answers it. */
  overrides: Override[] = [];
  private nextId = 1;

  readonly fetch: Fetch = (input, init) => this.handle(input, init, false);
  readonly fetchCreate: Fetch = (input, init) => this.handle(input, init, true);

  insert(fields: Record<string, unknown>, dataType = "user"): string {
    const id = `1700000000000x${String(this.nextId++).padStart(18, "0")}`;
    this.things.set(id, { ...fields, _id: id });
    this.typeOf.set(id, dataType);
    return id;
  }

  /** The things of one data type. */
  ofType(dataType: string): Record<string, unknown>[] {
    return [...this.things.values()].filter((t) => this.typeOf.get(String(t._id)) === dataType);
  }

  /** Answers the next `count` requests matching `method` (and `path` suffix) with `respond`. */
  fault(method: string, respond: Override, count = Infinity, pathEnd?: string): void {
    let left = count;
    this.overrides.push((request, signal) => {
      if (left <= 0 || request.method !== method) return undefined;
      if (pathEnd !== undefined && !request.path.endsWith(pathEnd)) return undefined;
      left--;
      return respond(request, signal);
    });
  }

  count(method: string, pathEnd = ""): number {
    return this.requests.filter((r) => r.method === method && r.path.endsWith(pathEnd)).length;
  }

  private async handle(
    input: string | URL | Request,
    init: RequestInit | undefined,
    viaCreateFetch: boolean,
  ) {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    const request: SeenRequest = {
      method: init?.method ?? "GET",
      path: url.pathname,
      constraints: url.searchParams.has("constraints")
        ? JSON.parse(url.searchParams.get("constraints")!)
        : null,
      authorization: headers.get("authorization"),
      contentType: headers.get("content-type"),
      body: typeof init?.body === "string" ? init.body : "",
      cursor: url.searchParams.has("cursor") ? Number(url.searchParams.get("cursor")) : null,
      viaCreateFetch,
    };
    this.requests.push(request);
    const signal = init?.signal ?? undefined;
    for (const override of this.overrides) {
      const answer = await override(request, signal);
      if (answer) return answer;
    }
    if (request.authorization !== `Bearer ${TOKEN}`) return bubbleError(401, "UNAUTHORIZED", "bad token");
    const route = /^\/version-test\/api\/1\.1\/obj\/([^/]+)(\/.*)?$/.exec(request.path);
    assert(route, `unexpected path ${request.path}`);
    const dataType = decodeURIComponent(route[1]);
    const rest = route[2] ?? "";
    if (request.method === "POST" && rest === "") return this.create(dataType, request.body);
    if (request.method === "POST" && rest === "/bulk") {
      const lines = request.body.split("\n").map((line) => this.create(dataType, line));
      const texts = await Promise.all(lines.map((r) => r.text()));
      const out = texts.map((t, i) =>
        lines[i].status === 201 ? t : JSON.stringify({ status: "error", message: t })
      );
      return new Response(out.join("\n"), { status: 200, headers: { "content-type": "text/plain" } });
    }
    if (request.method === "GET" && rest === "") {
      const [c] = request.constraints as { key: string; constraint_type: string; value: unknown }[];
      const matches = this.ofType(dataType).filter((t) =>
        c.constraint_type === "in" ? (c.value as unknown[]).includes(t[c.key]) : t[c.key] === c.value
      );
      // Bubble's pages: `limit` things from `cursor` (at most 100), and how many remain after them
      const cursor = Number(url.searchParams.get("cursor") ?? 0);
      const limit = Math.min(Number(url.searchParams.get("limit") ?? 100), 100);
      const results = matches.slice(cursor, cursor + limit);
      const remaining = matches.length - cursor - results.length;
      return Response.json({ response: { cursor, results, count: results.length, remaining } });
    }
    if (request.method === "PATCH" || request.method === "DELETE") {
      const id = decodeURIComponent(rest.slice(1));
      const thing = this.typeOf.get(id) === dataType ? this.things.get(id) : undefined;
      if (!thing) return bubbleError(404, "MISSING_DATA", `object with id ${id} does not exist`);
      if (request.method === "DELETE") {
        this.things.delete(id);
        this.typeOf.delete(id);
      } else Object.assign(thing, JSON.parse(request.body));
      return new Response(null, { status: 204 });
    }
    throw new Error(`fake Bubble has no route for ${request.method} ${request.path}`);
  }

  private create(dataType: string, body: string): Response {
    const fields = JSON.parse(body) as Record<string, unknown>;
    const email = fields.email;
    if (
      dataType === "user" && typeof email === "string" && this.ofType("user").some((t) => t.email === email)
    ) {
      return bubbleError(400, "USED_EMAIL", `a user with email ${email} already exists`);
    }
    return Response.json({ status: "success", id: this.insert(fields, dataType) }, { status: 201 });
  }
}

/** An answer that never comes: resolves only by the request's timeout signal aborting it. */
export function hang(_request: SeenRequest, signal: AbortSignal | undefined): Promise<Response> {
  return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
}

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

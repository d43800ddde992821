// A client for the parts of Bubble's Data API the sync uses: create, bulk create, search by one field, modify,
// delete, each in the data type the caller names (a mapping's, or BUBBLE_DATA_TYPE for a table no mapping names).
// Every call has its own timeout, and its failures come back as values (status, message, Retry-After), never as
// exceptions, so the batch loop can classify each one. Every request waits for its turn at Bubble's gate, shared
// with every other worker through the database (gate.ts): a request the gate refuses is not sent.

import {
  clip,
  describeError,
  describeException,
  isTimeout,
  parseRetryAfter,
  wholeCallError,
} from "./bubble_answers.ts";
import { breakerOpen, type SharedGate } from "./gate.ts";

/** fetch, as Deno has it (the `client` option picks a connection pool). */
export type Fetch = (
  input: string | URL | Request,
  init?: RequestInit & { client?: Deno.HttpClient },
) => Promise<Response>;

export interface BubbleSettings {
  baseUrl: string;
  token: string;
  timeoutMs: number;
}

export type Failure = {
  ok: false;
  /** Bubble's HTTP status; null when there was no answer (timeout, network error). */
  status: number | null;
  /** Bubble's error status string, e.g. USED_EMAIL or MISSING_DATA, when it sent one. */
  code: string | null;
  message: string;
  /** Retry-After in whole seconds, when Bubble sent one; for a request not sent, when to try again. */
  retryAfterSeconds: number | null;
  /**
   * Set when the request was never sent: the gate's circuit breaker is open (bubble_unavailable), or no turn
   * at Bubble's shared rate limit was free soon enough (no_slot: within 10 s and before the run's deadline).
   */
  unsent?: "bubble_unavailable" | "no_slot";
};
export type Result<T> = ({ ok: true } & T) | Failure;

/** One line of a bulk create answer: Bubble's id, or its error message for that line. */
export type BulkLine = { ok: true; id: string } | { ok: false; message: string };

/** Bubble's bulk endpoint takes at most this many lines per call. */
export const MAX_BULK_LINES = 1000;
/**
 * How long Bubble may work on one bulk line: up to 4 minutes for 1,000 lines (manual, bulk requests). A bulk
 * call carries no more lines than its timeout lets Bubble finish.
 */
export const BULK_MS_PER_LINE = 240;
/** Bubble's search answers at most 100 things a page (manual: `limit`, at most 100). */
export const SEARCH_PAGE = 100;
const MAX_SEARCH_PAGES = 10;
const LATENCY_WEIGHT = 0.1;

export class BubbleClient {
  /** Requests sent (attempted), for the run's summary. */
  requests = 0;
  /** A request whose turn comes later than this (local ms) is not sent: the run must be done by then. */
  sendBy = Number.POSITIVE_INFINITY;
  /** How long Bubble takes to answer, smoothed over this run's answers (ms); null before the first. */
  latencyMs: number | null = null;

  /**
   * `fetchCreate` sends the non-idempotent requests (create, bulk create). It should use a connection of its
   * own for each request: see createFetchWithoutPool.
   */
  constructor(
    private readonly settings: BubbleSettings,
    private readonly fetchOther: Fetch,
    private readonly fetchCreate: Fetch,
    private readonly now: () => number,
    readonly gate: SharedGate,
  ) {}

  private url(dataType: string, suffix: string): string {
    return `${this.settings.baseUrl}/obj/${encodeURIComponent(dataType)}${suffix}`;
  }

  private async send(
    label: string,
    fetchFn: Fetch,
    url: string,
    init: RequestInit,
    timeoutMs = this.settings.timeoutMs,
  ): Promise<{ ok: true; status: number; text: string } | Failure> {
    const turn = await this.gate.turn(this.sendBy);
    if (!turn.ok) {
      const message = turn.reason === "bubble_unavailable"
        ? `${label} was not sent: ${breakerOpen(turn.unavailableSince, turn.retryInSeconds)}`
        : `${label} was not sent: no turn at Bubble's rate limit (shared by every run) soon enough; ` +
          `next in ${turn.retryInSeconds} s`;
      return {
        ok: false,
        status: null,
        code: null,
        message,
        retryAfterSeconds: turn.retryInSeconds,
        unsent: turn.reason,
      };
    }
    const answer = await this.exchange(label, fetchFn, url, init, timeoutMs);
    if (answer.ok) await this.gate.report(answer.status, null, null);
    else await this.gate.report(answer.status, answer.message, answer.retryAfterSeconds);
    return answer;
  }

  private async exchange(
    label: string,
    fetchFn: Fetch,
    url: string,
    init: RequestInit,
    timeoutMs: number,
  ): Promise<{ ok: true; status: number; text: string } | Failure> {
    this.requests++;
    const started = this.now();
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${this.settings.token}`);
    try {
      // The signal bounds the whole exchange, body included.
      const response = await fetchFn(url, {
        ...init,
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await response.text();
      this.noteLatency(this.now() - started);
      if (response.ok) return { ok: true, status: response.status, text };
      const { code, message } = describeError(response.status, text);
      return {
        ok: false,
        status: response.status,
        code,
        message,
        retryAfterSeconds: parseRetryAfter(response.headers.get("retry-after"), this.now()),
      };
    } catch (error) {
      const message = isTimeout(error)
        ? `Bubble did not answer ${label} within ${timeoutMs} ms`
        : `no answer from Bubble to ${label}: ${describeException(error)}`;
      return { ok: false, status: null, code: null, message: clip(message), retryAfterSeconds: null };
    }
  }

  private noteLatency(ms: number): void {
    // A moving average that follows a change within a few dozen answers and shrugs off a single slow one.
    this.latencyMs = this.latencyMs === null ? ms : this.latencyMs + (ms - this.latencyMs) * LATENCY_WEIGHT;
  }

  private unexpected(label: string, status: number, text: string): Failure {
    // A 2xx whose body is not what Bubble documents: no status to classify by, so it is retried.
    return {
      ok: false,
      status: null,
      code: null,
      message: clip(`Bubble answered ${label} with ${status} and an unexpected body: ${text.slice(0, 200)}`),
      retryAfterSeconds: null,
    };
  }

  /** POST /obj/<type>: 201 {"status": "success", "id"}. */
  async create(dataType: string, fields: Record<string, unknown>): Promise<Result<{ id: string }>> {
    const label = "the create";
    const answer = await this.send(label, this.fetchCreate, this.url(dataType, ""), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(fields),
    });
    if (!answer.ok) return answer;
    try {
      const id = (JSON.parse(answer.text) as { id?: unknown }).id;
      if (typeof id === "string" && id) return { ok: true, id };
    } catch {
      // fall through
    }
    return this.unexpected(label, answer.status, answer.text);
  }

  /**
   * GET /obj/<type>?constraints=[{key, equals, value}]: the oldest thing whose `field` equals `value`, with its
   * fields, or null when there is none.
   */
  async findOne(
    dataType: string,
    field: string,
    value: string,
  ): Promise<Result<{ thing: Record<string, unknown> | null }>> {
    const label = "a search";
    const constraints = JSON.stringify([{ key: field, constraint_type: "equals", value }]);
    const query = new URLSearchParams({ constraints, limit: "1" });
    const answer = await this.send(label, this.fetchOther, this.url(dataType, `?${query}`), {
      method: "GET",
    });
    if (!answer.ok) return answer;
    try {
      const results = (JSON.parse(answer.text) as { response?: { results?: unknown } }).response?.results;
      if (Array.isArray(results)) {
        const first = results[0] as Record<string, unknown> | undefined;
        if (first === undefined) return { ok: true, thing: null };
        if (typeof first._id === "string") return { ok: true, thing: first };
      }
    } catch {
      // fall through
    }
    return this.unexpected(label, answer.status, answer.text);
  }

  /**
   * GET /obj/<type>?constraints=[{key, "in", values}], page after page (Bubble's pages hold at most 100
   * things): every thing whose `field` is one of `values`, in the order Bubble answers. The manual lists the
   * constraint type `in` without more; an app that refuses it answers like an incompatible constraint (404
   * NOT_FOUND) or a bad request (400), and the caller can fall back to findOne.
   */
  async findIn(
    dataType: string,
    field: string,
    values: string[],
  ): Promise<Result<{ things: Record<string, unknown>[] }>> {
    const label = "a search by key";
    const constraints = JSON.stringify([{ key: field, constraint_type: "in", value: values }]);
    const things: Record<string, unknown>[] = [];
    // Each key matches one thing, unless Bubble holds duplicates from before: a few pages at most.
    for (let cursor = 0, page = 0; page < MAX_SEARCH_PAGES; page++) {
      const query = new URLSearchParams({ constraints, limit: String(SEARCH_PAGE), cursor: String(cursor) });
      const answer = await this.send(label, this.fetchOther, this.url(dataType, `?${query}`), {
        method: "GET",
      });
      if (!answer.ok) return answer;
      let response: { results?: unknown; remaining?: unknown } | undefined;
      try {
        response = (JSON.parse(answer.text) as { response?: typeof response }).response;
      } catch {
        // fall through
      }
      const results = response?.results as Record<string, unknown>[] | undefined;
      if (!Array.isArray(results) || results.some((t) => typeof t?._id !== "string")) {
        return this.unexpected(label, answer.status, answer.text);
      }
      things.push(...results);
      if (!(Number(response?.remaining) > 0) || results.length === 0) return { ok: true, things };
      cursor += results.length;
    }
    return {
      ok: false,
      status: null,
      code: null,
      message: `Bubble answered ${label} for ${values.length} keys with more than ${MAX_SEARCH_PAGES} pages`,
      retryAfterSeconds: null,
    };
  }

  /** PATCH /obj/<type>/<id>: 204. */
  async modify(
    dataType: string,
    id: string,
    fields: Record<string, unknown>,
  ): Promise<Result<Record<never, never>>> {
    const url = this.url(dataType, `/${encodeURIComponent(id)}`);
    const answer = await this.send("the modify", this.fetchOther, url, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(fields),
    });
    return answer.ok ? { ok: true } : answer;
  }

  /**
   * DELETE /obj/<type>/<id>: 204 (or 200). A 404 means Bubble has no such thing, deleted already (by an earlier
   * attempt, or in Bubble itself): that is what was wanted, so it is an answer, `gone`, not a failure. A delete
   * is safe to send twice, so it takes the pooled fetch.
   */
  async delete(dataType: string, id: string): Promise<Result<{ gone: boolean }>> {
    const url = this.url(dataType, `/${encodeURIComponent(id)}`);
    const answer = await this.send("the delete", this.fetchOther, url, { method: "DELETE" });
    if (answer.ok) return { ok: true, gone: false };
    if (answer.status === 404) return { ok: true, gone: true };
    return answer;
  }

  /**
   * POST /obj/<type>/bulk, text/plain, one JSON object per line: 200 with one result line per input line, in
   * order, within `timeoutMs` (Bubble may work on a bulk call for minutes). Lines missing from the answer come
   * back as null (nobody knows whether they were created). A single error line for several items is Bubble
   * failing the call as a whole (manual: a capacity or system failure gives one error, no per-line results):
   * a failure with no status, since nobody knows what it stored before failing.
   */
  async bulkCreate(
    dataType: string,
    items: Record<string, unknown>[],
    timeoutMs: number,
  ): Promise<Result<{ lines: (BulkLine | null)[] }>> {
    if (items.length === 0 || items.length > MAX_BULK_LINES) {
      throw new RangeError(`a bulk create takes 1 to ${MAX_BULK_LINES} items, got ${items.length}`);
    }
    const label = "the bulk create";
    const answer = await this.send(label, this.fetchCreate, this.url(dataType, "/bulk"), {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: items.map((item) => JSON.stringify(item)).join("\n"),
    }, timeoutMs);
    if (!answer.ok) return answer;
    const raw = answer.text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
    if (items.length > 1 && raw.length === 1) {
      const whole = wholeCallError(raw[0]);
      if (whole !== null) {
        return {
          ok: false,
          status: null,
          code: null,
          message: clip(`Bubble failed ${label} of ${items.length} lines as a whole: ${whole}`),
          retryAfterSeconds: null,
        };
      }
    }
    const lines = items.map((_, i): BulkLine | null => {
      if (i >= raw.length) return null;
      try {
        const parsed = JSON.parse(raw[i]) as { status?: unknown; id?: unknown; message?: unknown };
        if (parsed.status === "success" && typeof parsed.id === "string" && parsed.id) {
          return { ok: true, id: parsed.id };
        }
        if (parsed.status === "error") {
          return {
            ok: false,
            message: clip(`Bubble refused the bulk line: ${String(parsed.message ?? "")}`),
          };
        }
      } catch {
        // unreadable line: unknown outcome
      }
      return null;
    });
    return { ok: true, lines };
  }
}

/**
 * A fetch that opens a new connection for every request and never reuses one, for requests that must not be
 * sent twice. Deno's fetch re-sends a request once, silently, when a pooled keep-alive connection closes
 * before the answer (denoland/deno#32566), even if the server had already acted on it: a create would then
 * store the thing twice. On a fresh connection Deno reports the error instead (denoland/deno#36415), and the
 * row's retry looks the thing up by its key before creating it again. `Connection: close` on the create alone
 * is not enough: the request may still go out on a connection an earlier search left in the pool.
 * Returns null where Deno.createHttpClient does not exist (older Supabase edge runtimes).
 */
export function createFetchWithoutPool(): Fetch | null {
  const deno = globalThis.Deno as { createHttpClient?: typeof Deno.createHttpClient } | undefined;
  if (typeof deno?.createHttpClient !== "function") return null;
  try {
    const client = deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    return (input, init) => fetch(input, { ...init, client });
  } catch {
    return null;
  }
}

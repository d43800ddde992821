// The queue's SQL API (sql/functions/lease.sql), called over SUPABASE_DB_URL. See sql/README.md, "The worker's
// contract": claim in a statement of its own, then complete or fail each row by its lease_token.

import postgres from "npm:postgres@3.4.9";
import type { Answer, GateStore, GateView, Grant } from "./gate.ts";

export const ACTIONS = ["process_queue_data_api", "retry_failed"] as const;
export type Action = typeof ACTIONS[number];

/**
 * What happens to a failed row next (bubble_sync.failure_kind maps an HTTP status to it; unavailable: not
 * sent because Bubble's circuit breaker is open).
 */
export type FailureKind = "retryable" | "deferred" | "unavailable" | "permanent";

/** What became of a failed row, as bubble_sync.fail reports it. */
export type FailOutcome = "deferred" | "retrying" | "failed_for_good";

/** The columns of public.sync_queue the worker reads. An adopted table may have more, or other id types. */
export interface QueueRow {
  lease_token: string;
  table_name: string;
  record_id: string;
  operation: string;
  payload: unknown;
  retry_count: number;
  max_retries: number;
  bubble_id: string | null;
  /** When the transient failures the row is retrying began; null if it has none. */
  failing_since: string | null;
}

/**
 * Whether an earlier attempt may have reached Bubble: a transient failure (it uses no attempt, but sets
 * failing_since) or a counted one (a worker died holding the row). Such a row is looked up before a create.
 */
export function triedBefore(row: QueueRow): boolean {
  return row.retry_count > 0 || row.failing_since !== null;
}

/**
 * Why a row failed: the HTTP status Bubble answered (null: no answer, a timeout or a network error), which
 * the database classifies with bubble_sync.failure_kind, or a kind decided without Bubble's answer.
 */
export type FailReason = { httpStatus: number | null } | { kind: FailureKind };

/** The queue, and Bubble's gate kept beside it (sql/functions/gate.sql). */
export interface Queue extends GateStore {
  claim(action: Action, limit: number, leaseSeconds: number): Promise<QueueRow[]>;
  /** true if the row was ours and is now completed. */
  complete(leaseToken: string, bubbleId: string): Promise<boolean>;
  /** What became of the row; null when the lease was lost (someone else holds the row, nothing changed). */
  fail(
    leaseToken: string,
    error: string,
    reason: FailReason,
    retryAfterSeconds: number | null,
  ): Promise<FailOutcome | null>;
  /** Throws unless the database answers. */
  ping(): Promise<void>;
}

type Sql = ReturnType<typeof postgres>;

function toRow(raw: Record<string, unknown>): QueueRow {
  // int8 columns (an adopted table's retry_count) arrive as strings; record_id may be any type there.
  return {
    lease_token: String(raw.lease_token),
    table_name: String(raw.table_name ?? ""),
    record_id: String(raw.record_id ?? ""),
    operation: String(raw.operation ?? ""),
    payload: raw.payload,
    retry_count: Number(raw.retry_count ?? 0),
    max_retries: Number(raw.max_retries ?? 3), // null only in an adopted table: the SQL's default
    bubble_id: raw.bubble_id == null || raw.bubble_id === "" ? null : String(raw.bubble_id),
    failing_since: raw.failing_since == null ? null : String(raw.failing_since),
  };
}

/** The queue in PostgreSQL through postgres.js. */
export class PostgresQueue implements Queue {
  constructor(private readonly sql: Sql) {}

  async claim(action: Action, limit: number, leaseSeconds: number): Promise<QueueRow[]> {
    const rows = await this.sql`
      select * from bubble_sync.claim(${action}::text, ${limit}::integer, ${leaseSeconds}::integer)`;
    return rows.map((row) => toRow(row as Record<string, unknown>));
  }

  async complete(leaseToken: string, bubbleId: string): Promise<boolean> {
    const [row] = await this.sql`select bubble_sync.complete(${leaseToken}::uuid, ${bubbleId}::text) as ok`;
    return row.ok === true;
  }

  async fail(
    leaseToken: string,
    error: string,
    reason: FailReason,
    retryAfterSeconds: number | null,
  ): Promise<FailOutcome | null> {
    const kind = "kind" in reason ? reason.kind : null;
    const status = "httpStatus" in reason ? reason.httpStatus : null;
    // The kind comes from the database's own failure_kind unless the worker decided it without an HTTP status.
    const [row] = await this.sql`
      select bubble_sync.fail(${leaseToken}::uuid, ${error}::text,
                              coalesce(${kind}::text, bubble_sync.failure_kind(${status}::integer)),
                              ${retryAfterSeconds}::integer) as outcome`;
    return (row.outcome ?? null) as FailOutcome | null;
  }

  async ping(): Promise<void> {
    await this.sql`select 1`;
  }

  async takeRequests(wanted: number, perMinute: number, maxWaitMs: number | null): Promise<Grant> {
    const [row] = await this.sql`
      select * from bubble_sync.take_requests(${wanted}::integer, ${perMinute}::integer, ${maxWaitMs}::integer)`;
    return {
      granted: Number(row.granted),
      firstInMs: Number(row.first_in_ms),
      spacingMs: Number(row.spacing_ms),
      breaker: row.breaker as Grant["breaker"],
      unavailableSince: toTimestamp(row.unavailable_since),
      failuresInARow: Number(row.failures_in_a_row),
    };
  }

  async noteAnswer(
    answer: Answer,
    error: string | null,
    retryAfterSeconds: number | null,
  ): Promise<GateView> {
    const [row] = await this.sql`
      select * from bubble_sync.note_bubble_answer(${answer}::text, ${error}::text,
                                                   ${retryAfterSeconds}::integer)`;
    return {
      breaker: row.breaker as GateView["breaker"],
      unavailableSince: toTimestamp(row.unavailable_since),
      failuresInARow: Number(row.failures_in_a_row),
    };
  }
}

function toTimestamp(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : String(value);
}

const pools = new Map<string, Sql>();

/**
 * The queue for a database URL, with one small pool per URL for the life of the isolate (Supabase reuses an
 * isolate for several requests). prepare: false, because Supabase's transaction pooler (Supavisor, port 6543)
 * cannot keep prepared statements; every call is a single statement, so it is its own short transaction.
 */
export function postgresQueue(dbUrl: string): Queue {
  let sql = pools.get(dbUrl);
  if (sql === undefined) {
    sql = postgres(dbUrl, {
      prepare: false,
      max: 4,
      idle_timeout: 20,
      connect_timeout: 10,
      max_lifetime: 60 * 10,
      onnotice: () => {},
      connection: { application_name: "bubble_sync edge function" },
    });
    pools.set(dbUrl, sql);
  }
  return new PostgresQueue(sql);
}

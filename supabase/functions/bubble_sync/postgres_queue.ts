// The queue in PostgreSQL (queue.ts's Queue), called over SUPABASE_DB_URL with postgres.js: claim in a
// statement of its own, then complete or fail each row by its lease_token, the verdicts in batches
// (verdict_batcher.ts). It also keeps Bubble's gate beside the queue (sql/functions/gate.sql).

import postgres from "npm:postgres@3.4.9";
import type { Answer, GateView, Grant } from "./gate.ts";
import {
  type Action,
  type FailOutcome,
  type FailReason,
  linkKey,
  type Queue,
  type QueueRow,
  type RecordKey,
  type Verification,
} from "./queue.ts";
import { VerdictBatcher, type VerdictItem } from "./verdict_batcher.ts";

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
  roundTrips = 0;
  private readonly verdicts = new VerdictBatcher((items) => this.writeVerdicts(items));
  /** False once the database turned out not to have report_verdicts yet (deployed before `pulumi up`). */
  private batched = true;
  /** False once the database turned out not to have begin_run and fan_out yet. */
  private countsRuns = true;
  /** False once the database turned out not to have bubble_sync.links yet. */
  private keepsLinks = true;

  constructor(
    private readonly sql: Sql,
    private readonly onStuck: () => void = () => {},
    private readonly timeoutMs = QUERY_TIMEOUT_MS,
  ) {}

  /**
   * The statement's answer, or an error once it has waited QUERY_TIMEOUT_MS: postgres.js 3.4.9 may wait
   * forever on a connection the database closed while it was starting (porsager/postgres#1193, after a
   * database restart). The pool is then dropped, so the next run connects afresh; rows held by this run
   * come back through their leases.
   */
  private async answer<T>(query: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.onStuck();
        reject(new Error(`the database did not answer within ${this.timeoutMs / 1000} s`));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async claim(action: Action, limit: number, leaseSeconds: number): Promise<QueueRow[]> {
    this.roundTrips++;
    const rows = await this.answer(this.sql`
      select * from bubble_sync.claim(${action}::text, ${limit}::integer, ${leaseSeconds}::integer)`);
    return rows.map((row) => toRow(row as Record<string, unknown>));
  }

  async complete(leaseToken: string, bubbleId: string | null, note?: string): Promise<boolean> {
    // A database deployed before notes ignores the key: the row completes all the same.
    const item = note === undefined
      ? { lease_token: leaseToken, bubble_id: bubbleId }
      : { lease_token: leaseToken, bubble_id: bubbleId, note };
    return (await this.verdicts.add(item)) === "completed";
  }

  async links(keys: RecordKey[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    if (keys.length === 0 || !this.keepsLinks) return found;
    this.roundTrips++;
    try {
      const rows = await this.answer(this.sql`
        select table_name, record_id, bubble_id from bubble_sync.links
         where (table_name, record_id) in
               (select * from unnest(${keys.map((k) => k.table)}::text[], ${
        keys.map((k) => k.recordId)
      }::text[]))`);
      for (const row of rows) {
        found.set(
          linkKey({ table: String(row.table_name), recordId: String(row.record_id) }),
          String(row.bubble_id),
        );
      }
    } catch (error) {
      // A database not yet upgraded by `pulumi up` has no links: every reference is looked up in Bubble.
      if (!undefinedTable(error)) throw error;
      this.keepsLinks = false;
    }
    return found;
  }

  async fail(
    leaseToken: string,
    error: string,
    reason: FailReason,
    retryAfterSeconds: number | null,
  ): Promise<FailOutcome | null> {
    // The kind comes from the database's own failure_kind unless the worker decided it without an HTTP status.
    const outcome = await this.verdicts.add({
      lease_token: leaseToken,
      error,
      kind: "kind" in reason ? reason.kind : null,
      http_status: "httpStatus" in reason ? reason.httpStatus : null,
      retry_after_seconds: retryAfterSeconds,
    });
    return (outcome ?? null) as FailOutcome | null;
  }

  private async writeVerdicts(items: VerdictItem[]): Promise<(string | null)[]> {
    if (this.batched) {
      this.roundTrips++;
      try {
        const rows = await this.answer(this.sql`
          select verdict, outcome from bubble_sync.report_verdicts(${this.sql.json(items)}::jsonb)
           order by verdict`);
        return rows.map((row) => (row.outcome ?? null) as string | null);
      } catch (error) {
        // A database not yet upgraded by `pulumi up`: one statement per verdict.
        if (!undefinedFunction(error)) throw error;
        this.batched = false;
      }
    }
    return await Promise.all(items.map((item) => this.writeVerdict(item)));
  }

  private async writeVerdict(item: VerdictItem): Promise<string | null> {
    this.roundTrips++;
    if ("bubble_id" in item) {
      const [row] = await this.answer(this.sql`
        select bubble_sync.complete(${item.lease_token}::uuid, ${item.bubble_id}::text) as ok`);
      return row.ok === true ? "completed" : null;
    }
    const [row] = await this.answer(this.sql`
      select bubble_sync.fail(${item.lease_token}::uuid, ${item.error}::text,
                              coalesce(${item.kind}::text, bubble_sync.failure_kind(${item.http_status}::integer)),
                              ${item.retry_after_seconds}::integer) as outcome`);
    return (row.outcome ?? null) as string | null;
  }

  async beginRun(action: Action, seconds: number): Promise<string | null> {
    if (!this.countsRuns) return null;
    this.roundTrips++;
    try {
      const [row] = await this.answer(this.sql`
        select bubble_sync.begin_run(${action}::text, ${seconds}::integer) as run`);
      return String(row.run);
    } catch (error) {
      if (!undefinedFunction(error)) throw error;
      this.countsRuns = false;
      return null;
    }
  }

  fanOut(action: Action, wanted: number, rowsPerRun: number): Promise<number> {
    // Without fan_out the database cannot count the runs going: none is invoked besides a successor.
    return this.countsRuns
      ? this.callFanOut(action, wanted, rowsPerRun, null).then((n) => n ?? 0)
      : Promise.resolve(0);
  }

  async endRun(action: Action, run: string | null, wanted: number, rowsPerRun: number): Promise<number> {
    const invoked = this.countsRuns ? await this.callFanOut(action, wanted, rowsPerRun, run) : null;
    if (invoked !== null) return invoked;
    // A database without fan_out: a run stopped with rows due invokes one successor (a chain of runs).
    if (wanted < 1) return 0;
    this.roundTrips++;
    const [row] = await this.answer(this.sql`select bubble_sync.invoke_function(${action}::text) as request`);
    return row.request === null || row.request === undefined ? 0 : 1;
  }

  /** bubble_sync.fan_out's answer; null when the database does not have it yet. */
  private async callFanOut(
    action: Action,
    wanted: number,
    rowsPerRun: number,
    endingRun: string | null,
  ): Promise<number | null> {
    this.roundTrips++;
    try {
      const [row] = await this.answer(this.sql`
        select bubble_sync.fan_out(${action}::text, ${wanted}::integer, ${rowsPerRun}::integer,
                                   ${endingRun}::uuid) as invoked`);
      return Number(row.invoked);
    } catch (error) {
      if (!undefinedFunction(error)) throw error;
      this.countsRuns = false;
      return null;
    }
  }

  async verifySample(mapping: string, size: number): Promise<string[]> {
    this.roundTrips++;
    const rows = await this.answer(this.sql`
      select record_id from bubble_sync.verify_sample(${mapping}::text, ${size}::integer)`);
    return rows.map((row) => String(row.record_id));
  }

  async recordVerification(
    mapping: string,
    startedAt: string,
    recordIds: string[],
    things: Record<string, unknown>[],
    error: string | null,
  ): Promise<Verification> {
    this.roundTrips++;
    const [row] = await this.answer(this.sql`
      select * from bubble_sync.record_verification(${mapping}::text, ${startedAt}::timestamptz,
                                                    ${recordIds}::text[], ${
      this.sql.json(things as Parameters<Sql["json"]>[0])
    }::jsonb,
                                                    ${error}::text)`);
    return {
      mapping: String(row.mapping),
      checked: Number(row.checked),
      missing: Number(row.missing),
      stale: Number(row.stale),
      orphaned: Number(row.orphaned),
      duplicated: Number(row.duplicated),
      error: row.error == null ? null : String(row.error),
    };
  }

  async ping(): Promise<void> {
    this.roundTrips++;
    await this.answer(this.sql`select 1`);
  }

  async takeRequests(wanted: number, perMinute: number, maxWaitMs: number | null): Promise<Grant> {
    this.roundTrips++;
    const [row] = await this.answer(this.sql`
      select * from bubble_sync.take_requests(${wanted}::integer, ${perMinute}::integer, ${maxWaitMs}::integer)`);
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
    this.roundTrips++;
    const [row] = await this.answer(this.sql`
      select * from bubble_sync.note_bubble_answer(${answer}::text, ${error}::text,
                                                   ${retryAfterSeconds}::integer)`);
    return {
      breaker: row.breaker as GateView["breaker"],
      unavailableSince: toTimestamp(row.unavailable_since),
      failuresInARow: Number(row.failures_in_a_row),
    };
  }
}

/** 42883 undefined_function: a function this version calls that the database does not have yet. */
function undefinedFunction(error: unknown): boolean {
  return (error as { code?: string }).code === "42883";
}

/** 42P01 undefined_table: a table this version reads that the database does not have yet. */
function undefinedTable(error: unknown): boolean {
  return (error as { code?: string }).code === "42P01";
}

function toTimestamp(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : String(value);
}

const pools = new Map<string, Sql>();
/** The longest a statement may take before the queue gives up on its connection (see PostgresQueue.answer). */
export const QUERY_TIMEOUT_MS = 20_000;

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
  const pool = sql;
  return new PostgresQueue(sql, () => {
    if (pools.get(dbUrl) === pool) pools.delete(dbUrl);
    pool.end({ timeout: 0 }).catch(() => {});
  });
}

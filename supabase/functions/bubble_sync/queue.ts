// The queue as the worker sees it (sql/functions/lease.sql; sql/README.md, "The worker's contract"): the rows
// it claims, the verdicts it gives them by lease_token, the links from each record to its Bubble id
// (bubble_sync.links, read for references.ts) and the runs it registers. postgres_queue.ts is the queue in
// the database; tests use fakes of it.

import type { GateStore } from "./gate.ts";

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

/** A record as the queue names it: its row's table_name and record_id. */
export interface RecordKey {
  table: string;
  recordId: string;
}

/** How a record's link is found in the map `links` answers: `<table>:<record id>`, its stable key in Bubble. */
export function linkKey(key: RecordKey): string {
  return `${key.table}:${key.recordId}`;
}

/** The queue, and Bubble's gate kept beside it (sql/functions/gate.sql). */
export interface Queue extends GateStore {
  claim(action: Action, limit: number, leaseSeconds: number): Promise<QueueRow[]>;
  /**
   * true if the row was ours and is now completed. `bubbleId`: the thing the row was applied to (null: none,
   * say a delete of a record Bubble never had; the row keeps the id it had). `note`: what the row's
   * error_message says of a completion that did not do what its operation asks (nothing to delete, ignored).
   */
  complete(leaseToken: string, bubbleId: string | null, note?: string): Promise<boolean>;
  /** What became of the row; null when the lease was lost (someone else holds the row, nothing changed). */
  fail(
    leaseToken: string,
    error: string,
    reason: FailReason,
    retryAfterSeconds: number | null,
  ): Promise<FailOutcome | null>;
  /**
   * The Bubble ids the database has linked to these records (bubble_sync.links), by linkKey; records without a
   * link are absent. One statement for all of them; an empty map when the database has no links yet.
   */
  links(keys: RecordKey[]): Promise<Map<string, string>>;
  /** Throws unless the database answers. */
  ping(): Promise<void>;
  /** Statements sent to the database so far (claims, verdict batches, the gate's calls), for the summary. */
  readonly roundTrips?: number;
  /**
   * Registers a run of `action` that is about to claim, for `seconds` at most (bubble_sync.begin_run); its id,
   * or null when the database cannot count runs yet (deployed before `pulumi up`).
   */
  beginRun?(action: Action, seconds: number): Promise<string | null>;
  /**
   * Has the database invoke runs of `action` until `wanted` are going, at most one per `rowsPerRun` rows due
   * (bubble_sync.fan_out, through pg_net); how many it invoked.
   */
  fanOut?(action: Action, wanted: number, rowsPerRun: number): Promise<number>;
  /** Ends run `run` (null: it was not registered), then fans out as fanOut does; how many it invoked. */
  endRun?(action: Action, run: string | null, wanted: number, rowsPerRun: number): Promise<number>;
  /**
   * The record ids of mapping `mapping` a verification checks, at most `size` (bubble_sync.verify_sample); absent
   * from a queue that cannot verify (verify.ts).
   */
  verifySample?(mapping: string, size: number): Promise<string[]>;
  /**
   * Compares the records with Bubble's things by the database's rule and keeps the result
   * (bubble_sync.record_verification); with `error`, the reason nothing could be compared.
   */
  recordVerification?(
    mapping: string,
    startedAt: string,
    recordIds: string[],
    things: Record<string, unknown>[],
    error: string | null,
  ): Promise<Verification>;
}

/** One verification of a mapping as bubble_sync.verifications keeps it (verify.ts). */
export interface Verification {
  mapping: string;
  checked: number;
  missing: number;
  stale: number;
  orphaned: number;
  duplicated: number;
  error: string | null;
}

// What a run did, counted as it goes (process.ts): the run's log line and its answer to the caller.

import type { Action } from "./queue.ts";

/** What a run did; also the 200 answer with `"wait": true`. */
export interface Summary {
  action: Action;
  claimed: number;
  /**
   * Synced: the row is completed with its Bubble id (or, for a delete with nothing to delete or ignored, with a
   * note saying so in its error_message).
   */
  completed: number;
  /** Of the completed rows, the DELETEs whose thing Bubble deleted. */
  deleted: number;
  /** Failed an attempt that will be retried (retry_failed picks it up after its backoff). */
  failed: number;
  /**
   * Back to pending without using an attempt: Bubble's rate limit, its circuit breaker open, or the run ran
   * out of time to send it.
   */
  deferred: number;
  /** Failed for good: a permanent error, or the last attempt. */
  permanently_failed: number;
  /** Verdicts the queue refused because the lease had been taken back meanwhile (nothing was changed). */
  lease_lost: number;
  /** Rows left in 'processing' because their verdict could not be written; their lease brings them back. */
  unreported: number;
  bubble_requests: number;
  /** Statements the run sent to the database (claims, verdict batches, the gate's calls); null if unknown. */
  db_round_trips: number | null;
  /**
   * drained | limit | time_budget | row_budget | rate_limited | token_refused | bubble_unavailable.
   * row_budget: the run claimed BUBBLE_SYNC_ROWS_PER_RUN rows, as many as fit in the CPU time a worker
   * leaves an invocation; it then has a successor invoked (runs_invoked).
   */
  stopped_by: string;
  /**
   * Runs this one had the database invoke (bubble_sync.fan_out): parallel runs when its first claim showed a
   * backlog bigger than one run carries at Bubble's rate, and a successor when it stopped at its row or time
   * budget with rows still due and too few runs going.
   */
  runs_invoked: number;
  /**
   * Why the database could not invoke runs when this one asked (say, a Vault secret is missing): the rows
   * then wait for the next cron tick, whose run fails saying the same.
   */
  invoke_error?: string;
  duration_ms: number;
}

/** The summary of a run that has done nothing yet. */
export function emptySummary(action: Action): Summary {
  return {
    action,
    claimed: 0,
    completed: 0,
    deleted: 0,
    failed: 0,
    deferred: 0,
    permanently_failed: 0,
    lease_lost: 0,
    unreported: 0,
    bubble_requests: 0,
    db_round_trips: null,
    stopped_by: "drained",
    runs_invoked: 0,
    duration_ms: 0,
  };
}

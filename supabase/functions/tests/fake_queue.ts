// FakeQueue, the queue of the bubble_sync tests: in memory, following sql/functions/lease.sql (and
// bubble_sync.links, and Bubble's gate beside the queue), recording every call.

import { duplicateOf } from "../bubble_sync/deletes.ts";
import type { Answer, GateView, Grant } from "../bubble_sync/gate.ts";
import {
  type Action,
  type FailOutcome,
  type FailReason,
  linkKey,
  type Queue,
  type QueueRow,
  type RecordKey,
} from "../bubble_sync/queue.ts";
import { failureKind } from "../bubble_sync/status_kind.ts";
import { assert } from "./assertions.ts";

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

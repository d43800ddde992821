// One run of the worker: claim a batch, send each row to Bubble with bounded concurrency, complete or fail it as
// the lease holder, and claim again until the queue has no more due rows, the run's limit is reached, or its
// time budget is spent. Rows claimed but never finished go back to the queue through their lease. While Bubble's
// circuit breaker is open (gate.ts) nothing is sent: the rows go back to pending without using an attempt.

import { isBackfill, syncBackfills } from "./backfill.ts";
import { type BubbleClient, BULK_MS_PER_LINE, emailOf, type Failure, MAX_BULK_LINES } from "./bubble.ts";
import { type Config, MAX_REQUESTS_PER_ROW } from "./config.ts";
import { breakerOpen, DEFAULT_RATE_LIMIT_PAUSE_SECONDS } from "./gate.ts";
import { WorkPool } from "./pool.ts";
import { type Action, type Queue, type QueueRow, triedBefore } from "./queue.ts";
import {
  aboutUsedEmail,
  failedWith,
  noAnswer,
  type Pause,
  pauseFor,
  permanent,
  refusedCreate,
  type Verdict,
} from "./verdicts.ts";

/** What a run did; also the 200 answer with `"wait": true`. */
export interface Summary {
  action: Action;
  claimed: number;
  /** Synced: the row is completed with its Bubble id. */
  completed: number;
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

export interface RunOptions {
  action: Action;
  /** The most rows this run claims in total; null for no limit. */
  limit: number | null;
}

/** A user's built-in fields that a modify leaves out unless BUBBLE_MODIFY_USER_CREDENTIALS says otherwise. */
const USER_CREDENTIALS = ["email", "password"];
const MAX_PAYLOAD_BYTES = 1024 * 1024;
/**
 * Requests in flight with BUBBLE_SYNC_CONCURRENCY 0 (the default): enough to keep the rate limit busy at
 * Bubble's answer time (Little's law, a quarter more for the spread of answer times), between these bounds;
 * before the first answer the time is assumed; without a rate limit, AUTO_UNPACED.
 */
export const AUTO_CONCURRENCY = { least: 2, most: 200, assumedLatencyMs: 250, headroom: 1.25, unpaced: 20 };

/** The requests in flight that keep `perMinute` busy when Bubble answers in `latencyMs` (null: not known yet). */
export function autoConcurrency(perMinute: number, latencyMs: number | null): number {
  const { least, most, assumedLatencyMs, headroom, unpaced } = AUTO_CONCURRENCY;
  if (perMinute <= 0) return unpaced;
  const seconds = (latencyMs ?? assumedLatencyMs) / 1000;
  return Math.min(most, Math.max(least, Math.ceil(perMinute / 60 * seconds * headroom)));
}

/**
 * Runs that share a backlog with BUBBLE_SYNC_CONCURRENCY 0 (the default). A run keeps at most a batch in
 * flight, and about half of one on average (a batch waits for its slowest answer before the next claim): when
 * the rate needs more requests in flight than that, the backlog is shared by more runs, which the database
 * invokes and paces together (its gate). At most `most`.
 */
export const PARALLEL_RUNS = { most: 10, batchShareInFlight: 0.5 };

/** The runs that keep `perMinute` busy at Bubble's answer time when each claims `batchSize` rows at a time. */
export function runsWanted(perMinute: number, latencyMs: number | null, batchSize: number): number {
  if (perMinute <= 0) return 1;
  const { assumedLatencyMs, headroom } = AUTO_CONCURRENCY;
  const needed = perMinute / 60 * ((latencyMs ?? assumedLatencyMs) / 1000) * headroom;
  const perRun = Math.min(
    autoConcurrency(perMinute, latencyMs),
    Math.max(1, batchSize * PARALLEL_RUNS.batchShareInFlight),
  );
  return Math.min(PARALLEL_RUNS.most, Math.max(1, Math.ceil(needed / perRun)));
}

const encoder = new TextEncoder();

/** A row checked and turned into what Bubble gets: the payload's fields plus the external key. */
interface Prepared {
  row: QueueRow;
  operation: "INSERT" | "UPDATE";
  key: string;
  fields: Record<string, unknown>;
}

export class Run {
  private readonly summary: Summary;
  private readonly startedAt: number;
  /** Set by a 429 or a refused token: rows not yet sent wait until then instead of being sent. */
  private pausedUntil = 0;
  private pausedBy: Pause = "rate_limited";
  /** Why rows of the current run were handed back unsent, if they were: the run stops claiming then. */
  private cutShort: Pause | "time_budget" | null = null;
  /**
   * Rows of this batch went back unsent because their lease would have run out first (the claim answered
   * late: the database was slow or just back). The run has time left, so it claims them again at once.
   */
  private leaseWindowMissed = false;
  /** The verdict writes of the current batch, not yet awaited. */
  private readonly writes: Promise<void>[] = [];
  /** This run's registration among the runs going (bubble_sync.begin_run); null if it has none. */
  private runId: string | null = null;
  /** The fan-out asked for after the first full claim, running beside the first batch. */
  private fanning: Promise<void> | null = null;
  /** The run's end, begun beside its last batch when its row budget is reached. */
  private ending: Promise<void> | null = null;

  constructor(
    private readonly config: Config,
    private readonly queue: Queue,
    private readonly bubble: BubbleClient,
    private readonly now: () => number,
    private readonly redact: (text: string) => string,
    private readonly options: RunOptions,
  ) {
    this.startedAt = now();
    this.summary = {
      action: options.action,
      claimed: 0,
      completed: 0,
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

  /** Registers the run, so that runs fanning out count it; unregistered (null) it still works alone. */
  private async beginRun(): Promise<void> {
    // Registered for its time budget and the longest its last requests can take; past that it no longer counts.
    const seconds = Math.ceil(
      (this.config.timeBudgetMs + MAX_REQUESTS_PER_ROW * this.config.httpTimeoutMs) / 1000,
    );
    try {
      this.runId = await this.queue.beginRun?.(this.options.action, seconds) ?? null;
    } catch {
      this.runId = null; // the claim that follows meets the same trouble and says so
    }
  }

  /**
   * The runs a backlog should be shared by: with a fixed BUBBLE_SYNC_CONCURRENCY, one at a time (that number
   * is all the requests in flight); otherwise as many as Bubble's rate and answer time need (runsWanted).
   */
  private runsWanted(): number {
    if (this.config.concurrency > 0) return 1;
    return runsWanted(this.config.rateLimitPerMinute, this.bubble.latencyMs, this.config.batchSize);
  }

  /** Has the runs missing invoked, beside this one; a failure only leaves this run alone with the backlog. */
  private async fanOut(): Promise<void> {
    try {
      this.summary.runs_invoked += await this.queue.fanOut?.(
        this.options.action,
        this.runsWanted(),
        this.config.batchSize,
      ) ?? 0;
    } catch (error) {
      this.noteInvokeError(error);
    }
  }

  /** The run goes on without the runs it asked for; the summary says why they were not invoked. */
  private noteInvokeError(error: unknown): void {
    this.summary.invoke_error = this.redact(error instanceof Error ? error.message : String(error));
  }

  /**
   * Leaves the runs going; a run stopped by its row or time budget has the runs missing invoked at once (a
   * successor at least, if rows are still due), instead of leaving the rows to the next cron tick. A failure
   * costs only that wait.
   */
  private async endRun(budgetSpent: boolean): Promise<void> {
    try {
      this.summary.runs_invoked += await this.queue.endRun?.(
        this.options.action,
        this.runId,
        budgetSpent ? this.runsWanted() : 0,
        this.config.batchSize,
      ) ?? 0;
    } catch (error) {
      // The next tick picks the rows up, and the run's registration expires.
      this.noteInvokeError(error);
    }
  }

  private get budgetEnd(): number {
    return this.startedAt + this.config.timeBudgetMs;
  }

  /** Claims and processes batches until one comes back short, the limit is reached or time is up. */
  async execute(): Promise<Summary> {
    const { batchSize, leaseSeconds } = this.config;
    try {
      await this.beginRun();
      while (true) {
        if (this.now() >= this.budgetEnd) {
          this.summary.stopped_by = "time_budget";
          break;
        }
        if (this.pausedUntil > this.now()) {
          this.summary.stopped_by = this.pausedBy;
          break;
        }
        const remaining = this.options.limit === null ? batchSize : this.options.limit - this.summary.claimed;
        if (remaining <= 0) {
          this.summary.stopped_by = "limit";
          break;
        }
        const budgetLeft = this.config.rowsPerRun - this.summary.claimed;
        if (budgetLeft <= 0) {
          this.summary.stopped_by = "row_budget";
          break;
        }
        const asked = Math.min(batchSize, remaining, budgetLeft);
        const claimedAt = this.now();
        const closings = this.bubble.gate.closings;
        this.leaseWindowMissed = false;
        const rows = await this.queue.claim(this.options.action, asked, leaseSeconds);
        this.summary.claimed += rows.length;
        if (rows.length === asked) {
          // A full claim means a backlog: runs beside this one share it when the rate needs more than one.
          if (this.fanning === null && this.runsWanted() > 1) this.fanning = this.fanOut();
          // The run's last claim: its successor starts while this batch is sent, not after.
          if (this.summary.claimed >= this.config.rowsPerRun) this.ending = this.endRun(true);
        }
        if (rows.length > 0) await this.processBatch(rows, claimedAt);
        if (this.cutShort !== null) {
          this.summary.stopped_by = this.cutShort;
          break;
        }
        // While the breaker is open a claim hands out at most the probe's row: short, but not drained.
        if (rows.length < asked && this.bubble.gate.closings === closings && !this.leaseWindowMissed) {
          if (this.bubble.gate.unavailableSince !== null) this.summary.stopped_by = "bubble_unavailable";
          break;
        }
      }
      await this.fanning;
      const budgetSpent = this.summary.stopped_by === "row_budget" ||
        this.summary.stopped_by === "time_budget";
      await (this.ending ?? this.endRun(budgetSpent));
    } finally {
      this.summary.bubble_requests = this.bubble.requests;
      this.summary.db_round_trips = this.queue.roundTrips ?? null;
      this.summary.duration_ms = Math.round(this.now() - this.startedAt);
    }
    return this.summary;
  }

  private async processBatch(rows: QueueRow[], claimedAt: number): Promise<void> {
    // A row is started only before the run's time budget is spent, and only while its longest chain of requests
    // still ends inside the lease, so that no verdict comes after someone else may have taken the row back.
    const leaseEnd = claimedAt + this.config.leaseSeconds * 1000 -
      MAX_REQUESTS_PER_ROW * this.config.httpTimeoutMs;
    const startBy = Math.min(this.budgetEnd, leaseEnd);
    this.bubble.sendBy = startBy;

    const singles: Prepared[] = [];
    const bulk: Prepared[] = [];
    const backfills: Prepared[] = [];
    for (const row of rows) {
      const prepared = this.prepare(row);
      if ("kind" in prepared) this.record(row, prepared);
      else if (isBackfill(row)) backfills.push(prepared);
      else if (this.config.bulkCreate && prepared.operation === "INSERT" && !triedBefore(row)) {
        bulk.push(prepared);
      } else singles.push(prepared);
    }
    // A bulk call's answer must come before the run's budget ends and while the rows' lease lasts, with a
    // request's time left to write the verdicts; it carries no more lines than Bubble can finish by then.
    const bulkEnd = Math.min(
      this.budgetEnd,
      claimedAt + this.config.leaseSeconds * 1000 - this.config.httpTimeoutMs,
    );
    const linesPerCall = Math.min(MAX_BULK_LINES, Math.floor(this.bulkTimeoutMs(bulkEnd) / BULK_MS_PER_LINE));
    if (bulk.length < 2 || linesPerCall < 2) singles.unshift(...bulk.splice(0));

    const pool = new WorkPool(() => this.concurrency());
    this.bubble.gate.backlog = () => pool.queued;
    for (let i = 0; i < bulk.length; i += linesPerCall) {
      const chunk = bulk.slice(i, i + linesPerCall);
      pool.add(() => this.gate(chunk, startBy, () => this.syncBulk(chunk, pool, startBy, bulkEnd)));
    }
    for (const item of singles) pool.add(() => this.gate([item], startBy, () => this.syncOne(item)));
    // Backfilled rows, after the changes: looked up by key first, the rest created in bulk (backfill.ts).
    syncBackfills(backfills, {
      bubble: this.bubble,
      dataType: this.config.dataType,
      keyField: this.config.externalKeyField,
      linesPerCall,
      schedule: (items, work) => pool.add(() => this.gate(items, startBy, work)),
      link: (item, bubbleId) => this.record(item.row, { kind: "complete", bubbleId }),
      fail: (item, failure) => this.record(item.row, failedWith(failure, "looking up backfilled records")),
      createInBulk: (items) => this.syncBulk(items, pool, startBy, bulkEnd),
      createOne: (item) => this.syncOne(item),
    });
    // Settle everything before giving up on an error, so no task is left running behind the run's back.
    const results = await Promise.allSettled([pool.drained()]);
    // The verdicts are written behind the requests (a request slot is not held for a database round trip).
    results.push(...await Promise.allSettled(this.writes.splice(0)));
    const rejected = results.find((result) => result.status === "rejected");
    if (rejected) throw rejected.reason;
  }

  /**
   * Runs `work` unless the run may no longer send: past the start deadline the rows go back to pending at once,
   * and while a pause lasts they wait for its end, in both cases without using an attempt.
   */
  private async gate(items: Prepared[], startBy: number, work: () => Promise<void>): Promise<void> {
    const now = this.now();
    if (this.pausedUntil > now) {
      const seconds = Math.ceil((this.pausedUntil - now) / 1000);
      this.cutShort = this.pausedBy;
      const verdict = this.pausedVerdict(seconds);
      for (const { row } of items) this.record(row, verdict);
      return;
    }
    if (now >= startBy) {
      const budgetSpent = now >= this.budgetEnd;
      const error = budgetSpent
        ? "time budget: not sent, the run reached its time budget before this row's turn"
        : "time budget: not sent, the row's lease would have run out before Bubble's answer (the claim " +
          "came back late); claimed again";
      if (budgetSpent) this.cutShort ??= "time_budget";
      else this.leaseWindowMissed = true;
      for (const { row } of items) this.record(row, this.deferral(error, 0));
      return;
    }
    await work();
  }

  /**
   * A create whose outcome is unknown (no answer, or no line for the row in a bulk answer): Bubble may still
   * store it, so the row is looked up again only once that can no longer happen (bubbleSettleSeconds).
   */
  private unsettled(verdict: Verdict): Verdict {
    if (verdict.kind !== "fail") return verdict;
    const seconds = this.config.settleSeconds;
    return {
      ...verdict,
      error: `${verdict.error} (the create may still be stored: looked up again after ${seconds} s)`,
      retryAfterSeconds: seconds,
    };
  }

  /** A row not sent because the run is paused: it waits for the pause's end without using an attempt. */
  private pausedVerdict(seconds: number): Verdict {
    switch (this.pausedBy) {
      case "token_refused":
        return this.deferral(
          `refused token: not sent, Bubble refused the API token earlier in this run; waiting ${seconds} s`,
          seconds,
        );
      case "rate_limited":
        return this.deferral(
          `rate limited: not sent, Bubble asked to wait ${seconds} s (Retry-After) during this run`,
          seconds,
        );
      case "bubble_unavailable":
        return {
          kind: "fail",
          error: `bubble unavailable: not sent, ${breakerOpen(this.bubble.gate.unavailableSince, seconds)}`,
          reason: { kind: "unavailable" },
          retryAfterSeconds: seconds,
        };
    }
  }

  private deferral(error: string, seconds: number): Verdict {
    return { kind: "fail", error, reason: { kind: "deferred" }, retryAfterSeconds: seconds };
  }

  /** Checks a row's operation and payload; a verdict when the row cannot be sent at all. */
  private prepare(row: QueueRow): Prepared | Verdict {
    // A backfilled row is a create, looked up in Bubble before it is sent (backfill.ts).
    const operation = isBackfill(row) ? "INSERT" : row.operation.toUpperCase();
    if (operation !== "INSERT" && operation !== "UPDATE") {
      const name = JSON.stringify(row.operation);
      return permanent(`unknown operation ${name}: bubble_sync sends INSERT (create) and UPDATE (modify)`);
    }
    const payload = row.payload;
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      const what = payload === null ? "null" : Array.isArray(payload) ? "an array" : typeof payload;
      return permanent(`payload must be a JSON object of Bubble fields, got ${what}`);
    }
    // The external key is what makes a retry find the record instead of creating a second one: without
    // both parts every such row would share one key (an adopted table's columns may be nullable).
    if (!row.table_name || !row.record_id) {
      const missing = !row.table_name ? "table_name" : "record_id";
      return permanent(`${missing} is empty: without it the row has no stable key in Bubble`);
    }
    const key = `${row.table_name}:${row.record_id}`;
    const fields = { ...(payload as Record<string, unknown>), [this.config.externalKeyField]: key };
    const bytes = encoder.encode(JSON.stringify(fields)).length;
    if (bytes > MAX_PAYLOAD_BYTES) {
      return permanent(
        `payload is ${bytes} bytes, more than the ${MAX_PAYLOAD_BYTES} bytes bubble_sync sends`,
      );
    }
    return { row, operation, key, fields };
  }

  private async syncOne(item: Prepared): Promise<void> {
    const verdict = item.operation === "INSERT" ? await this.insert(item) : await this.update(item);
    this.record(item.row, verdict);
  }

  /** Creates the thing, unless an earlier attempt (or Deno re-sending the create) already did. */
  private async insert(item: Prepared): Promise<Verdict> {
    const keyField = this.config.externalKeyField;
    if (triedBefore(item.row)) {
      // An earlier attempt may have created it and died before completing the row: look before creating.
      const found = await this.bubble.findOne(this.config.dataType, keyField, item.key);
      if (!found.ok) return failedWith(found, "looking up an earlier attempt");
      if (found.thing) return { kind: "complete", bubbleId: String(found.thing._id) };
    }
    const created = await this.bubble.create(this.config.dataType, item.fields);
    if (created.ok) return { kind: "complete", bubbleId: created.id };
    if (refusedCreate(created) && typeof item.fields.email === "string") {
      return await this.recoverUsedEmail(item, item.fields.email, created);
    }
    return noAnswer(created) ? this.unsettled(failedWith(created)) : failedWith(created);
  }

  /**
   * Bubble refused the create, perhaps because the email is taken (however it words that). Either we created
   * this user already (an earlier attempt, or a create Deno re-sent on its own), or the person had a Bubble
   * account before: find the user by email and link the row to it, unless that user belongs to another
   * record. When no user has the email, the refusal was about something else and keeps its own message.
   */
  private async recoverUsedEmail(item: Prepared, email: string, refusal: Failure): Promise<Verdict> {
    const keyField = this.config.externalKeyField;
    const found = await this.bubble.findOne(this.config.dataType, "email", email);
    if (!found.ok) return failedWith(found, `${refusal.message}; looking up the user holding the email`);
    // A search that ignored the constraint would hand back someone else: only the same email counts.
    const holder = found.thing && emailOf(found.thing)?.toLowerCase() === email.toLowerCase()
      ? found.thing
      : null;
    if (holder === null) {
      if (!aboutUsedEmail(refusal)) return failedWith(refusal);
      return {
        kind: "fail",
        error: `${refusal.message} (but no user with that email was found; retrying)`,
        reason: { httpStatus: null },
        retryAfterSeconds: null,
      };
    }
    const bubbleId = String(holder._id);
    const owner = holder[keyField];
    if (owner === item.key) return { kind: "complete", bubbleId };
    if (owner !== undefined && owner !== null && owner !== "") {
      return permanent(
        `the email is already used by Bubble ${this.config.dataType} ${bubbleId}, which belongs to ` +
          `${keyField} ${JSON.stringify(owner)}`,
      );
    }
    // A user made in Bubble itself: adopt it, with this row's fields and key.
    const linked = await this.bubble.modify(this.config.dataType, bubbleId, this.modifiable(item.fields));
    if (!linked.ok) return failedWith(linked, `linking the existing Bubble user ${bubbleId}`);
    return { kind: "complete", bubbleId };
  }

  /**
   * The fields a modify sends: a user's email and password are left out unless configured, since Bubble does
   * not document that a modify may change them (a refused modify would fail every UPDATE of a user).
   */
  private modifiable(fields: Record<string, unknown>): Record<string, unknown> {
    if (this.config.dataType !== "user" || this.config.modifyUserCredentials) return fields;
    return Object.fromEntries(Object.entries(fields).filter(([name]) => !USER_CREDENTIALS.includes(name)));
  }

  /** Modifies the thing the row names by bubble_id, else the one carrying the row's key. */
  private async update(item: Prepared): Promise<Verdict> {
    let bubbleId = item.row.bubble_id;
    if (bubbleId === null) {
      const found = await this.bubble.findOne(this.config.dataType, this.config.externalKeyField, item.key);
      if (!found.ok) return failedWith(found, "looking up the thing to modify");
      if (!found.thing) {
        const { dataType, externalKeyField } = this.config;
        const key = JSON.stringify(item.key);
        return permanent(
          `no Bubble ${dataType} has ${externalKeyField} = ${key} to modify (was its INSERT synced?)`,
        );
      }
      bubbleId = String(found.thing._id);
    }
    const modified = await this.bubble.modify(this.config.dataType, bubbleId, this.modifiable(item.fields));
    return modified.ok ? { kind: "complete", bubbleId } : failedWith(modified, `modifying ${bubbleId}`);
  }

  /**
   * Sends first-attempt creates in one bulk call and maps each answer line to its row. A line Bubble refused is
   * sent again alone, which classifies it by its own HTTP status (and recovers a used email). A bulk call that
   * failed as a whole fails every row by its status; an ambiguous one (timeout, lost connection, missing lines)
   * is retried, and the retry looks each row up before creating it.
   */
  private async syncBulk(items: Prepared[], pool: WorkPool, startBy: number, bulkEnd: number): Promise<void> {
    const timeoutMs = this.bulkTimeoutMs(bulkEnd);
    if (timeoutMs < items.length * BULK_MS_PER_LINE) {
      // Its turn came too late for Bubble to finish these lines in time: they go back, no attempt used, and
      // the run stops claiming (another claim now would meet the same end).
      this.cutShort ??= "time_budget";
      const error =
        "time budget: not sent, too little of the run's time left for Bubble to finish the bulk call";
      for (const { row } of items) this.record(row, this.deferral(error, 0));
      return;
    }
    const answer = await this.bubble.bulkCreate(
      this.config.dataType,
      items.map((item) => item.fields),
      timeoutMs,
    );
    if (!answer.ok) {
      if (answer.status === 400 || answer.status === 413) {
        // One bad line may sink the whole call: try each row alone to find it.
        for (const item of items) pool.add(() => this.gate([item], startBy, () => this.syncOne(item)));
        return;
      }
      const verdict = failedWith(answer, "bulk create");
      const settled = noAnswer(answer) ? this.unsettled(verdict) : verdict;
      for (const { row } of items) this.record(row, settled);
      return;
    }
    items.forEach((item, i) => {
      const line = answer.lines[i];
      if (line === null) {
        this.record(
          item.row,
          this.unsettled({
            kind: "fail",
            error: "the bulk create answer has no readable line for this row",
            reason: { httpStatus: null },
            retryAfterSeconds: null,
          }),
        );
      } else if (line.ok) this.record(item.row, { kind: "complete", bubbleId: line.id });
      else pool.add(() => this.gate([item], startBy, () => this.syncOne(item)));
    });
  }

  /** Requests to keep in flight: BUBBLE_SYNC_CONCURRENCY, or (0) what the rate and Bubble's answer time need. */
  private concurrency(): number {
    if (this.config.concurrency > 0) return this.config.concurrency;
    return autoConcurrency(this.config.rateLimitPerMinute, this.bubble.latencyMs);
  }

  /** How long a bulk call sent now may take: bubbleBulkTimeoutSeconds, or less if the run must end sooner. */
  private bulkTimeoutMs(bulkEnd: number): number {
    return Math.max(0, Math.min(this.config.bulkTimeoutMs, bulkEnd - this.now()));
  }

  /** Stops sending until the pause ends; the run then stops claiming and says why (stopped_by). */
  private notePause(pause: Pause, seconds: number | null): void {
    const until = this.now() + (seconds ?? DEFAULT_RATE_LIMIT_PAUSE_SECONDS) * 1000;
    if (until > this.pausedUntil) [this.pausedUntil, this.pausedBy] = [until, pause];
    if (this.pausedUntil > this.now()) this.cutShort = this.pausedBy;
  }

  /** Gives the row's verdict; its write is awaited at the end of the batch (processBatch). */
  private record(row: QueueRow, verdict: Verdict): void {
    this.writes.push(this.report(row, verdict));
  }

  /** Writes the verdict as the lease holder and counts it. */
  private async report(row: QueueRow, verdict: Verdict): Promise<void> {
    const s = this.summary;
    try {
      if (verdict.kind === "complete") {
        if (await this.queue.complete(row.lease_token, verdict.bubbleId)) s.completed++;
        else s.lease_lost++;
        return;
      }
      const pause = "httpStatus" in verdict.reason
        ? pauseFor(verdict.reason.httpStatus)
        : verdict.reason.kind === "unavailable"
        ? "bubble_unavailable"
        : null;
      if (pause !== null) this.notePause(pause, verdict.retryAfterSeconds);
      if (verdict.endsRun) this.cutShort ??= verdict.endsRun;
      const outcome = await this.queue.fail(
        row.lease_token,
        this.redact(verdict.error),
        verdict.reason,
        verdict.retryAfterSeconds,
      );
      if (outcome === null) s.lease_lost++;
      else if (outcome === "deferred") s.deferred++;
      else if (outcome === "failed_for_good") s.permanently_failed++;
      else s.failed++;
    } catch (error) {
      // The row stays 'processing' until its lease runs out; reclaim then counts the attempt.
      s.unreported++;
      throw error;
    }
  }
}

// One run of the worker: claim a batch, send each row to Bubble with bounded concurrency, complete or fail it as
// the lease holder, and claim again until the queue has no more due rows, the run's limit is reached, or its
// time budget is spent. Rows claimed but never finished go back to the queue through their lease. While Bubble's
// circuit breaker is open (gate.ts) nothing is sent: the rows go back to pending without using an attempt.
// A row follows its table's mapping, if one names it (mapping.ts, prepare.ts): its data type, its fields, its
// references (references.ts, resolved before the batch is sent) and what its delete does (deletes.ts).
// Here is the run loop and the sending of a batch; a row's own requests are row_sync.ts's, what a Bubble answer
// makes of a row verdicts.ts's, how much is in flight sizing.ts's, and the runs beside this one runs.ts's.

import { isBackfill, syncBackfills } from "./backfill.ts";
import { type BubbleClient, BULK_MS_PER_LINE, MAX_BULK_LINES } from "./bubble.ts";
import { type Config, MAX_REQUESTS_PER_ROW } from "./config.ts";
import { DEFAULT_RATE_LIMIT_PAUSE_SECONDS } from "./gate.ts";
import { Mappings } from "./mapping.ts";
import { WorkPool } from "./pool.ts";
import { createFields, prepare, type Prepared } from "./prepare.ts";
import { type Action, type Queue, type QueueRow, triedBefore } from "./queue.ts";
import { resolveReferences } from "./references.ts";
import { RowSync } from "./row_sync.ts";
import { RunsGoing } from "./runs.ts";
import { autoConcurrency } from "./sizing.ts";
import { emptySummary, type Summary } from "./summary.ts";
import {
  deferral,
  failedWith,
  noAnswer,
  type Pause,
  pausedVerdict,
  pauseFor,
  unsettled,
  type Verdict,
} from "./verdicts.ts";

export interface RunOptions {
  action: Action;
  /** The most rows this run claims in total; null for no limit. */
  limit: number | null;
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
  /** This run among the runs going: its registration, and the runs it has invoked. */
  private readonly runs: RunsGoing;
  /** The fan-out asked for after the first full claim, running beside the first batch. */
  private fanning: Promise<void> | null = null;
  /** The run's end, begun beside its last batch when its row budget is reached. */
  private ending: Promise<void> | null = null;
  private readonly mappings: Mappings;
  private readonly rowSync: RowSync;

  constructor(
    private readonly config: Config,
    private readonly queue: Queue,
    private readonly bubble: BubbleClient,
    private readonly now: () => number,
    private readonly redact: (text: string) => string,
    private readonly options: RunOptions,
  ) {
    this.startedAt = now();
    this.mappings = new Mappings(config.mappings, {
      dataType: config.dataType,
      keyField: config.externalKeyField,
    });
    this.summary = emptySummary(options.action);
    this.runs = new RunsGoing(config, queue, bubble, options.action, redact, this.summary);
    this.rowSync = new RowSync(bubble, config);
  }

  private get budgetEnd(): number {
    return this.startedAt + this.config.timeBudgetMs;
  }

  /** Claims and processes batches until one comes back short, the limit is reached or time is up. */
  async execute(): Promise<Summary> {
    const { batchSize, leaseSeconds } = this.config;
    try {
      await this.runs.begin();
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
          if (this.fanning === null && this.runs.wanted() > 1) this.fanning = this.runs.fanOut();
          // The run's last claim: its successor starts while this batch is sent, not after.
          if (this.summary.claimed >= this.config.rowsPerRun) this.ending = this.runs.end(true);
        }
        const completedBefore = this.summary.completed;
        if (rows.length > 0) await this.processBatch(rows, claimedAt);
        if (this.cutShort !== null) {
          this.summary.stopped_by = this.cutShort;
          break;
        }
        // A short claim may have left rows behind that waited for this batch: a record's next change behind
        // its create, a row behind the record it refers to (claim holds both back). When the batch completed
        // rows, claim once more: they are due now, not at the next cron tick.
        const released = this.summary.completed > completedBefore;
        // While the breaker is open a claim hands out at most the probe's row: short, but not drained.
        if (
          rows.length < asked && !released && this.bubble.gate.closings === closings &&
          !this.leaseWindowMissed
        ) {
          if (this.bubble.gate.unavailableSince !== null) this.summary.stopped_by = "bubble_unavailable";
          break;
        }
      }
      await this.fanning;
      const budgetSpent = this.summary.stopped_by === "row_budget" ||
        this.summary.stopped_by === "time_budget";
      await (this.ending ?? this.runs.end(budgetSpent));
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

    const prepared: Prepared[] = [];
    for (const row of rows) {
      const item = prepare(row, this.mappings);
      if ("kind" in item) this.record(row, item);
      else prepared.push(item);
    }
    let ready: Prepared[];
    try {
      ready = await this.resolveReferences(prepared, startBy);
    } catch (error) {
      // The links could not be read: the rows not yet given a verdict come back through their lease.
      await Promise.allSettled(this.writes.splice(0));
      throw error;
    }
    const singles: Prepared[] = [];
    const bulk: Prepared[] = [];
    const backfills: Prepared[] = [];
    for (const item of ready) {
      if (isBackfill(item.row)) backfills.push(item);
      else if (this.bulkable(item)) bulk.push(item);
      else singles.push(item);
    }
    // A bulk call's answer must come before the run's budget ends and while the rows' lease lasts, with a
    // request's time left to write the verdicts; it carries no more lines than Bubble can finish by then.
    const bulkEnd = Math.min(
      this.budgetEnd,
      claimedAt + this.config.leaseSeconds * 1000 - this.config.httpTimeoutMs,
    );
    const linesPerCall = Math.min(MAX_BULK_LINES, Math.floor(this.bulkTimeoutMs(bulkEnd) / BULK_MS_PER_LINE));
    // A bulk call creates things of one data type.
    const bulkCalls: Prepared[][] = [];
    for (const same of Map.groupBy(bulk, (item) => item.target.dataType).values()) {
      if (same.length < 2 || linesPerCall < 2) {
        singles.unshift(...same);
        continue;
      }
      for (let i = 0; i < same.length; i += linesPerCall) bulkCalls.push(same.slice(i, i + linesPerCall));
    }

    const pool = new WorkPool(() => this.concurrency());
    this.bubble.gate.backlog = () => pool.queued;
    for (const chunk of bulkCalls) {
      pool.add(() => this.gate(chunk, startBy, () => this.syncBulk(chunk, pool, startBy, bulkEnd)));
    }
    for (const item of singles) pool.add(() => this.gate([item], startBy, () => this.syncOne(item)));
    // Backfilled rows, after the changes: looked up by key first, the rest created in bulk (backfill.ts).
    syncBackfills(backfills, {
      bubble: this.bubble,
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

  /** A first-attempt create of a record Bubble has no link for, sent in a bulk call when BUBBLE_BULK_CREATE. */
  private bulkable(item: Prepared): boolean {
    return this.config.bulkCreate && item.operation === "INSERT" && !triedBefore(item.row) &&
      item.row.bubble_id === null;
  }

  /**
   * Fills in the Bubble ids of the records the rows refer to (references.ts); the rows that must wait, or whose
   * lookup failed, get their verdict now and are not sent. The rows ready to send come back.
   */
  private async resolveReferences(items: Prepared[], startBy: number): Promise<Prepared[]> {
    const referring = items.filter((item) => item.references.length > 0);
    if (referring.length === 0) return items;
    const verdicts = await resolveReferences(referring, {
      queue: this.queue,
      bubble: this.bubble,
      concurrency: () => this.concurrency(),
      blocked: () => this.blocked(startBy),
    });
    for (const [item, verdict] of verdicts) this.record(item.row, verdict);
    return items.filter((item) => !verdicts.has(item));
  }

  /**
   * Runs `work` unless the run may no longer send: past the start deadline the rows go back to pending at once,
   * and while a pause lasts they wait for its end, in both cases without using an attempt.
   */
  private async gate(items: Prepared[], startBy: number, work: () => Promise<void>): Promise<void> {
    const verdict = this.blocked(startBy);
    if (verdict === null) return await work();
    for (const { row } of items) this.record(row, verdict);
  }

  /** Why nothing may be sent now (a pause, or the start deadline passed), as the verdict of unsent rows. */
  private blocked(startBy: number): Verdict | null {
    const now = this.now();
    if (this.pausedUntil > now) {
      const seconds = Math.ceil((this.pausedUntil - now) / 1000);
      this.cutShort = this.pausedBy;
      return pausedVerdict(this.pausedBy, seconds, this.bubble.gate.unavailableSince);
    }
    if (now >= startBy) {
      const budgetSpent = now >= this.budgetEnd;
      const error = budgetSpent
        ? "time budget: not sent, the run reached its time budget before this row's turn"
        : "time budget: not sent, the row's lease would have run out before Bubble's answer (the claim " +
          "came back late); claimed again";
      if (budgetSpent) this.cutShort ??= "time_budget";
      else this.leaseWindowMissed = true;
      return deferral(error, 0);
    }
    return null;
  }

  /** Sends one row alone (row_sync.ts) and gives its verdict. */
  private async syncOne(item: Prepared): Promise<void> {
    this.record(item.row, await this.rowSync.sync(item));
  }

  /**
   * Sends first-attempt creates of one data type in one bulk call and maps each answer line to its row. A line
   * Bubble refused is sent again alone, which classifies it by its own HTTP status (and recovers a used email).
   * A bulk call that failed as a whole fails every row by its status; an ambiguous one (timeout, lost
   * connection, missing lines) is retried, and the retry looks each row up before creating it.
   */
  private async syncBulk(items: Prepared[], pool: WorkPool, startBy: number, bulkEnd: number): Promise<void> {
    const timeoutMs = this.bulkTimeoutMs(bulkEnd);
    if (timeoutMs < items.length * BULK_MS_PER_LINE) {
      // Its turn came too late for Bubble to finish these lines in time: they go back, no attempt used, and
      // the run stops claiming (another claim now would meet the same end).
      this.cutShort ??= "time_budget";
      const error =
        "time budget: not sent, too little of the run's time left for Bubble to finish the bulk call";
      for (const { row } of items) this.record(row, deferral(error, 0));
      return;
    }
    const answer = await this.bubble.bulkCreate(items[0].target.dataType, items.map(createFields), timeoutMs);
    if (!answer.ok) {
      if (answer.status === 400 || answer.status === 413) {
        // One bad line may sink the whole call: try each row alone to find it.
        for (const item of items) pool.add(() => this.gate([item], startBy, () => this.syncOne(item)));
        return;
      }
      const verdict = failedWith(answer, "bulk create");
      const settled = noAnswer(answer) ? unsettled(verdict, this.config.settleSeconds) : verdict;
      for (const { row } of items) this.record(row, settled);
      return;
    }
    items.forEach((item, i) => {
      const line = answer.lines[i];
      if (line === null) {
        this.record(
          item.row,
          unsettled({
            kind: "fail",
            error: "the bulk create answer has no readable line for this row",
            reason: { httpStatus: null },
            retryAfterSeconds: null,
          }, this.config.settleSeconds),
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
        const note = verdict.note === undefined ? undefined : this.redact(verdict.note);
        if (await this.queue.complete(row.lease_token, verdict.bubbleId, note)) {
          s.completed++;
          if (verdict.deleted) s.deleted++;
        } else s.lease_lost++;
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

// One run of the worker: claim a batch, send each row to Bubble with bounded concurrency, complete or fail it as
// the lease holder, and claim again until the queue has no more due rows, the run's limit is reached, or its
// time budget is spent. Rows claimed but never finished go back to the queue through their lease. While Bubble's
// circuit breaker is open (gate.ts) nothing is sent: the rows go back to pending without using an attempt.
// A row follows its table's mapping, if one names it (mapping.ts, prepare.ts): its data type, its fields, its
// references (references.ts, resolved before the batch is sent) and what its delete does (deletes.ts).

import { isBackfill, syncBackfills } from "./backfill.ts";
import { type BubbleClient, BULK_MS_PER_LINE, emailOf, type Failure, MAX_BULK_LINES } from "./bubble.ts";
import { type Config, MAX_REQUESTS_PER_ROW } from "./config.ts";
import { syncDelete } from "./deletes.ts";
import { breakerOpen, DEFAULT_RATE_LIMIT_PAUSE_SECONDS } from "./gate.ts";
import { Mappings } from "./mapping.ts";
import { WorkPool } from "./pool.ts";
import { createFields, prepare, type Prepared } from "./prepare.ts";
import { type Action, type Queue, type QueueRow, triedBefore } from "./queue.ts";
import { resolveReferences } from "./references.ts";
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

export interface RunOptions {
  action: Action;
  /** The most rows this run claims in total; null for no limit. */
  limit: number | null;
}

/** A user's built-in fields that a modify leaves out unless BUBBLE_MODIFY_USER_CREDENTIALS says otherwise. */
const USER_CREDENTIALS = ["email", "password"];
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
  private readonly mappings: Mappings;

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
    this.summary = {
      action: options.action,
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
      return this.pausedVerdict(seconds);
    }
    if (now >= startBy) {
      const budgetSpent = now >= this.budgetEnd;
      const error = budgetSpent
        ? "time budget: not sent, the run reached its time budget before this row's turn"
        : "time budget: not sent, the row's lease would have run out before Bubble's answer (the claim " +
          "came back late); claimed again";
      if (budgetSpent) this.cutShort ??= "time_budget";
      else this.leaseWindowMissed = true;
      return this.deferral(error, 0);
    }
    return null;
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

  private async syncOne(item: Prepared): Promise<void> {
    const verdict = item.operation === "INSERT"
      ? await this.insert(item)
      : item.operation === "UPDATE"
      ? await this.update(item)
      : await syncDelete(item, this.bubble);
    this.record(item.row, verdict);
  }

  /**
   * Creates the thing, unless Bubble has it already: an earlier attempt (or Deno re-sending the create) created
   * it, or the database links the record to a thing (it left its mapping's rows and came back, say), which is
   * modified instead. At most MAX_REQUESTS_PER_ROW requests: a search, or a modify, then a create and what
   * recovering a used email takes.
   */
  private async insert(item: Prepared): Promise<Verdict> {
    const { dataType, keyField } = item.target;
    // A backfilled row is looked up by its key whatever the link says (backfill.ts).
    let existing = isBackfill(item.row) ? null : item.row.bubble_id;
    const searched = triedBefore(item.row);
    if (searched) {
      // An earlier attempt may have created it and died before completing the row: look before creating. The
      // search also finds a linked thing, and Bubble no longer having it.
      const found = await this.bubble.findOne(dataType, keyField, item.key);
      if (!found.ok) return failedWith(found, "looking up an earlier attempt");
      if (found.thing && existing === null) return { kind: "complete", bubbleId: String(found.thing._id) };
      existing = found.thing ? String(found.thing._id) : null;
    }
    if (existing !== null) {
      const modified = await this.bubble.modify(dataType, existing, this.modifiable(item));
      if (modified.ok) return { kind: "complete", bubbleId: existing };
      if (modified.status !== 404) return failedWith(modified, `modifying ${existing}`);
      if (searched) {
        // Deleted in Bubble since the search: the retry searches again, and creates it.
        return {
          kind: "fail",
          error: `modifying ${existing}: ${modified.message} (deleted since it was found; retrying)`,
          reason: { kind: "retryable" },
          retryAfterSeconds: null,
        };
      }
      // 404: Bubble no longer has the linked thing (deleted there): it is created anew.
    }
    return await this.create(item);
  }

  /** Creates the row's thing: a create, or a mapped modify whose thing Bubble does not have (update). */
  private async create(item: Prepared): Promise<Verdict> {
    const { dataType } = item.target;
    const created = await this.bubble.create(dataType, createFields(item));
    if (created.ok) return { kind: "complete", bubbleId: created.id };
    // A table no mapping names keeps the rule of a stack without mappings: any type whose fields have an email.
    const users = item.target.mapping === null || dataType === "user";
    if (users && refusedCreate(created) && typeof item.fields.email === "string") {
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
    const { dataType, keyField } = item.target;
    const found = await this.bubble.findOne(dataType, "email", email);
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
        `the email is already used by Bubble ${dataType} ${bubbleId}, which belongs to ` +
          `${keyField} ${JSON.stringify(owner)}`,
      );
    }
    // A user made in Bubble itself: adopt it, with this row's fields and key.
    const linked = await this.bubble.modify(dataType, bubbleId, this.modifiable(item));
    if (!linked.ok) return failedWith(linked, `linking the existing Bubble user ${bubbleId}`);
    return { kind: "complete", bubbleId };
  }

  /**
   * The fields a modify sends (a mapped row's nulls included: they empty the field): a user's email and password
   * are left out unless configured, since Bubble does not document that a modify may change them (a refused
   * modify would fail every UPDATE of a user).
   */
  private modifiable(item: Prepared): Record<string, unknown> {
    if (item.target.dataType !== "user" || this.config.modifyUserCredentials) return item.fields;
    return Object.fromEntries(
      Object.entries(item.fields).filter(([name]) => !USER_CREDENTIALS.includes(name)),
    );
  }

  /** Modifies the thing the row names by bubble_id, else the one carrying the row's key. */
  /**
   * Modifies the thing the row names by its link, else the one carrying its key. A mapped row carries every
   * mapped column, so when Bubble has no such thing (a record from before the trigger that no backfill
   * reached, or one deleted in Bubble) it is created: Bubble then holds what Supabase holds. An unmapped row's
   * payload may be a part of the record only: it fails for good, saying so.
   */
  private async update(item: Prepared): Promise<Verdict> {
    const { dataType, keyField } = item.target;
    const mapped = item.target.mapping !== null;
    let bubbleId = item.row.bubble_id;
    if (bubbleId === null) {
      const found = await this.bubble.findOne(dataType, keyField, item.key);
      if (!found.ok) return failedWith(found, "looking up the thing to modify");
      if (!found.thing) {
        if (mapped) return await this.create(item);
        const key = JSON.stringify(item.key);
        return permanent(`no Bubble ${dataType} has ${keyField} = ${key} to modify (was its INSERT synced?)`);
      }
      bubbleId = String(found.thing._id);
    }
    const modified = await this.bubble.modify(dataType, bubbleId, this.modifiable(item));
    if (modified.ok) return { kind: "complete", bubbleId };
    // The linked thing was deleted in Bubble: a mapped record is made again (its retry would search first).
    if (mapped && modified.status === 404 && item.row.bubble_id !== null) return await this.create(item);
    return failedWith(modified, `modifying ${bubbleId}`);
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
      for (const { row } of items) this.record(row, this.deferral(error, 0));
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

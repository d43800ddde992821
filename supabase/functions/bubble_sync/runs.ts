// This run among the runs going for its action (the database's bubble_sync.begin_run, fan_out and end_run):
// registering it, having runs invoked beside it when a backlog needs more than one, and a successor when it
// stops at its row or time budget. None of this stops the run when it fails: its summary says why instead.

import type { BubbleClient } from "./bubble.ts";
import { type Config, MAX_REQUESTS_PER_ROW } from "./config.ts";
import type { Action, Queue } from "./queue.ts";
import { runsWanted } from "./sizing.ts";
import type { Summary } from "./summary.ts";

export class RunsGoing {
  /** This run's registration among the runs going (bubble_sync.begin_run); null if it has none. */
  private runId: string | null = null;

  constructor(
    private readonly config: Config,
    private readonly queue: Queue,
    private readonly bubble: Pick<BubbleClient, "latencyMs">,
    private readonly action: Action,
    private readonly redact: (text: string) => string,
    /** Where the runs invoked, and why none could be, are counted. */
    private readonly summary: Pick<Summary, "runs_invoked" | "invoke_error">,
  ) {}

  /** Registers the run, so that runs fanning out count it; unregistered (null) it still works alone. */
  async begin(): Promise<void> {
    // Registered for its time budget and the longest its last requests can take; past that it no longer counts.
    const seconds = Math.ceil(
      (this.config.timeBudgetMs + MAX_REQUESTS_PER_ROW * this.config.httpTimeoutMs) / 1000,
    );
    try {
      this.runId = await this.queue.beginRun?.(this.action, seconds) ?? null;
    } catch {
      this.runId = null; // the claim that follows meets the same trouble and says so
    }
  }

  /**
   * The runs a backlog should be shared by: with a fixed BUBBLE_SYNC_CONCURRENCY, one at a time (that number
   * is all the requests in flight); otherwise as many as Bubble's rate and answer time need (runsWanted).
   */
  wanted(): number {
    if (this.config.concurrency > 0) return 1;
    return runsWanted(this.config.rateLimitPerMinute, this.bubble.latencyMs, this.config.batchSize);
  }

  /** Has the runs missing invoked, beside this one; a failure only leaves this run alone with the backlog. */
  async fanOut(): Promise<void> {
    try {
      this.summary.runs_invoked += await this.queue.fanOut?.(
        this.action,
        this.wanted(),
        this.config.batchSize,
      ) ?? 0;
    } catch (error) {
      this.noteInvokeError(error);
    }
  }

  /**
   * Leaves the runs going; a run stopped by its row or time budget has the runs missing invoked at once (a
   * successor at least, if rows are still due), instead of leaving the rows to the next cron tick. A failure
   * costs only that wait.
   */
  async end(budgetSpent: boolean): Promise<void> {
    try {
      this.summary.runs_invoked += await this.queue.endRun?.(
        this.action,
        this.runId,
        budgetSpent ? this.wanted() : 0,
        this.config.batchSize,
      ) ?? 0;
    } catch (error) {
      // The next tick picks the rows up, and the run's registration expires.
      this.noteInvokeError(error);
    }
  }

  /** The run goes on without the runs it asked for; the summary says why they were not invoked. */
  private noteInvokeError(error: unknown): void {
    this.summary.invoke_error = this.redact(error instanceof Error ? error.message : String(error));
  }
}

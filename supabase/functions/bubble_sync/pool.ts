// A pool of tasks run with bounded concurrency, for a run's Bubble requests.

/** Runs added tasks with at most `size()` at a time (read as tasks start); tasks may add more tasks. */
export class WorkPool {
  private readonly waiting: (() => Promise<void>)[] = [];
  private active = 0;
  private readonly errors: unknown[] = [];
  private idle: PromiseWithResolvers<void> | null = null;

  constructor(private readonly size: () => number) {}

  /** Tasks added and not started yet. */
  get queued(): number {
    return this.waiting.length;
  }

  add(task: () => Promise<void>): void {
    this.waiting.push(task);
    this.pump();
  }

  private pump(): void {
    while (this.active < this.size() && this.waiting.length > 0) {
      const task = this.waiting.shift()!;
      this.active++;
      task().catch((error) => this.errors.push(error)).finally(() => {
        this.active--;
        this.pump();
      });
    }
    if (this.active === 0 && this.waiting.length === 0 && this.idle !== null) this.idle.resolve();
  }

  /** Resolves when every task (including those added meanwhile) has finished; rejects with the first error. */
  async drained(): Promise<void> {
    if (this.active > 0 || this.waiting.length > 0) {
      this.idle = Promise.withResolvers<void>();
      await this.idle.promise;
    }
    if (this.errors.length > 0) throw this.errors[0];
  }
}

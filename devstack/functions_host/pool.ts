/** The workers of one function: which one takes a request, when to boot another, and spares kept warm. */

import type { Limits } from "./limits.ts";
import type { Router } from "./router.ts";
import { Worker } from "./worker_process.ts";

const MAX_WORKERS_PER_FUNCTION = 16;

export class Pool {
  bootError = false;
  /** The last boot failed (the function was edited?): boot only for a request, not as a spare. */
  private lastBootFailed = false;
  private readonly workers = new Set<Worker>();
  private waiters: Array<() => void> = [];

  constructor(readonly router: Router, readonly slug: string, readonly limits: Limits) {}

  /** Boots the first worker; a function that cannot boot answers 503 from then on. */
  async start(): Promise<void> {
    try {
      await this.boot().ready;
    } catch {
      this.bootError = true;
    }
  }

  /** An idle worker, now busy: one that has served before, then a fresh one, then a new one. */
  async acquire(): Promise<Worker> {
    for (;;) {
      const idle = [...this.workers].filter((w) => w.state === "idle" && !w.retiring);
      const worker = idle.find((w) => w.invocations > 0) ?? idle[0];
      if (worker) {
        worker.state = "busy";
        return worker;
      }
      const booting = [...this.workers].find((w) => w.state === "booting" && !w.reserved) ??
        (this.live() < MAX_WORKERS_PER_FUNCTION ? this.boot() : undefined);
      if (booting) {
        booting.reserved = true;
        await booting.ready; // a boot failure reaches the caller: 503
        return booting;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Keeps a worker that will take the next request (idle, booting, or busy and staying), so a retired
   * or killed one is replaced in the background rather than when a request comes. */
  ensureSpare(): void {
    if (this.bootError || this.lastBootFailed || this.router.stopping) return;
    const spare = [...this.workers].some((w) =>
      !w.retiring && (w.state === "idle" || w.state === "busy" || (w.state === "booting" && !w.reserved))
    );
    if (spare || this.live() >= MAX_WORKERS_PER_FUNCTION) return;
    try {
      this.boot();
    } catch (err) {
      this.lastBootFailed = true;
      console.error(`[${this.slug}] cannot start a worker:`, err);
    }
  }

  booted(ok: boolean): void {
    this.lastBootFailed = !ok;
  }

  /** A worker became free, or went away: requests waiting for one look again. */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  forget(worker: Worker): void {
    this.workers.delete(worker);
    this.wake();
    this.ensureSpare();
  }

  stopAll(): void {
    for (const worker of this.workers) worker.stop();
  }

  private live(): number {
    return [...this.workers].filter((w) => w.state !== "gone").length;
  }

  private boot(): Worker {
    const worker = new Worker(this, this.router.spawn(this.slug));
    this.workers.add(worker);
    return worker;
  }
}

/**
 * The router's side of one worker process: its state, its invocations, and the CPU-time and wall-clock
 * limits it is held to (retired at half, killed at the limit), with the `invocation`, `limit_reached` and
 * `worker_retired` log lines.
 */

import { threadCpuMs } from "./cpu_clock.ts";
import { type End, Invocation } from "./invocation.ts";
import type { Pool } from "./pool.ts";

const MIN_CPU_CHECK_MS = 2;

export class Worker {
  readonly pid: number;
  readonly ready: Promise<void>;
  port = 0;
  state: "booting" | "idle" | "busy" | "gone" = "booting";
  /** Booting for a request that waits for it. */
  reserved = false;
  retiring = false;
  invocations = 0;
  current: Invocation | undefined;
  private readonly readyResolvers = Promise.withResolvers<void>();
  private firstUsedAt: number | undefined;
  private cpuBaseMs = 0;
  private lastCpuMs: number | undefined;
  private timers: ReturnType<typeof setTimeout>[] = [];
  private cpuTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly pool: Pool, private readonly child: Deno.ChildProcess) {
    this.pid = child.pid;
    this.ready = this.readyResolvers.promise;
    // A failed boot reaches whoever waits for the worker; the pool only stops booting spares.
    this.ready.then(() => pool.booted(true), () => pool.booted(false));
    this.readControl(child.stdout);
    child.status.then((status) => this.exited(status.code));
  }

  /** CPU time since the first invocation: what the limits are checked against. */
  cpuUsedMs(now = this.readCpu()): number | undefined {
    return now === undefined ? undefined : now - this.cpuBaseMs;
  }

  begin(startedAt: number): Invocation {
    const cpu = this.readCpu() ?? 0;
    if (this.firstUsedAt === undefined) {
      this.firstUsedAt = performance.now();
      this.cpuBaseMs = cpu;
      const { wallClockMs } = this.pool.limits;
      this.timers.push(setTimeout(() => this.retire("wall_clock_half"), Math.floor(wallClockMs / 2)));
      this.timers.push(setTimeout(() => this.wallClockReached(), wallClockMs));
    }
    this.invocations++;
    const invocation = new Invocation(startedAt, cpu);
    this.current = invocation;
    this.checkCpu(invocation, cpu);
    return invocation;
  }

  /** Takes no new invocation; exits once the current one has ended. */
  retire(reason: string): void {
    if (this.retiring || this.state === "gone") return;
    this.retiring = true;
    const cpu = Math.round(this.cpuUsedMs() ?? 0);
    console.error(
      `worker_retired function=${this.pool.slug} reason=${reason} worker=${this.pid} worker_cpu_ms=${cpu}`,
    );
    if (this.state === "idle") this.stop();
    this.pool.ensureSpare();
  }

  stop(): void {
    this.signal("SIGTERM");
  }

  /** The main thread's CPU time; the last value read once the worker is gone. */
  private readCpu(): number | undefined {
    this.lastCpuMs = threadCpuMs(this.pid) ?? this.lastCpuMs;
    return this.lastCpuMs;
  }

  // A thread cannot use more CPU time than real time passes, so the next look is due when the time left
  // under the limit has passed.
  private checkCpu(invocation: Invocation, now = this.readCpu()): void {
    if (this.current !== invocation || this.state === "gone") return;
    const used = this.cpuUsedMs(now);
    if (used === undefined) return;
    const limit = this.pool.limits.cpuMs;
    if (used >= limit) return this.kill("cpu_limit", "cpu_time", limit, used);
    this.cpuTimer = setTimeout(() => this.checkCpu(invocation), Math.max(limit - used, MIN_CPU_CHECK_MS));
  }

  private wallClockReached(): void {
    if (this.state === "gone") return;
    const limit = this.pool.limits.wallClockMs;
    const age = performance.now() - (this.firstUsedAt ?? 0);
    if (this.current && !this.current.ended) this.kill("wall_clock_limit", "wall_clock", limit, age);
    else this.stop();
  }

  private kill(end: End, limit: string, limitMs: number, usedMs: number): void {
    const invocation = this.current;
    const cpuEnd = this.readCpu();
    console.error(
      `limit_reached function=${this.pool.slug} limit=${limit} limit_ms=${limitMs} ` +
        `used_ms=${Math.round(usedMs)} worker=${this.pid}`,
    );
    this.signal("SIGKILL");
    if (invocation) {
      invocation.killedFor = end;
      invocation.abort.abort();
      this.end(invocation, end, cpuEnd);
    }
  }

  private signal(signal: Deno.Signal): void {
    const wasUsable = this.state === "idle" || this.state === "booting";
    this.state = "gone";
    this.clearTimers();
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
    if (wasUsable) this.pool.wake();
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    clearTimeout(this.cpuTimer);
  }

  /** The invocation is over: the worker takes the next one, or retires; the line is logged once the
   * client's status is known. */
  private async end(invocation: Invocation, end: End, cpuEnd: number | undefined): Promise<void> {
    if (invocation.ended) return;
    invocation.ended = true;
    clearTimeout(this.cpuTimer);
    const wallMs = performance.now() - invocation.startedAt;
    const cpuMs = (cpuEnd ?? invocation.cpuStartMs) - invocation.cpuStartMs;
    const workerCpuMs = this.cpuUsedMs(cpuEnd) ?? 0;
    if (this.current === invocation) this.current = undefined;
    if (this.state !== "gone") {
      if (workerCpuMs >= this.pool.limits.cpuMs / 2) this.retire("cpu_soft_limit");
      if (this.retiring) this.stop();
      else {
        this.state = "idle";
        this.pool.wake();
      }
    }
    const status = await invocation.answered.promise;
    console.error(
      `invocation function=${this.pool.slug} status=${status} cpu_ms=${Math.round(cpuMs)} ` +
        `wall_ms=${Math.round(wallMs)} end=${end} worker=${this.pid} ` +
        `worker_cpu_ms=${Math.round(workerCpuMs)} worker_invocations=${this.invocations}`,
    );
  }

  private onMessage(message: { event?: string; port?: number }): void {
    if (message.event === "ready" && typeof message.port === "number") {
      this.port = message.port;
      if (this.state === "booting") this.state = this.reserved ? "busy" : "idle";
      this.readyResolvers.resolve();
      if (this.state === "idle") this.pool.wake();
    } else if (message.event === "boot_error") {
      this.readyResolvers.reject(new Error("the function failed to boot"));
    } else if (message.event === "idle" && this.current && this.state === "busy") {
      this.end(this.current, "done", this.readCpu());
    }
  }

  private async readControl(stdout: ReadableStream<Uint8Array>): Promise<void> {
    const prefix = `${this.pool.router.token} `;
    let buffered = "";
    for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        // Anything else is a function writing to stdout itself: it belongs with the logs.
        if (line.startsWith(prefix)) this.onMessage(JSON.parse(line.slice(prefix.length)));
        else console.error(line);
      }
    }
  }

  private exited(code: number): void {
    const expected = this.state === "gone";
    this.state = "gone";
    this.clearTimers();
    this.readyResolvers.reject(new Error(`the worker exited with code ${code} before it was ready`));
    const invocation = this.current;
    const stopping = this.pool.router.stopping;
    if (invocation && !invocation.ended) {
      if (!stopping) {
        console.error(`[${this.pool.slug}] worker ${this.pid} exited with code ${code} mid-invocation`);
      }
      invocation.abort.abort();
      this.end(invocation, "crashed", this.lastCpuMs);
    } else if (!expected && !stopping && this.firstUsedAt !== undefined) {
      console.error(`[${this.pool.slug}] worker ${this.pid} exited with code ${code}`);
    }
    this.pool.forget(this);
  }
}

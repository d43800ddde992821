/** One invocation: a request and the background work it hands to `EdgeRuntime.waitUntil`. */

/** How an invocation ended, as its log line says. */
export type End = "done" | "cpu_limit" | "wall_clock_limit" | "crashed";

export class Invocation {
  readonly answered = Promise.withResolvers<number>();
  readonly abort = new AbortController();
  status: number | undefined;
  killedFor: End | undefined;
  ended = false;

  constructor(readonly startedAt: number, readonly cpuStartMs: number) {}

  /** The status the client got; the first one given counts. */
  answer(status: number): void {
    this.status ??= status;
    this.answered.resolve(this.status);
  }
}

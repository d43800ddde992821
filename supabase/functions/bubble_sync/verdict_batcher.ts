// Verdicts written in batches (bubble_sync.report_verdicts): those given within a short moment share one
// round trip to the database (postgres_queue.ts).

/** A verdict as bubble_sync.report_verdicts takes it. */
export type VerdictItem =
  | { lease_token: string; bubble_id: string | null; note?: string }
  | {
    lease_token: string;
    error: string;
    kind: string | null;
    http_status: number | null;
    retry_after_seconds: number | null;
  };

/** How long a verdict waits for others to share its round trip, and the most that share one. */
export const VERDICT_LINGER_MS = 25;
export const VERDICTS_PER_TRIP = 500;

/**
 * Collects verdicts and writes them together: the first waits up to VERDICT_LINGER_MS for others (or until
 * VERDICTS_PER_TRIP have come), then all go in one statement; each caller gets its own row's outcome. A
 * failed write fails each of its verdicts, as a failed single statement would.
 */
export class VerdictBatcher {
  private waiting: {
    item: VerdictItem;
    resolve: (outcome: string | null) => void;
    reject: (error: unknown) => void;
  }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly write: (items: VerdictItem[]) => Promise<(string | null)[]>,
    private readonly lingerMs = VERDICT_LINGER_MS,
    private readonly perTrip = VERDICTS_PER_TRIP,
  ) {}

  add(item: VerdictItem): Promise<string | null> {
    const { promise, resolve, reject } = Promise.withResolvers<string | null>();
    this.waiting.push({ item, resolve, reject });
    if (this.waiting.length >= this.perTrip) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    return promise;
  }

  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting.splice(0);
    if (batch.length === 0) return;
    this.write(batch.map((entry) => entry.item)).then(
      (outcomes) => batch.forEach((entry, i) => entry.resolve(outcomes[i] ?? null)),
      (error) => batch.forEach((entry) => entry.reject(error)),
    );
  }
}

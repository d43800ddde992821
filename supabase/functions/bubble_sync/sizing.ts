// How much a run sends at once when BUBBLE_SYNC_CONCURRENCY is 0 (the default): the requests it keeps in
// flight, and how many runs share a backlog, so that Bubble's rate limit is kept busy at its answer time.

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

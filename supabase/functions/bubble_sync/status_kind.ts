// How a Bubble HTTP status is treated: the rule of bubble_sync.failure_kind (sql/functions/lease.sql), once in
// TypeScript. The database applies it to a failed row; the function needs the same classes to pause sending
// (verdicts.ts, pauseFor), to tell Bubble's gate what Bubble did (gate.ts, answerOf) and to recover a used
// email (verdicts.ts, refusedCreate). tests/test_status_classification.py checks failureKind against the
// database's failure_kind for every status.

/**
 * The rows of failure_kind's rule, for a status Bubble answered a failed request with (null: no answer came,
 * a timeout or a network error):
 *   rate_limited   429
 *   token_refused  401, 403: Bubble refused our API token (the token, not the request, is wrong)
 *   transient      408, 5xx, no answer
 *   refused        any other 4xx: Bubble refused the request itself
 *   unexpected     anything else: a 1xx/2xx/3xx reaching here is a protocol surprise
 */
export type StatusKind = "rate_limited" | "token_refused" | "transient" | "refused" | "unexpected";

/** What bubble_sync.failure_kind makes of a status: the kind of a row that failed with it. */
export type StatusFailureKind = "deferred" | "retryable" | "permanent";

/** The row of failure_kind's rule a status falls in. */
export function statusKind(status: number | null): StatusKind {
  if (status === null) return "transient";
  if (status === 429) return "rate_limited";
  if (status === 401 || status === 403) return "token_refused";
  if (status === 408 || status >= 500) return "transient";
  if (status >= 400) return "refused";
  return "unexpected";
}

/**
 * bubble_sync.failure_kind: a rate limit or a refused token defers the row (no attempt used), a transient
 * failure or a surprise retries it, a refused request fails it for good.
 */
export function failureKind(status: number | null): StatusFailureKind {
  switch (statusKind(status)) {
    case "rate_limited":
    case "token_refused":
      return "deferred";
    case "refused":
      return "permanent";
    case "transient":
    case "unexpected":
      return "retryable";
  }
}

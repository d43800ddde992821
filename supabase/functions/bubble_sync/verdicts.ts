// What becomes of a row, as a run decides it: completed with its Bubble id, or failed with a message and a reason
// the database classifies (queue.ts, FailReason). Bubble's failures are turned into verdicts here, one rule for
// every kind of request (process.ts, row_sync.ts, deletes.ts, references.ts), and so are the verdicts of rows a
// run does not send (a pause, its time budget).

import type { Failure } from "./bubble.ts";
import { breakerOpen } from "./gate.ts";
import type { FailReason } from "./queue.ts";
import { statusKind } from "./status_kind.ts";

/** Bubble's documented code for a duplicate user email; its HTTP status and place in the body are not. */
const USED_EMAIL = "USED_EMAIL";
/** Bubble's answer when it has no such data type (or the Data API does not expose it): not about the fields. */
const NO_SUCH_TYPE = 404;

/** After Bubble refuses the token (401/403), rows wait this long before they are tried again. */
export const CREDENTIALS_PAUSE_SECONDS = 300;

/**
 * Why a run stops sending for a while: Bubble's rate limit (429), Bubble refusing the API token (401/403), or
 * Bubble's circuit breaker open (transient failures in a row, seen by any worker).
 */
export type Pause = "rate_limited" | "token_refused" | "bubble_unavailable";

export type Verdict =
  | {
    kind: "complete";
    /** The thing the row was applied to; null: none (a delete of a record Bubble never had, an ignored one). */
    bubbleId: string | null;
    /** Stored in the row's error_message: a completion that did not do what its operation asks, and why. */
    note?: string;
    /** Bubble deleted the thing (a DELETE row), for the summary. */
    deleted?: true;
  }
  | {
    kind: "fail";
    error: string;
    reason: FailReason;
    retryAfterSeconds: number | null;
    /** The run stops claiming after this row: no turn at Bubble's rate limit was free soon enough. */
    endsRun?: "rate_limited";
  };

/** The pause an HTTP status calls for: Bubble says stop sending, whatever the row. */
export function pauseFor(status: number | null): Pause | null {
  const kind = statusKind(status);
  if (kind === "rate_limited" || kind === "token_refused") return kind;
  return null;
}

/**
 * A failure as Bubble answered it. What happens to the row is the database's rule (bubble_sync.failure_kind:
 * a 429 or a refused token defers the row without using an attempt, instead of dead-lettering the backlog);
 * the message names the cause, and the wait is Bubble's Retry-After or, for a refused token, a fixed pause.
 */
export function failedWith(failure: Failure, context?: string): Verdict {
  const error = context ? `${context}: ${failure.message}` : failure.message;
  if (failure.unsent === "bubble_unavailable") {
    return {
      kind: "fail",
      error: `bubble unavailable: ${error}`,
      reason: { kind: "unavailable" },
      retryAfterSeconds: failure.retryAfterSeconds,
    };
  }
  if (failure.unsent === "no_slot") {
    return {
      kind: "fail",
      error: `rate limited: ${error}`,
      reason: { kind: "deferred" },
      retryAfterSeconds: failure.retryAfterSeconds,
      endsRun: "rate_limited",
    };
  }
  const reason = { httpStatus: failure.status };
  switch (pauseFor(failure.status)) {
    case "token_refused":
      return {
        kind: "fail",
        error:
          `refused token: Bubble refused the API token (fix BUBBLE_API_TOKEN / bubbleApiToken): ${error}`,
        reason,
        retryAfterSeconds: CREDENTIALS_PAUSE_SECONDS,
      };
    case "rate_limited":
      return {
        kind: "fail",
        error: `rate limited: ${error}`,
        reason,
        retryAfterSeconds: failure.retryAfterSeconds,
      };
    default:
      return { kind: "fail", error, reason, retryAfterSeconds: null };
  }
}

/**
 * A create Bubble refused for something in the request (a 4xx that is not about the token, the type, a
 * timeout or the rate limit): it may be the email being taken, however Bubble words that.
 */
export function refusedCreate(failure: Failure): boolean {
  return statusKind(failure.status) === "refused" && failure.status !== NO_SUCH_TYPE;
}

/** Whether a refusal says the email is taken, in Bubble's documented code or in words. */
export function aboutUsedEmail(failure: Failure): boolean {
  if (failure.code === USED_EMAIL || /USED_EMAIL/i.test(failure.message)) return true;
  return /e-?mail/i.test(failure.message) && /\b(already|taken|in use|exists)\b/i.test(failure.message);
}

/** A request sent that got no answer (a timeout, a dropped connection): Bubble may have acted on it. */
export function noAnswer(failure: Failure): boolean {
  return failure.status === null && failure.unsent === undefined;
}

export function permanent(error: string): Verdict {
  return { kind: "fail", error, reason: { kind: "permanent" }, retryAfterSeconds: null };
}

/** A row that waits `seconds` without using an attempt (a pause, or the run's time running out). */
export function deferral(error: string, seconds: number): Verdict {
  return { kind: "fail", error, reason: { kind: "deferred" }, retryAfterSeconds: seconds };
}

/**
 * A row not sent because the run is paused by `pause`: it waits for the pause's end without using an attempt.
 * `unavailableSince`: when Bubble's circuit breaker opened (gate.ts).
 */
export function pausedVerdict(pause: Pause, seconds: number, unavailableSince: string | null): Verdict {
  switch (pause) {
    case "token_refused":
      return deferral(
        `refused token: not sent, Bubble refused the API token earlier in this run; waiting ${seconds} s`,
        seconds,
      );
    case "rate_limited":
      return deferral(
        `rate limited: not sent, Bubble asked to wait ${seconds} s (Retry-After) during this run`,
        seconds,
      );
    case "bubble_unavailable":
      return {
        kind: "fail",
        error: `bubble unavailable: not sent, ${breakerOpen(unavailableSince, seconds)}`,
        reason: { kind: "unavailable" },
        retryAfterSeconds: seconds,
      };
  }
}

/**
 * A create whose outcome is unknown (no answer, or no line for the row in a bulk answer): Bubble may still
 * store it, so the row is looked up again only once that can no longer happen (bubbleSettleSeconds).
 */
export function unsettled(verdict: Verdict, settleSeconds: number): Verdict {
  if (verdict.kind !== "fail") return verdict;
  return {
    ...verdict,
    error: `${verdict.error} (the create may still be stored: looked up again after ${settleSeconds} s)`,
    retryAfterSeconds: settleSeconds,
  };
}

// Bubble's gate as one worker sees it: turns to send, reserved a few at a time from the pacing and circuit
// breaker every worker shares in the database (sql/functions/gate.sql), and what Bubble did with each request,
// reported back when it can change the breaker.

import { statusKind } from "./status_kind.ts";

/** What Bubble did with a request, for the breaker (bubble_sync.note_bubble_answer). */
export type Answer = "answered" | "rate_limited" | "unavailable";

/** The breaker as the database last told this worker. */
export interface GateView {
  breaker: "closed" | "open";
  /** The first of the failures that opened the breaker; null while it is closed. */
  unavailableSince: string | null;
  failuresInARow: number;
}

/** Turns reserved by bubble_sync.take_requests: `granted` of them, the first in `firstInMs`, then spaced. */
export interface Grant {
  granted: number;
  firstInMs: number;
  spacingMs: number;
  /** probe: the breaker is open and this is the one request allowed through (granted 1). */
  breaker: "closed" | "open" | "probe";
  unavailableSince: string | null;
  failuresInARow: number;
}

/** The database's side (PostgresQueue implements it). */
export interface GateStore {
  takeRequests(wanted: number, perMinute: number, maxWaitMs: number | null): Promise<Grant>;
  noteAnswer(answer: Answer, error: string | null, retryAfterSeconds: number | null): Promise<GateView>;
}

export type Turn =
  | { ok: true }
  | {
    ok: false;
    /** bubble_unavailable: the breaker is open; no_slot: no turn within MAX_WAIT_FOR_TURN_MS or the deadline. */
    reason: "bubble_unavailable" | "no_slot";
    retryInSeconds: number;
    unavailableSince: string | null;
  };

/** A 429 without Retry-After holds every worker back for this long. */
export const DEFAULT_RATE_LIMIT_PAUSE_SECONDS = 30;
/**
 * A worker reserves turns only for requests it has to send (those waiting, and the rows queued behind them: a
 * turn reserved and not used is a slot of the rate limit nobody gets), and no further ahead than this: a turn
 * far ahead would go out even if the breaker opened meanwhile. At least MIN_TURNS_PER_RESERVATION.
 */
export const RESERVATION_HORIZON_MS = 1000;
const MIN_TURNS_PER_RESERVATION = 10;
/**
 * A request waits at most this long for its turn. A later turn (after a 429's Retry-After, or with other runs
 * booking the limit) is left to whoever runs then: the row goes back to pending until it comes.
 */
export const MAX_WAIT_FOR_TURN_MS = 10_000;

/** Why a request was not sent while the breaker is open: the stored message says so (after "not sent, "). */
export function breakerOpen(since: string | null, nextProbeSeconds: number): string {
  return `the circuit breaker is open (Bubble failing since ${since ?? "recently"}); next probe in ` +
    `${nextProbeSeconds} s`;
}

/**
 * The kind of answer an HTTP status is (null: none came, a timeout or a network error): a transient failure
 * says Bubble is unavailable; any other status, a refusal included, is Bubble answering.
 */
export function answerOf(status: number | null): Answer {
  switch (statusKind(status)) {
    case "rate_limited":
      return "rate_limited";
    case "transient":
      return "unavailable";
    default:
      return "answered";
  }
}

export class SharedGate {
  /** Local times (ms) of the turns reserved and not yet used, earliest first. */
  private turns: number[] = [];
  private reserving: Promise<Grant> | null = null;
  /** Requests waiting for a turn and not holding one yet (the next reservation asks for that many). */
  private waiting = 0;
  private view: GateView = { breaker: "closed", unavailableSince: null, failuresInARow: 0 };
  /** How often an answer this worker reported closed a breaker it had seen open. */
  closings = 0;
  /** Requests this worker will send after those waiting now (the run's queued rows); 0 when unknown. */
  backlog: () => number = () => 0;

  constructor(
    private readonly store: GateStore,
    private readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  /** Since when Bubble has been unavailable, as far as this worker has seen; null when it answers. */
  get unavailableSince(): string | null {
    return this.view.breaker === "open" ? this.view.unavailableSince : null;
  }

  /** Waits for this request's turn, or says why it may not be sent; `deadline`: the latest start (local ms). */
  async turn(deadline: number): Promise<Turn> {
    const sendBy = Math.min(deadline, this.now() + MAX_WAIT_FOR_TURN_MS);
    this.waiting++;
    let holding = false;
    try {
      while (true) {
        const at = this.turns.shift();
        if (at === undefined) {
          const grant = await this.reserve(sendBy);
          if (grant.granted === 0) {
            const reason = grant.breaker === "open" ? "bubble_unavailable" : "no_slot";
            return this.refused(reason, grant.firstInMs, grant.unavailableSince);
          }
          continue;
        }
        [holding, this.waiting] = [true, this.waiting - 1];
        if (at > sendBy) {
          this.turns = []; // later turns are later still
          return this.refused("no_slot", at - this.now(), null);
        }
        const wait = at - this.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        return { ok: true };
      }
    } finally {
      if (!holding) this.waiting--;
    }
  }

  /**
   * Reports what Bubble did. A good answer costs a round trip only when this worker last saw failures: a
   * healthy Bubble writes nothing to the gate. A failure, or a 429, is always reported.
   */
  async report(status: number | null, error: string | null, retryAfterSeconds: number | null): Promise<void> {
    const answer = answerOf(status);
    if (answer === "answered" && this.view.breaker === "closed" && this.view.failuresInARow === 0) return;
    const wasOpen = this.view.breaker === "open";
    const pause = answer === "rate_limited" ? retryAfterSeconds ?? DEFAULT_RATE_LIMIT_PAUSE_SECONDS : null;
    this.view = await this.store.noteAnswer(answer, answer === "unavailable" ? error : null, pause);
    // Turns reserved before a 429 or the breaker opening would now go out too early.
    if (this.view.breaker === "open" || answer === "rate_limited") this.turns = [];
    if (wasOpen && this.view.breaker === "closed") this.closings++;
  }

  private refused(reason: "bubble_unavailable" | "no_slot", inMs: number, since: string | null): Turn {
    return {
      ok: false,
      reason,
      retryInSeconds: Math.max(1, Math.ceil(inMs / 1000)),
      unavailableSince: since,
    };
  }

  /** One reservation at a time per worker: concurrent requests wait for it and share its turns. */
  private reserve(sendBy: number): Promise<Grant> {
    if (this.reserving === null) {
      const horizon = Math.floor(this.perMinute / 60_000 * RESERVATION_HORIZON_MS);
      const most = Math.max(MIN_TURNS_PER_RESERVATION, horizon);
      const wanted = Math.min(most, Math.max(1, this.waiting + this.backlog()));
      const maxWaitMs = Math.max(0, Math.floor(sendBy - this.now()));
      this.reserving = this.store.takeRequests(wanted, this.perMinute, maxWaitMs).then((grant) => {
        const first = this.now() + grant.firstInMs;
        for (let i = 0; i < grant.granted; i++) this.turns.push(first + i * grant.spacingMs);
        this.view = {
          breaker: grant.breaker === "closed" ? "closed" : "open",
          unavailableSince: grant.unavailableSince,
          failuresInARow: grant.failuresInARow,
        };
        return grant;
      }).finally(() => {
        this.reserving = null;
      });
    }
    return this.reserving;
  }
}

"""Bubble's gate as reconcile takes its turns: the pacing and circuit breaker every worker shares in the
database (sql/functions/gate.sql, bubble_sync.take_requests and note_bubble_answer), the same the Edge
Function goes through (supabase/functions/bubble_sync/gate.ts).

Each request reconcile sends is one slot of the app's rate limit (take_requests at the full
bubbleRateLimitPerMinute, so its slots are spaced like everyone's), and reconcile asks for slots no faster
than its share (reconcileRatePercent of that limit): over any minute it holds at most that share of the
slots, and the live sync gets the rest whenever it wants them. A 429's Retry-After and an open breaker hold
reconcile back as they hold the function: the gate says so in its answer.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg

from components.operator.queries import one_row
from components.operator.reconcile.base import BubbleUnavailable
from components.operator.reconcile.queries import reconcile_query

__all__ = ["DEFAULT_RATE_LIMIT_PAUSE_SECONDS", "GIVE_UP_SECONDS", "Answer", "SharedGate", "answer_of"]

Answer = Literal["answered", "rate_limited", "unavailable"]
#: a 429 without Retry-After holds every worker back this long (as gate.ts)
DEFAULT_RATE_LIMIT_PAUSE_SECONDS = 30
#: how long a turn may be asked for at most: later turns are asked for again (others may give theirs back)
MAX_WAIT_MS = 10_000
#: reconcile waits this long for Bubble's breaker to close before it gives up (exit 2)
GIVE_UP_SECONDS = 600.0


def answer_of(status: int | None) -> Answer:
    """The kind of answer an HTTP status is (None: none came: a timeout or a network error), as gate.ts."""
    if status == 429:
        return "rate_limited"
    if status is None or status == 408 or status >= 500:
        return "unavailable"
    return "answered"


@dataclass
class _View:
    """The breaker as the database last told reconcile."""

    breaker: str = "closed"
    unavailable_since: datetime | None = None
    failures_in_a_row: int = 0


class SharedGate:
    """Turns for reconcile's requests. `turn()` waits for the next one; `report()` says what Bubble did."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        rate_limit_per_minute: int,
        share_percent: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] = lambda _message: None,
        give_up_seconds: float = GIVE_UP_SECONDS,
    ) -> None:
        self.conn = conn
        self.limit = rate_limit_per_minute
        share = rate_limit_per_minute * share_percent / 100
        #: seconds between reconcile's own turns (0: unpaced, as the stack)
        self.interval = 60.0 / share if share > 0 else 0.0
        #: turns asked for at once: about a second's worth of reconcile's share, so a database far away costs
        #: a round trip per second, not per request
        self.batch = max(1, math.floor(share / 60)) if share > 0 else 10
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self.give_up_seconds = give_up_seconds
        self.turns_taken = 0
        self._slots: deque[float] = deque()
        self._not_before = float("-inf")
        self._view = _View()
        self._open_since: float | None = None

    def turn(self, wanted: int = 1) -> None:
        """Waits for a turn. `wanted`: the requests reconcile has to send now (a turn reserved and not used is
        a slot of the rate limit nobody gets). Raises BubbleUnavailable when the breaker stays open longer
        than reconcile waits."""
        if not self._slots:
            self._reserve(max(1, min(wanted, self.batch)))
        elif len(self._slots) < wanted and self.clock() >= self._not_before:
            # Turns are asked for at the share's pace, ahead of need: a busy gate grants them behind the
            # sync's (up to a second ahead), and waiting for those before asking again would hold reconcile
            # below its share.
            self._reserve(max(1, min(wanted - len(self._slots), self.batch)), ahead=True)
        at = self._slots.popleft()
        self._wait_until(at)
        self.turns_taken += 1

    def report(self, status: int | None, error: str | None, retry_after_seconds: int | None) -> None:
        """What Bubble did with a request. A good answer costs a round trip only when the last view showed
        failures: a healthy Bubble writes nothing to the gate (as gate.ts)."""
        answer = answer_of(status)
        if answer == "answered" and self._view.breaker == "closed" and self._view.failures_in_a_row == 0:
            return
        pause = None
        if answer == "rate_limited":
            pause = DEFAULT_RATE_LIMIT_PAUSE_SECONDS if retry_after_seconds is None else retry_after_seconds
        row = one_row(
            self.conn.cursor().execute(
                reconcile_query("note_answer"),
                {
                    "answer": answer,
                    "error": (error or "")[:500] if answer == "unavailable" else None,
                    "retry_after_seconds": pause,
                },
            )
        )
        self._view = _View(row["breaker"], row["unavailable_since"], row["failures_in_a_row"])
        if self._view.breaker == "open" or answer == "rate_limited":
            self._slots.clear()  # turns reserved before would now go out too early

    def _reserve(self, wanted: int, *, ahead: bool = False) -> None:
        """Reserves up to `wanted` turns. `ahead`: turns are in hand already; ask once, wait for nothing."""
        self._wait_until(self._not_before)  # reconcile's own share, before the gate is even asked
        while True:
            row = one_row(
                self.conn.cursor().execute(
                    reconcile_query("take_requests"),
                    {"wanted": wanted, "per_minute": self.limit, "max_wait_ms": MAX_WAIT_MS},
                )
            )
            now = self.clock()
            self._view = _View(
                "open" if row["breaker"] in ("open", "probe") else "closed",  # a probe's answer is reported
                row["unavailable_since"],
                row["failures_in_a_row"],
            )
            if ahead and (row["breaker"] == "open" or row["granted"] == 0):
                return
            if row["breaker"] == "open":
                self._wait_for_probe(now, row["first_in_ms"], row["unavailable_since"])
                continue
            self._open_since = None
            if row["granted"] == 0:  # the next free turn is further than MAX_WAIT_MS: others booked ahead
                self.sleep(min(row["first_in_ms"], MAX_WAIT_MS) / 1000)
                continue
            start = now + row["first_in_ms"] / 1000
            self._slots.extend(start + i * row["spacing_ms"] / 1000 for i in range(row["granted"]))
            # The next batch is asked for a share's worth after this one was: not after its turns came, or a
            # busy sync booking turns ahead would hold reconcile below its share (and the share is of turns
            # taken, so it holds however far ahead they lie).
            self._not_before = now + row["granted"] * self.interval
            return

    def _wait_for_probe(self, now: float, first_in_ms: int, since: datetime | None) -> None:
        if self._open_since is None:
            self._open_since = now
            when = f" since {since:%H:%M:%S %Z}" if since is not None else ""
            self.on_wait(
                f"Bubble is failing{when}: its circuit breaker is open, so nothing is sent but a probe; "
                f"waiting (at most {self.give_up_seconds / 60:.0f} minutes)"
            )
        if now - self._open_since >= self.give_up_seconds:
            raise BubbleUnavailable(
                f"Bubble's circuit breaker stayed open for {self.give_up_seconds / 60:.0f} minutes "
                f"(Bubble failing{'' if since is None else f' since {since:%Y-%m-%d %H:%M:%S %Z}'}): run "
                "reconcile again once `status` shows Bubble available"
            )
        self.sleep(min(max(first_in_ms, 100), 30_000) / 1000)

    def _wait_until(self, at: float) -> None:
        wait = at - self.clock()
        if wait > 0:
            self.sleep(wait)

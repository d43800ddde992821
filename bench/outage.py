"""A Bubble outage on a timer: the double answers 503 to every /obj request for a while, mid-run."""

from __future__ import annotations

import sys
import threading
import time

from bench.observation import OutageWindow
from devstack.bubble_double import BubbleDouble

OUTAGE_STATUS = 503


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class ScheduledOutage:
    """Takes the Bubble double down at `begin_at` and back up `seconds` later, on a thread of its own, so the
    workload's loops keep their pace; records when each switch really happened.

    Leaving the context ends an outage still under way (Bubble is never left down) and cancels one not yet
    begun."""

    def __init__(self, double: BubbleDouble, begin_at: float, seconds: float) -> None:
        self._double = double
        self.begin_at = begin_at
        self.seconds = seconds
        self.began_at: float | None = None
        self.ended_at: float | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-outage", daemon=True)

    @property
    def planned_end(self) -> float:
        return self.begin_at + self.seconds

    def __enter__(self) -> ScheduledOutage:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._cancel.set()
        self._thread.join()

    def _run(self) -> None:
        if self._cancel.wait(max(0.0, self.begin_at - time.time())):
            return
        self._double.configure(outage_status=OUTAGE_STATUS)
        self.began_at = time.time()
        _log(f"Bubble down (every request answers {OUTAGE_STATUS}) for {self.seconds:g} s")
        self._cancel.wait(max(0.0, self.planned_end - time.time()))
        self._double.configure(outage_status=None)
        self.ended_at = time.time()
        _log("Bubble back up")

    def window(self) -> OutageWindow | None:
        """The outage as it happened; None if it never began (the run ended first)."""
        if self.began_at is None or self.ended_at is None:
            return None
        return OutageWindow(planned_seconds=self.seconds, began_at=self.began_at, ended_at=self.ended_at)

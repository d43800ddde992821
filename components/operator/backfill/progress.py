"""Showing a run: `Progress` (rows queued, synced and failed, the rate and an ETA: one updating line on a
terminal, a line every --progress-interval seconds otherwise) and `follow`, which polls the backfilled rows
until none is outstanding, saying where to look when nothing syncs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import psycopg

from components.operator.backfill.chunks import Counts, read_progress, update_counts
from components.operator.backfill.plan import Plan
from components.operator.progress_line import ProgressLine, eta

__all__ = ["STALL_SECONDS", "Progress", "follow"]

#: nothing synced for this long while rows wait: say where to look
STALL_SECONDS = 120.0


def follow(
    conn: psycopg.Connection[Any],
    plan: Plan | Sequence[Plan],
    counts: Counts,
    baseline: Mapping[str, int],
    progress: Progress,
    *,
    poll_seconds: float = 1.0,
    stall_seconds: float = STALL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    status_hint: str = "python -m components status",
) -> Counts:
    """Polls the table's backfilled rows until none is outstanding (pending, processing or retrying)."""
    last_change, last_synced, warned = clock(), -1, False
    while True:
        update_counts(counts, read_progress(conn, plan), baseline)
        progress.show("syncing", counts, force=counts.outstanding == 0)  # the last line, always
        if counts.outstanding == 0:
            return counts
        if counts.synced + counts.failed != last_synced:
            last_change, last_synced, warned = clock(), counts.synced + counts.failed, False
        elif not warned and clock() - last_change >= stall_seconds:
            warned = True
            progress.note(
                f"nothing synced for {eta(clock() - last_change)} while {counts.outstanding:,} rows wait: "
                f"is the processor running? `{status_hint}` says why"
            )
        sleep(poll_seconds)


class Progress:
    """The progress of a run: on a terminal, one line rewritten in place at most every `redraw` seconds; to
    anything else (a CI log, a file), a line every `interval` seconds. A phase's last line is always shown."""

    def __init__(
        self,
        out: TextIO,
        *,
        to_scan: int,
        to_queue: int,
        tty: bool,
        interval: float = 10.0,
        redraw: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.to_scan = to_scan
        self.to_queue = to_queue
        self.clock = clock
        self.started = clock()
        self._line = ProgressLine(out, tty=tty, interval=interval, redraw=redraw, clock=clock)
        self._last_phase: str | None = None

    def line(self, phase: str, counts: Counts) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        failed = f"{counts.failed:,} failed" + (f" ({counts.retrying:,} retrying)" if counts.retrying else "")
        if phase == "queueing":
            rate = counts.queued / elapsed
            scan_rate = counts.scanned / elapsed
            left = max(self.to_scan - counts.scanned, 0)
            when = eta(left / scan_rate) if scan_rate > 0 else "-"
            return (
                f"queueing: {counts.queued:,}/{max(self.to_queue, counts.queued):,} queued, "
                f"{counts.synced:,} synced, {failed}; {rate:,.0f} rows/s queued, ETA {when}"
            )
        total = counts.synced + counts.failed + counts.outstanding
        rate = counts.synced / elapsed
        when = eta(counts.outstanding / rate) if rate > 0 else "-"
        if counts.outstanding == 0:
            when = "0s"
        return (
            f"syncing: {counts.queued:,} queued, {counts.synced:,}/{total:,} synced, {failed}; "
            f"{rate:,.0f} rows/s synced, ETA {when}"
        )

    def show(self, phase: str, counts: Counts, *, force: bool = False) -> None:
        """The phase's line, at most every interval; at once when the phase changes or `force` says so."""
        self._line.show(self.line(phase, counts), force=force or phase != self._last_phase)
        self._last_phase = phase

    def note(self, text: str) -> None:
        """A message on a line of its own (the updating line, if any, is ended first)."""
        self._line.note(text)

    def close(self) -> None:
        self._line.close()

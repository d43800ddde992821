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
                f"nothing synced for {_eta(clock() - last_change)} while {counts.outstanding:,} rows wait: "
                f"is the processor running? `{status_hint}` says why"
            )
        sleep(poll_seconds)


def _eta(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 1:
        return "<1s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


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
        self.out = out
        self.to_scan = to_scan
        self.to_queue = to_queue
        self.tty = tty
        self.interval = redraw if tty else interval
        self.clock = clock
        self.started = clock()
        self.syncing_since: float | None = None
        self._last_shown = float("-inf")
        self._last_phase: str | None = None
        self._open_line = False

    def line(self, phase: str, counts: Counts) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        failed = f"{counts.failed:,} failed" + (f" ({counts.retrying:,} retrying)" if counts.retrying else "")
        if phase == "queueing":
            rate = counts.queued / elapsed
            scan_rate = counts.scanned / elapsed
            left = max(self.to_scan - counts.scanned, 0)
            eta = _eta(left / scan_rate) if scan_rate > 0 else "-"
            return (
                f"queueing: {counts.queued:,}/{max(self.to_queue, counts.queued):,} queued, "
                f"{counts.synced:,} synced, {failed}; {rate:,.0f} rows/s queued, ETA {eta}"
            )
        total = counts.synced + counts.failed + counts.outstanding
        rate = counts.synced / elapsed
        eta = _eta(counts.outstanding / rate) if rate > 0 else "-"
        if counts.outstanding == 0:
            eta = "0s"
        return (
            f"syncing: {counts.queued:,} queued, {counts.synced:,}/{total:,} synced, {failed}; "
            f"{rate:,.0f} rows/s synced, ETA {eta}"
        )

    def show(self, phase: str, counts: Counts, *, force: bool = False) -> None:
        now = self.clock()
        if not force and phase == self._last_phase and now - self._last_shown < self.interval:
            return
        self._last_shown, self._last_phase = now, phase
        text = self.line(phase, counts)
        if self.tty:
            self.out.write(f"\r\x1b[2K{text}")
            self._open_line = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A message on a line of its own (the updating line, if any, is ended first)."""
        self.close()
        self.out.write(text + "\n")
        self.out.flush()

    def close(self) -> None:
        if self._open_line:
            self.out.write("\n")
            self.out.flush()
            self._open_line = False

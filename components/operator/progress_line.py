"""A command's progress on stderr, for backfill and reconcile: `ProgressLine` rewrites one line in place on a
terminal (at most every 0.2 s) and writes a line every `interval` seconds to anything else (a CI log, a file);
`force` shows a phase's last line whatever the interval. `eta`, `rate_and_eta` and `counted` write durations,
rates and counts the way the lines do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressLine", "counted", "eta", "rate_and_eta"]


def counted(n: int, noun: str) -> str:
    """`1 record`, `2 records`, `1,000 records` (nouns whose plural adds an s)."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def eta(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 1:
        return "<1s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def rate_and_eta(done: int, total: int | None, seconds: float, unit: str) -> str:
    """`1,234 <unit>/s, ETA 2m05s` (ETA `-` until there is a rate, or without a total)."""
    rate = done / seconds if seconds > 0 else 0.0
    left = None if total is None else max(total - done, 0)
    when = "-" if left is None or rate <= 0 else ("0s" if left == 0 else eta(left / rate))
    return f"{rate:,.0f} {unit}/s, ETA {when}"


class ProgressLine:
    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool,
        interval: float = 10.0,
        redraw: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.tty = tty
        self.interval = redraw if tty else interval
        self.clock = clock
        self._last_shown = float("-inf")
        self._open_line = False

    def show(self, text: str, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_shown < self.interval:
            return
        self._last_shown = now
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

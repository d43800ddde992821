"""What a Ctrl-C leaves behind, said truthfully. The interrupt can land anywhere, also while a chunk's COMMIT
is on its way: the server may have committed a chunk the run had not counted yet, and the session may be
left in the middle of a command (so that anything else sent on it fails). `rows_queued` closes that session
(an uncommitted chunk is then rolled back by the server), waits for its backend to end, and counts the
backfilled rows of the run's tables from a fresh session: what the run really queued."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg

from components.operator.backfill.chunks import read_progress
from components.operator.backfill.plan import Plan
from components.operator.connection import OperatorError, connect
from components.operator.queries import one_row

__all__ = ["close_quietly", "rows_queued"]

#: how long to wait for the interrupted session's backend to end before counting
SETTLE_SECONDS = 5.0


def close_quietly(conn: psycopg.Connection[Any]) -> None:
    """Closes a session an interrupt may have left mid-command (its `with` block then sends nothing more)."""
    try:
        conn.close()
    except (psycopg.Error, OSError):  # pragma: no cover - closing a broken socket
        pass


def rows_queued(
    url: str,
    conn: psycopg.Connection[Any],
    plans: Sequence[Plan],
    baseline: Mapping[str, int],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int | None:
    """The rows queued since `baseline` (read_progress at the start), counted once the interrupted session
    is gone; None when they cannot be counted (the caller then says what it counted itself)."""
    pid = conn.info.backend_pid
    close_quietly(conn)
    try:
        with connect(url) as fresh:
            fresh.autocommit = True
            waited = 0.0
            while (
                waited < SETTLE_SECONDS
                and one_row(
                    fresh.execute(
                        "select exists (select 1 from pg_catalog.pg_stat_activity where pid = %s) as busy",
                        (pid,),
                    )
                )["busy"]
            ):
                sleep(0.05)
                waited += 0.05
            now = read_progress(fresh, plans)
    except (OperatorError, psycopg.Error, KeyboardInterrupt):
        return None
    return _total(now) - _total(baseline)


def _total(progress: Mapping[str, int]) -> int:
    """Every backfilled row of the tables: synced, failed for good, or outstanding (retrying included)."""
    return progress["synced"] + progress["failed"] + progress["outstanding"]

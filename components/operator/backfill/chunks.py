"""Queueing a checked plan (plan.py): `queue_chunks` pages through the table by its key (keyset pagination),
one transaction per chunk (bubble_sync.enqueue_backfill in sql/functions/backfill.sql; the queries are in
sql/operator_backfill.sql), so an interrupted run loses at most the chunk in flight, which
rolls back, and a re-run skips every record the queue already has, whatever its state. `Counts` is what a run
has done so far; `read_progress` and `update_counts` read the table's backfilled rows as the queue has them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from components.operator.backfill.base import run_query
from components.operator.backfill.plan import Plan
from components.operator.queries import backfill_query, one_row

__all__ = ["CHUNK_ATTEMPTS", "Counts", "queue_chunks", "read_progress", "update_counts"]

#: a chunk that met a lock held too long (chunk_settings: lock_timeout) or a deadlock: tried again this often
CHUNK_ATTEMPTS = 20


@dataclass
class Counts:
    """What a run has done so far. synced/failed/retrying/outstanding are the table's backfilled rows as the
    queue has them now, synced and failed counted from when the run started."""

    chunks: int = 0
    scanned: int = 0
    queued: int = 0
    skipped: int = 0
    synced: int = 0
    failed: int = 0
    retrying: int = 0
    outstanding: int = 0


def queue_chunks(
    conn: psycopg.Connection[Any],
    plan: Plan,
    counts: Counts,
    *,
    on_chunk: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Counts:
    """Queues the plan's rows chunk by chunk, in key order, each chunk in its own transaction; `counts`
    grows as each commits (so it is right when an exception, Ctrl-C included, ends the loop)."""
    after: str | None = None
    params = {
        "source_oid": plan.source_oid,
        "key_column": plan.key,
        "fields": list(plan.fields),
        "chunk_size": plan.chunk_size,
    }
    query = plan.compose("queue_chunk")
    while True:
        row = _one_chunk(conn, query, {**params, "after": after}, sleep)
        if row["scanned"] == 0:
            return counts
        counts.chunks += 1
        counts.scanned += row["scanned"]
        counts.queued += row["queued"]
        counts.skipped += row["skipped"]
        after = row["last_key"]
        on_chunk()
        if row["scanned"] < plan.chunk_size:
            return counts


def _one_chunk(
    conn: psycopg.Connection[Any], query: sql.Composed, params: dict[str, Any], sleep: Callable[[float], None]
) -> Mapping[str, Any]:
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute(backfill_query("chunk_settings"))
                return one_row(run_query(conn, query, params))
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            # Another transaction holds a record of this chunk, or the dispatch row, for long: give way.
            if attempt == CHUNK_ATTEMPTS:
                raise
            sleep(min(0.1 * 2 ** (attempt - 1), 2.0))
    raise AssertionError("unreachable")  # pragma: no cover


# -- following -----------------------------------------------------------------------------------------------


def read_progress(conn: psycopg.Connection[Any], plans: Plan | Sequence[Plan]) -> Mapping[str, int]:
    """The backfilled rows of the plans' tables as the queue has them now, by state."""
    every = [plans] if isinstance(plans, Plan) else list(plans)
    names = sorted({p.queue_table_name for p in every})
    return one_row(run_query(conn, backfill_query("progress"), {"queue_table_names": names}))


def update_counts(counts: Counts, now: Mapping[str, int], baseline: Mapping[str, int]) -> None:
    counts.synced = max(0, now["synced"] - baseline["synced"])
    counts.failed = max(0, now["failed"] - baseline["failed"])
    counts.retrying = now["retrying"]
    counts.outstanding = now["outstanding"]

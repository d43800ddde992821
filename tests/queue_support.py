"""The queue's SQL API as the tests call it (tests/test_queue.py, tests/test_gate.py): an injected clock
(`T0`, `at`) and one helper per function, each passing `p_now` so that no test sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg.rows
import psycopg.types.json
from psycopg.rows import dict_row

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
PROCESS = "process_queue_data_api"
RETRY = "retry_failed"

# Bubble's gate and the runs going as a fresh install has them: no turn booked, breaker closed, no run
# registered. A test that leaves a 429's hold, an open breaker or a run killed mid-way behind would otherwise
# slow or stop the next test's runs.
EMPTY_GATE = (
    "update bubble_sync.bubble_gate set next_request_at = null, failures_in_a_row = 0, failing_since = null,"
    " opened_at = null, last_probe_at = null, last_error = null;"
    " delete from bubble_sync.worker_runs"
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def enqueue(
    conn: psycopg.Connection[Any],
    record_id: str,
    *,
    operation: str = "INSERT",
    payload: dict[str, Any] | None = None,
    table: str = "profiles",
    now: datetime = T0,
    max_retries: int | None = None,
) -> dict[str, Any]:
    row = conn.execute(
        "select * from bubble_sync.enqueue(%s, %s, %s, %s::jsonb, %s, %s)",
        (
            table,
            record_id,
            operation,
            psycopg.types.json.Jsonb(payload or {"id": record_id}),
            max_retries,
            now,
        ),
    ).fetchone()
    assert row is not None
    return dict(row)


def claim(
    conn: psycopg.Connection[Any],
    action: str = PROCESS,
    *,
    limit: int = 10,
    lease: int = 60,
    now: datetime = T0,
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "select * from bubble_sync.claim(%s, %s, %s, %s)", (action, limit, lease, now)
    ).fetchall()


def complete(
    conn: psycopg.Connection[Any], token: Any, *, bubble_id: str | None = None, now: datetime = T0
) -> bool:
    return scalar(conn, "select bubble_sync.complete(%s, %s, %s)", (token, bubble_id, now))


def fail(
    conn: psycopg.Connection[Any],
    token: Any,
    error: str = "HTTP 503",
    *,
    kind: str = "retryable",
    retry_after: int | None = None,
    jitter: float = 0.5,
    now: datetime = T0,
) -> str | None:
    """What became of the row ('deferred', 'retrying', 'failed_for_good'), None if the lease was not held."""
    return scalar(
        conn,
        "select bubble_sync.fail(%s, %s, %s, %s, %s, %s)",
        (token, error, kind, retry_after, jitter, now),
    )


def row_of(conn: psycopg.Connection[Any], record_id: str) -> dict[str, Any]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute("select * from public.sync_queue where record_id = %s order by created_at, id", (record_id,))
        .fetchall()
    )
    assert len(rows) == 1, rows
    return rows[0]


def scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.cursor(row_factory=psycopg.rows.tuple_row).execute(sql, params).fetchone()
    assert row is not None
    return row[0]

"""`python -m components requeue`: `requeue` calls `bubble_sync.requeue` (sql/functions/maintenance.sql) in
one transaction, rolled back for a dry run; `render_requeue` prints what it did; `run_requeue` connects, runs
it and says which exit code."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import psycopg
from psycopg.rows import dict_row

from components.operator.connection import EXIT_CANNOT_CONNECT, OperatorError, connect
from components.operator.formatting import one_line, print_table
from components.url_secrets import masked

__all__ = ["REQUEUE_PREFIX", "RequeueResult", "render_requeue", "requeue", "run_requeue"]

#: what bubble_sync.requeue puts in front of a requeued row's last error (sql/functions/maintenance.sql)
REQUEUE_PREFIX = "requeued by operator; last error: "

# Not in sql/operator_status.sql (the read-only queries of status): it changes rows, and only calls the
# function that sql/functions/maintenance.sql defines.
_REQUEUE_SQL = """
select id, table_name, record_id, old_retry_count, old_error
  from bubble_sync.requeue(p_ids => %(ids)s, p_error_like => %(pattern)s)
"""


@dataclass
class RequeueResult:
    rows: list[dict[str, Any]]
    dry_run: bool
    not_requeued_ids: list[str]


def requeue(
    conn: psycopg.Connection[Any],
    *,
    all_permanently_failed: bool = False,
    ids: Sequence[str] = (),
    error_like: str | None = None,
    dry_run: bool = False,
) -> RequeueResult:
    """Requeues the selected permanently failed rows in one transaction (rolled back when dry_run)."""
    chosen = [all_permanently_failed, bool(ids), error_like is not None]
    if sum(chosen) != 1:
        raise ValueError("choose exactly one of all_permanently_failed, ids, error_like")
    pattern = error_like
    if pattern is not None and "%" not in pattern:
        pattern = f"%{pattern}%"  # no % in it: a substring match (`_` still matches any character)
    params = {"ids": [str(i) for i in ids] if ids else None, "pattern": pattern}
    conn.autocommit = False
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_REQUEUE_SQL, params)
            rows = cur.fetchall()
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    except BaseException:
        conn.rollback()
        raise
    done = {row["id"] for row in rows}
    missing = [str(i) for i in ids if str(i) not in done]
    return RequeueResult(rows=rows, dry_run=dry_run, not_requeued_ids=missing)


def render_requeue(result: RequeueResult, out: TextIO, *, limit: int = 50) -> None:
    n = len(result.rows)
    if result.dry_run:
        print(f"dry run: would requeue {n} permanently failed row(s); nothing was changed", file=out)
    else:
        print(
            f"requeued {n} permanently failed row(s): status failed, retry_count 0, next_retry_at now; "
            f"the next bubble-sync-retry run picks them up",
            file=out,
        )
    if result.rows:
        rows = [("id", "record", "retries used", "last error")]
        for row in result.rows[:limit]:
            rows.append(
                (
                    str(row["id"]),
                    f"{row['table_name']}:{row['record_id']}",
                    str(row["old_retry_count"]),
                    one_line(row["old_error"], 80),
                )
            )
        print_table(rows, out)
        if n > limit:
            print(f"  ... and {n - limit} more", file=out)
    if result.not_requeued_ids:
        print(
            "not requeued (no such id, or not permanently failed): " + ", ".join(result.not_requeued_ids),
            file=out,
        )


def run_requeue(
    url: str,
    *,
    all_permanently_failed: bool,
    ids: Sequence[str],
    error_like: str | None,
    dry_run: bool,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    try:
        conn = connect(url)
    except OperatorError as exc:
        print(f"requeue: {exc} (exit 2)", file=sys.stderr)
        return EXIT_CANNOT_CONNECT
    with conn:
        try:
            result = requeue(
                conn,
                all_permanently_failed=all_permanently_failed,
                ids=ids,
                error_like=error_like,
                dry_run=dry_run,
            )
        except psycopg.Error as exc:
            print(f"requeue: failed, nothing changed: {one_line(str(exc), 300)}", file=sys.stderr)
            return 1
    print(f"database: {masked(url)}", file=out)
    render_requeue(result, out)
    return 0

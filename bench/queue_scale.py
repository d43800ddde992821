"""`python -m bench.queue_scale`: what the queue itself costs when it is big (issue 12, item 2).

On a PostgreSQL cluster of its own (real PostgreSQL, the queue layer of sql/ applied with the suggested
defaults), the queue is given 1,000,000 completed rows of history and 100,000 pending rows, then each of the
worker's and the trigger's statements is timed, one call at a time, as the client sees it:

    claim            bubble_sync.claim('process_queue_data_api', 50, 180): one run's batch
    report_verdicts  that batch's 50 verdicts in one statement (what the function sends)
    enqueue          bubble_sync.enqueue(...) of one new signup (what the signup trigger runs)

It prints a table (p50, p99, max in ms, and statements per synced row) and writes it to
bench/results-queue-scale.md unless --out says elsewhere. About a minute.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from components.sql.catalogue import split_statements
from components.sql.params import DEFAULT_PARAMS
from components.sql.templates import QUEUE_FILES, load, render
from devstack.cluster import Cluster

HISTORY_ROWS = 1_000_000
PENDING_ROWS = 100_000
BATCH = 50


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def fill(conn: psycopg.Connection, history: int, pending: int) -> None:
    """The history and the backlog, in two statements (rows as the queue's own functions leave them)."""
    conn.execute(
        "insert into public.sync_queue (table_name, record_id, operation, payload, status, bubble_id,"
        "                               created_at, updated_at, completed_at)"
        " select 'profiles', 'old-' || g, 'INSERT',"
        "        jsonb_build_object('email', 'old' || g || '@example.com'),"
        "        'completed', '1700000000000x' || g, now() - interval '20 days', now() - interval '20 days',"
        "        now() - interval '20 days'"
        "   from generate_series(1, %s) g",
        (history,),
    )
    conn.execute(
        "insert into public.sync_queue (table_name, record_id, operation, payload, status, created_at)"
        " select 'profiles', 'new-' || g, 'INSERT',"
        "        jsonb_build_object('email', 'new' || g || '@example.com'),"
        "        'pending', now() - interval '1 hour' + g * interval '10 milliseconds'"
        "   from generate_series(1, %s) g",
        (pending,),
    )
    conn.execute("analyze public.sync_queue")


def timed(
    conn: psycopg.Connection, sql: str, params: tuple[object, ...]
) -> tuple[float, list[tuple[Any, ...]]]:
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return (time.perf_counter() - started) * 1000, rows


def measure(conn: psycopg.Connection, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"claim": [], "report_verdicts": [], "enqueue": []}
    for run in range(runs):
        ms, rows = timed(
            conn,
            "select lease_token from bubble_sync.claim('process_queue_data_api', %s, 180)",
            (BATCH,),
        )
        times["claim"].append(ms)
        verdicts = [{"lease_token": str(row[0]), "bubble_id": f"1800000000000x{run}"} for row in rows]
        ms, _ = timed(conn, "select * from bubble_sync.report_verdicts(%s)", (Jsonb(verdicts),))
        times["report_verdicts"].append(ms)
        for signup in range(2):
            ms, _ = timed(
                conn,
                "select * from bubble_sync.enqueue('profiles', %s, 'INSERT', %s)",
                (f"signup-{run}-{signup}", Jsonb({"email": f"s{run}-{signup}@example.com"})),
            )
            times["enqueue"].append(ms)
    return times


def report(
    times: dict[str, list[float]], runs: int, seconds_to_fill: float, history: int, pending: int
) -> str:
    lines = [
        "Command: `python -m bench.queue_scale`",
        "",
        f"Queue: {history:,} completed rows of history and {pending:,} pending (filled in "
        f"{seconds_to_fill:.0f} s, then analyzed); {runs} runs, each a claim of {BATCH}, their {BATCH} "
        "verdicts in one statement, and two signups enqueued. Times as the client sees them, over a local "
        "socket.",
        "",
        "| statement | calls | p50 | p99 | max | per synced row |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    per_row = {"claim": f"1/{BATCH}", "report_verdicts": f"1/{BATCH}", "enqueue": "1 (the trigger's)"}
    for name, values in times.items():
        lines.append(
            f"| `{name}` | {len(values)} | {statistics.median(values):.2f} ms"
            f" | {percentile(values, 0.99):.2f} ms | {max(values):.2f} ms | {per_row[name]} |"
        )
    lines += [
        "",
        f"Statements per synced row from the queue's side: 2/{BATCH} (a claim and a verdict batch), against "
        f"1 + 1/{BATCH} when each verdict was a statement of its own.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="claims (and verdict batches) to time")
    parser.add_argument(
        "--history", type=int, default=HISTORY_ROWS, help="completed rows already in the queue"
    )
    parser.add_argument(
        "--pending", type=int, default=PENDING_ROWS, help="pending rows (at least 50 x --runs)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results-queue-scale.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-queue-scale-") as state:
        cluster = Cluster(Path(state))
        cluster.create()
        try:
            cluster.create_database("queue_scale")
            with psycopg.connect(cluster.admin_dsn("queue_scale"), autocommit=True) as conn:
                for relative_path in QUEUE_FILES:
                    for statement in split_statements(render(load(relative_path), DEFAULT_PARAMS)):
                        conn.execute(statement)
                started = time.perf_counter()
                fill(conn, args.history, args.pending)
                seconds_to_fill = time.perf_counter() - started
                times = measure(conn, args.runs)
        finally:
            cluster.destroy()
    text = report(times, args.runs, seconds_to_fill, args.history, args.pending)
    print(text, end="")
    args.out.write_text(text, encoding="utf-8")
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

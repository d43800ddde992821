"""The single-table profiles' workload and what it observes: signups at a steady rate then a burst (or a
backfill of existing users), an outage on its timer, the wait for the queue to drain (or for cron ticks), and
the raw observations read back from the queue, the double and pg_cron.
"""

from __future__ import annotations

import io
import json
import sys
import time
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.observation import Observation, parse_bubble_time
from bench.outage import ScheduledOutage
from bench.profiles import Profile, Settings
from bench.stack import PROCESSOR_JOB, RETRY_JOB, Stack
from components.operator.backfill import run_backfill
from devstack.bubble_double import BubbleDouble

SOURCE_TABLE = "profiles"
# The outage begins halfway through the steady signups: rows have synced by then, and signups keep arriving
# into it (the burst too, unless the outage is shorter than the rest of the steady part).
OUTAGE_BEGINS_AT_STEADY_SHARE = 0.5

_ENQUEUE = "select 1 from bubble_sync.enqueue(%s, %s, 'INSERT', %s::jsonb)"
_ENQUEUE_MANY = """
select count(*) from generate_series(1, %(n)s) g,
  lateral bubble_sync.enqueue(%(table)s, %(prefix)s || g, 'INSERT',
    jsonb_build_object('email', %(prefix)s || g || '@bench.example',
                       'first_name', 'Burst', 'last_name', 'U' || g))
"""


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def drive(profile: Profile, settings: Settings, stack: Stack) -> Observation:
    """The profile's workload on `stack`, until the queue drained (or the cron ticks ran); what it saw."""
    n_steady = round(settings.signups * settings.steady_fraction)
    n_burst = settings.signups - n_steady
    steady_ids = [f"s{i}" for i in range(1, n_steady + 1)]
    burst_ids = [f"b{i}" for i in range(1, n_burst + 1)]

    with psycopg.connect(stack.dsn, autocommit=True) as conn, ExitStack() as during_run:
        _log(f"[{profile.name}] {n_steady} signups at {settings.arrival_rate:g}/s, then {n_burst} at once")
        started_at = time.time()
        outage: ScheduledOutage | None = None
        if profile.outage:
            begin_at = started_at + OUTAGE_BEGINS_AT_STEADY_SHARE * n_steady / settings.arrival_rate
            outage = during_run.enter_context(
                ScheduledOutage(stack.double, begin_at, settings.outage_seconds)
            )
        if profile.backfill_rows is not None:
            burst_ids = [str(i) for i in range(1, settings.signups + 1)]
            burst_at, inserts_done_at = _backfill(conn, stack.dsn, settings.signups)
            settings = replace(settings, drain_timeout_s=settings.backfill_timeout_s)
        else:
            burst_at, inserts_done_at = _insert_signups(conn, settings, started_at, steady_ids, n_burst)

        timed_out = False
        ticks: list[float] = []
        notes: list[str] = []
        if profile.dispatch_mode == "immediate":
            deadline = inserts_done_at + settings.drain_timeout_s
            not_before = inserts_done_at
            if outage is not None:  # recovery takes retry-job ticks: wait for it, never end inside the outage
                deadline = max(deadline, outage.planned_end + settings.recovery_timeout_s)
                not_before = outage.planned_end
            timed_out = not _wait_drained(conn, settings.signups, deadline, not_before)
            if timed_out:
                notes.append(f"not drained {deadline - inserts_done_at:g} s after the last signup")
        else:
            ticks = _wait_ticks(conn, stack.admin_dsn, profile, started_at, settings.cron_ticks)
        ended_at = time.time()
        rows = _queue_rows(conn)
    window = outage.window() if outage is not None else None
    if outage is not None and window is None:
        notes.append("the outage never began: the run ended first")
    bubble_created, bubble_records = _bubble_records(stack.double)
    requests = [r for r in stack.double.requests() if "/obj/" in r["path"]]
    return Observation(
        profile=profile,
        settings=settings,
        started_at=started_at,
        steady_ids=steady_ids,
        burst_ids=burst_ids,
        burst_at=burst_at,
        inserts_done_at=inserts_done_at,
        ended_at=ended_at,
        rows=rows,
        bubble_created=bubble_created,
        requests=requests,
        bubble_records=bubble_records,
        ticks=ticks,
        timed_out=timed_out,
        notes=notes,
        outage=window,
        cron_runs=_cron_runs(stack.admin_dsn, started_at),
    )


def _insert_signups(
    conn: psycopg.Connection[Any], settings: Settings, started_at: float, steady_ids: list[str], n_burst: int
) -> tuple[float, float]:
    """The steady signups at `arrival_rate` from `started_at`, then the burst in one transaction; returns when
    the burst began and when the last signup was in."""
    for i, record_id in enumerate(steady_ids):
        delay = started_at + i / settings.arrival_rate - time.time()
        if delay > 0:
            time.sleep(delay)
        payload = {"email": f"{record_id}@bench.example", "first_name": "Steady", "last_name": record_id}
        conn.execute(_ENQUEUE, (SOURCE_TABLE, record_id, json.dumps(payload)))
    if steady_ids:  # the burst comes one arrival interval after the last steady signup
        delay = started_at + len(steady_ids) / settings.arrival_rate - time.time()
        if delay > 0:
            time.sleep(delay)
    burst_at = time.time()
    if n_burst:
        conn.execute(_ENQUEUE_MANY, {"n": n_burst, "table": SOURCE_TABLE, "prefix": "b"})
    return burst_at, time.time()


def _backfill(conn: psycopg.Connection[Any], dsn: str, rows: int) -> tuple[float, float]:
    """`rows` existing users in public.profiles, queued by the backfill command's own code (chunked, without
    following the sync); returns when queueing began and ended."""
    _log(f"creating public.profiles with {rows:,} existing users")
    conn.execute(
        "create table public.profiles (id bigint primary key, email text not null, first_name text,"
        " last_name text)"
    )
    conn.execute(
        "insert into public.profiles select g, 'b' || g || '@bench.example', 'Existing', 'U' || g"
        " from generate_series(1, %s) g",
        (rows,),
    )
    _log("python -m components backfill --from public.profiles --key id --fields email,first_name,last_name")
    began = time.time()
    quiet = io.StringIO()
    code = run_backfill(
        dsn,
        source="public.profiles",
        key="id",
        fields=["email", "first_name", "last_name"],
        where=None,
        follow_sync=False,
        out=quiet,
        err=quiet,
        tty=False,
    )
    if code != 0:
        raise RuntimeError(f"the backfill command failed (exit {code}): {quiet.getvalue()}")
    ended = time.time()
    _log(f"queued {rows:,} rows in {ended - began:.1f} s; waiting for them to sync")
    return began, ended


def _queue_rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    found = conn.execute(
        "select record_id, status, created_at, completed_at, updated_at, retry_count, max_retries,"
        " error_message from public.sync_queue order by created_at"
    ).fetchall()
    return [
        {
            "record_id": r[0],
            "status": r[1],
            "created_at": _epoch(r[2]),
            "completed_at": _epoch(r[3]),
            "updated_at": _epoch(r[4]),
            "retry_count": r[5],
            "max_retries": r[6],
            "error_message": r[7],
        }
        for r in found
    ]


def _bubble_records(double: BubbleDouble) -> tuple[dict[str, float], int]:
    """Each synced record id with its first Created Date in the double, and how many records of our table
    the double holds (more than synced ids: duplicates)."""
    created: dict[str, float] = {}
    records = 0
    for record in double.records("user", env="test"):
        key = str(record.get("supabase_id", ""))
        if key.startswith(SOURCE_TABLE + ":"):
            records += 1
            at = parse_bubble_time(record["Created Date"])
            record_id = key.split(":", 1)[1]
            created[record_id] = min(at, created.get(record_id, at))
    return created, records


def _cron_runs(admin_dsn: str, since: float) -> dict[str, list[float]]:
    """When our processor and retry jobs started a run since `since` (what explains the steps of a
    recovery)."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        found = admin.execute(
            "select j.jobname, d.start_time from cron.job_run_details d join cron.job j using (jobid)"
            " where j.jobname in (%s, %s) and d.start_time >= to_timestamp(%s) order by d.start_time",
            (PROCESSOR_JOB, RETRY_JOB, since),
        ).fetchall()
    runs: dict[str, list[float]] = {PROCESSOR_JOB: [], RETRY_JOB: []}
    for jobname, start_time in found:
        runs[jobname].append(start_time.timestamp())
    return runs


def _wait_drained(
    conn: psycopg.Connection[Any], expected: int, deadline: float, not_before: float = 0.0
) -> bool:
    """Until every row is synced or failed for good (no pending, processing or retryable row), and not before
    `not_before`; False at the deadline."""
    while time.time() < deadline:
        done = conn.execute(
            "select count(*) from public.sync_queue where status = 'completed'"
            " or (status = 'failed' and retry_count >= max_retries)"
        ).fetchone()
        if done and done[0] >= expected and time.time() >= not_before:
            return True
        time.sleep(0.2)
    return False


def _wait_ticks(
    conn: psycopg.Connection[Any], admin_dsn: str, profile: Profile, since: float, ticks: int
) -> list[float]:
    """Waits for `ticks` runs of the processor job after `since` and for the work they started to finish."""
    if ticks <= 0:
        return []
    _log(f"[{profile.name}] waiting for {ticks} real pg_cron minute tick(s) of {PROCESSOR_JOB}")
    seen: list[float] = []
    deadline = since + 60 * (ticks + 1) + 30
    with psycopg.connect(admin_dsn, autocommit=True, row_factory=dict_row) as admin:
        while time.time() < deadline:
            found = admin.execute(
                "select d.start_time from cron.job_run_details d join cron.job j using (jobid)"
                " where j.jobname = %s and d.start_time >= to_timestamp(%s) order by d.start_time",
                (PROCESSOR_JOB, since),
            ).fetchall()
            seen = [row["start_time"].timestamp() for row in found]
            if len(seen) >= ticks:
                break
            time.sleep(0.5)
    # let the last tick's run finish: nothing processing, and a moment for pg_net and the function
    time.sleep(2.0)
    end = time.time() + 30
    while time.time() < end:
        busy = conn.execute("select count(*) from public.sync_queue where status = 'processing'").fetchone()
        if not busy or busy[0] == 0:
            break
        time.sleep(0.2)
    return seen[:ticks]

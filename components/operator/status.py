"""`python -m components status`: `collect_status` reads everything in one read-only transaction (the
queries are in sql/operator_status.sql; the queue per mapping, with the mappings read from the database, by
components/operator/by_mapping.py) and has it judged (components/operator/health.py); `run_status` connects,
collects and prints the report (components/operator/report.py), and says which exit code."""

from __future__ import annotations

import json
import sys
from typing import TextIO

import psycopg
from psycopg.rows import DictRow

from components.mappings import Mapping
from components.operator.by_mapping import queue_by_mapping
from components.operator.connection import EXIT_CANNOT_CONNECT, OperatorError, connect
from components.operator.formatting import one_line
from components.operator.health import EXIT_UNHEALTHY, Status, judge
from components.operator.mappings import deployed_mappings
from components.operator.queries import one_row, query
from components.operator.report import render_status, status_json
from components.url_secrets import masked

__all__ = ["collect_status", "run_status"]


def collect_status(
    conn: psycopg.Connection[DictRow],
    *,
    database: str,
    max_pending_minutes: float = 10,
    pg_net_minutes: int = 60,
    ids_per_error: int = 5,
    error_groups: int = 20,
    stack: str | None = None,
) -> Status:
    """Reads everything `status` shows, in one read-only transaction, and judges it (`stack`: named in the
    commands it suggests)."""
    conn.read_only = True
    with conn.transaction():
        now = one_row(conn.execute(query("now")))["now"]
        status = Status(database=database, checked_at=now, stack=stack)
        present = one_row(conn.execute(query("present")))
        if present["health"]:
            status.health = conn.execute(query("health"), (now,)).fetchone()
        else:
            status.problems.append(
                "bubble_sync.health() does not exist: the stack is not applied to this database "
                "(pulumi up, or render-sql + psql)"
            )
        if present["queue"]:
            status.failing = conn.execute(
                query("failing"), {"ids": ids_per_error, "groups": error_groups}
            ).fetchall()
            by_table = conn.execute(query("queue_by_table"), {"now": now}).fetchall()
            status.by_mapping = queue_by_mapping(by_table, _mappings(conn, status))
        status.cron_available = present["cron"]
        if not present["cron"]:
            status.problems.append("pg_cron is not installed (no cron.job): nothing runs the queue")
        elif present["our_jobs"]:  # without the stack's functions, health's absence says enough
            status.cron_jobs = conn.execute(query("cron_jobs"), {"now": now}).fetchall()
        if present["alerts"] and present["net"]:
            try:
                with conn.transaction():  # a savepoint: a role that may not read them still gets the rest
                    status.alerts = conn.execute(query("alert_state")).fetchone()
                    if present["vault"]:
                        status.alert_webhook = one_row(conn.execute(query("alert_webhook")))["configured"]
            except psycopg.errors.InsufficientPrivilege as exc:
                status.warnings.append(f"cannot read the alerts' state: {one_line(str(exc))}")
        status.pg_net_available = present["net"]
        if present["net"]:
            params = {"now": now, "minutes": pg_net_minutes, "limit": 10}
            try:
                with conn.transaction():  # a savepoint: a role without access to net still gets the rest
                    status.pg_net_errors = conn.execute(query("pg_net_errors"), params).fetchall()
                    count = one_row(conn.execute(query("pg_net_error_count"), params))
                    status.pg_net_error_count = count["n"]
            except psycopg.errors.InsufficientPrivilege as exc:
                status.warnings.append(f"cannot read net._http_response: {one_line(str(exc))}")
        else:
            status.problems.append("pg_net is not installed (no net._http_response): no request can be sent")
    judge(status, max_pending_minutes=max_pending_minutes, pg_net_minutes=pg_net_minutes)
    return status


def _mappings(conn: psycopg.Connection[DictRow], status: Status) -> tuple[Mapping, ...]:
    """The deployed mappings; none, and a problem, when bubble_sync.mappings has a row that is not a mapping
    (claim and the function read the same rows) or cannot be read."""
    try:
        with conn.transaction():  # a savepoint: a role that may not read the table still gets the rest
            return deployed_mappings(conn)
    except OperatorError as exc:
        status.problems.append(f"{exc} (the queue is shown by table meanwhile)")
        return ()


def run_status(
    url: str,
    *,
    as_json: bool,
    max_pending_minutes: float,
    pg_net_minutes: int,
    out: TextIO | None = None,
    stack: str | None = None,
) -> int:
    out = out or sys.stdout
    try:
        conn = connect(url)
    except OperatorError as exc:
        return _cannot_connect(exc, as_json, out)
    try:
        with conn:
            status = collect_status(
                conn,
                database=masked(url),
                max_pending_minutes=max_pending_minutes,
                pg_net_minutes=pg_net_minutes,
                stack=stack,
            )
    except psycopg.Error as exc:
        # Connected, but the queries failed (permissions, a broken schema): the pipeline is not healthy.
        message = f"status queries failed: {one_line(str(exc), 300)}"
        if as_json:
            print(json.dumps({"database": masked(url), "healthy": False, "exit_code": 1,
                              "problems": [message]}, indent=2), file=out)  # fmt: skip
        else:
            print(f"UNHEALTHY (exit 1): {message}", file=out)
        return EXIT_UNHEALTHY
    if as_json:
        print(status_json(status), file=out)
    else:
        render_status(status, out)
    return status.exit_code


def _cannot_connect(exc: OperatorError, as_json: bool, out: TextIO) -> int:
    if as_json:
        print(json.dumps({"healthy": False, "exit_code": 2, "error": str(exc)}, indent=2), file=out)
    print(f"status: {exc} (exit 2)", file=sys.stderr)
    return EXIT_CANNOT_CONNECT

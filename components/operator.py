"""Operator tools: `python -m components status` and `python -m components requeue`.

status   the seed's monitoring queries, made usable: `bubble_sync.health()`, our cron jobs with their
         last runs, failed rows grouped by error, and recent pg_net errors. Exit 0 healthy, 1 unhealthy
         (each reason printed), 2 cannot connect or no connection configured (the reason printed).
requeue  puts permanently failed rows (retry_count >= max_retries) back into the retry path with
         `bubble_sync.requeue` (sql/functions/maintenance.sql): status `failed`, retry_count 0,
         next_retry_at now, lease cleared, and error_message kept behind the prefix
         `requeued by operator; last error: ` so the reason stays visible. The next `bubble-sync-retry` run
         claims them. One transaction; `--dry-run` runs the same call and rolls it back.

Where the database is (first match wins):
  --database-url URL
  --stack NAME       the non-secret connection keys of Pulumi.NAME.yaml (dbHost, dbPort, dbUser,
                     dbName, dbSslMode) with the password from $PGPASSWORD, else from
                     $BUBBLE_SYNC_DATABASE_URL; a stack without dbHost (databaseUrl as a secret, or none)
                     uses $BUBBLE_SYNC_DATABASE_URL whole. Encrypted values cannot be read here:
                     `export PGPASSWORD="$(pulumi config get dbPassword --stack NAME)"`.
  $BUBBLE_SYNC_DATABASE_URL, then $DATABASE_URL
The password is never printed: URLs are shown with `***` in its place, and error messages are scrubbed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from components.config import KEYS, ConfigError
from components.connection import ENV_VAR, ConnectionConfigError, database_url
from components.errors import BubbleSyncError
from components.stack_file import is_encrypted, load_stack_config, read_stack_values

__all__ = [
    "EXIT_CANNOT_CONNECT",
    "EXIT_HEALTHY",
    "EXIT_UNHEALTHY",
    "EXPECTED_JOBS",
    "OperatorError",
    "Status",
    "collect_status",
    "mask_url",
    "render_status",
    "requeue",
    "resolve_database_url",
]

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
EXIT_CANNOT_CONNECT = 2

# The jobs every stack schedules (dispatchMode immediate or cron) and that must be active.
EXPECTED_JOBS = ("bubble-sync-processor", "bubble-sync-retry")
#: what bubble_sync.requeue puts in front of a requeued row's last error (sql/functions/maintenance.sql)
REQUEUE_PREFIX = "requeued by operator; last error: "


class OperatorError(BubbleSyncError):
    """No usable connection settings, or the database cannot be reached. The message holds no secret."""


# -- connection ----------------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***` (also a `password=` query parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL, not shown>"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
        if item
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _password_of(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def resolve_database_url(
    *,
    database_url_arg: str | None,
    stack: str | None,
    project_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(url, where it came from). Raises OperatorError saying what is missing."""
    env = os.environ if environ is None else environ
    if database_url_arg:
        return database_url_arg, "--database-url"
    if stack:
        return _stack_url(stack, project_dir, env)
    for name in (ENV_VAR, "DATABASE_URL"):
        if env.get(name, "").strip():
            return env[name].strip(), f"${name}"
    raise OperatorError(
        f"no database given: pass --database-url URL or --stack NAME, or set ${ENV_VAR} (or $DATABASE_URL)"
    )


def _stack_url(stack: str, project_dir: Path, env: Mapping[str, str]) -> tuple[str, str]:
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise OperatorError(f"no stack file {stack_file} (stacks here: {', '.join(stacks) or 'none'})")
    try:
        load_stack_config(stack_file)  # the same validation render-sql applies: unknown keys, plain secrets
        values = read_stack_values(stack_file)
    except ConfigError as exc:
        raise OperatorError(str(exc)) from None
    defaults = {spec.name: spec.default for spec in KEYS}
    where = f"--stack {stack} ({stack_file.name})"
    env_url = env.get(ENV_VAR, "").strip()

    if not values.get("dbHost"):
        if env_url:
            return env_url, f"${ENV_VAR} (stack {stack} has no dbHost)"
        if is_encrypted(values.get("databaseUrl")):
            raise OperatorError(
                f"stack {stack}: its databaseUrl is encrypted and cannot be read here; set ${ENV_VAR}: "
                f'`export {ENV_VAR}="$(pulumi config get databaseUrl --stack {stack})"`'
            )
        raise OperatorError(
            f"stack {stack}: it sets no dbHost (its connection comes from the environment); set ${ENV_VAR} "
            f"to the database's postgresql:// URL (for the devstack: the DATABASE_URL `./dev up` prints)"
        )

    password = env.get("PGPASSWORD") or (_password_of(env_url) if env_url else None)
    if not password:
        raise OperatorError(
            f"stack {stack}: the connection (dbHost {values['dbHost']}) needs its password, a secret "
            f'in {stack_file.name}: `export PGPASSWORD="$(pulumi config get dbPassword --stack {stack})"` '
            f"(or set ${ENV_VAR} to a URL with the password)"
        )

    def get(key: str) -> Any:
        if key == "dbPassword":
            return password
        if key == "databaseUrl":
            return None
        value = values.get(key, defaults.get(key))
        return None if is_encrypted(value) else value

    try:
        return database_url(get, environ={}), where
    except ConnectionConfigError as exc:
        raise OperatorError(f"stack {stack}: {exc}") from None


def _connect(url: str) -> psycopg.Connection:
    password = _password_of(url)
    try:
        return psycopg.connect(url, connect_timeout=10, row_factory=dict_row)
    except (psycopg.Error, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if password:
            message = message.replace(password, "***").replace(quote(password, safe=""), "***")
        raise OperatorError(f"cannot connect to {mask_url(url)}: {message}") from None


# -- status --------------------------------------------------------------------------------------------------


@dataclass
class Status:
    database: str
    checked_at: datetime
    health: dict[str, Any] | None = None
    cron_available: bool = True
    cron_jobs: list[dict[str, Any]] = field(default_factory=list)
    failing: list[dict[str, Any]] = field(default_factory=list)
    pg_net_available: bool = True
    pg_net_errors: list[dict[str, Any]] = field(default_factory=list)
    pg_net_error_count: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return EXIT_HEALTHY if self.healthy else EXIT_UNHEALTHY


_CRON_JOBS_SQL = """
select j.jobid, j.jobname, j.schedule, j.active, j.command,
       l.status as last_status, l.start_time as last_start, l.end_time as last_end,
       l.return_message as last_message,
       coalesce(s.runs_24h, 0) as runs_24h, coalesce(s.failed_24h, 0) as failed_24h,
       f.start_time as last_failure_at, f.return_message as last_failure_message
  from cron.job j
  left join lateral (select d.status, d.start_time, d.end_time, d.return_message
                       from cron.job_run_details d
                      where d.jobid = j.jobid
                      order by d.start_time desc nulls last limit 1) l on true
  left join lateral (select count(*) as runs_24h,
                            count(*) filter (where d.status = 'failed') as failed_24h
                       from cron.job_run_details d
                      where d.jobid = j.jobid and d.start_time >= %(now)s - interval '24 hours') s on true
  left join lateral (select d.start_time, d.return_message
                       from cron.job_run_details d
                      where d.jobid = j.jobid and d.status = 'failed'
                      order by d.start_time desc nulls last limit 1) f on true
 where bubble_sync.is_our_job(j.jobname)
 order by j.jobname
"""

# to_jsonb(q) ->> 'id': an adopted sync_queue may have a uuid id, a bigint id, or none.
_FAILING_SQL = """
select coalesce(q.error_message, '(no error message)') as error_message,
       count(*) as rows,
       count(*) filter (where q.retry_count >= q.max_retries) as permanent,
       max(q.updated_at) as last_failed_at,
       (array_agg(q.table_name || ':' || q.record_id order by q.updated_at desc nulls last))[1:%(ids)s]
         as records,
       (array_agg(to_jsonb(q) ->> 'id' order by q.updated_at desc nulls last))[1:%(ids)s] as ids
  from public.sync_queue q
 where q.status = 'failed'
 group by 1
 order by count(*) filter (where q.retry_count >= q.max_retries) desc, count(*) desc, 1
 limit %(groups)s
"""

_PG_NET_SQL = """
select r.id, r.status_code, r.timed_out, r.error_msg, r.created, left(r.content, 200) as content
  from net._http_response r
 where (r.status_code >= 400 or r.error_msg is not null or r.timed_out)
   and r.created >= %(now)s - make_interval(mins => %(minutes)s)
 order by r.created desc
 limit %(limit)s
"""

_PG_NET_COUNT_SQL = """
select count(*) as n from net._http_response r
 where (r.status_code >= 400 or r.error_msg is not null or r.timed_out)
   and r.created >= %(now)s - make_interval(mins => %(minutes)s)
"""


def collect_status(
    conn: psycopg.Connection,
    *,
    database: str,
    max_pending_minutes: float = 10,
    pg_net_minutes: int = 60,
    ids_per_error: int = 5,
    error_groups: int = 20,
) -> Status:
    """Reads everything `status` shows, in one read-only transaction, and judges it."""
    conn.read_only = True
    with conn.transaction():
        now = conn.execute("select clock_timestamp() as now").fetchone()["now"]
        status = Status(database=database, checked_at=now)
        present = conn.execute(
            "select to_regprocedure('bubble_sync.health(timestamptz, integer)') is not null as health,"
            "       to_regclass('public.sync_queue') is not null as queue,"
            "       to_regclass('cron.job') is not null as cron,"
            "       to_regprocedure('bubble_sync.is_our_job(text)') is not null as our_jobs,"
            "       to_regclass('net._http_response') is not null as net"
        ).fetchone()
        if present["health"]:
            status.health = conn.execute("select * from bubble_sync.health(%s, 0)", (now,)).fetchone()
        else:
            status.problems.append(
                "bubble_sync.health() does not exist: the stack is not applied to this database "
                "(pulumi up, or render-sql + psql)"
            )
        if present["queue"]:
            status.failing = conn.execute(
                _FAILING_SQL, {"ids": ids_per_error, "groups": error_groups}
            ).fetchall()
        status.cron_available = present["cron"]
        if present["cron"] and present["our_jobs"]:  # without the stack, health's absence says enough
            status.cron_jobs = conn.execute(_CRON_JOBS_SQL, {"now": now}).fetchall()
        else:
            status.problems.append("pg_cron is not installed (no cron.job): nothing runs the queue")
        status.pg_net_available = present["net"]
        if present["net"]:
            params = {"now": now, "minutes": pg_net_minutes, "limit": 10}
            try:
                with conn.transaction():  # a savepoint: a role without access to net still gets the rest
                    status.pg_net_errors = conn.execute(_PG_NET_SQL, params).fetchall()
                    status.pg_net_error_count = conn.execute(_PG_NET_COUNT_SQL, params).fetchone()["n"]
            except psycopg.errors.InsufficientPrivilege as exc:
                status.warnings.append(f"cannot read net._http_response: {_one_line(str(exc))}")
        else:
            status.problems.append("pg_net is not installed (no net._http_response): no request can be sent")
    _judge(status, max_pending_minutes=max_pending_minutes, pg_net_minutes=pg_net_minutes)
    return status


def _judge(status: Status, *, max_pending_minutes: float, pg_net_minutes: int) -> None:
    h = status.health
    if h is not None:
        if h["permanently_failed_items"]:
            status.problems.append(
                f"{h['permanently_failed_items']} row(s) failed permanently (retry budget used up): read "
                f"'Failing rows', fix the cause, then `python -m components requeue`"
            )
        age = h["oldest_pending_age"]
        if age is not None and age > timedelta(minutes=max_pending_minutes):
            status.problems.append(
                f"the oldest pending row has waited {_duration(age)} (limit {max_pending_minutes:g} min): "
                f"the processor is not draining the queue"
            )
        if h["expired_leases"]:
            status.warnings.append(
                f"{h['expired_leases']} lease(s) expired (a worker died mid-batch); "
                "the next claim takes them back"
            )
        if h["retryable_items"]:
            status.warnings.append(f"{h['retryable_items']} row(s) failed and wait for a retry")
    if status.cron_available:
        by_name = {job["jobname"]: job for job in status.cron_jobs}
        for name in EXPECTED_JOBS:
            job = by_name.get(name)
            if job is None:
                status.problems.append(f"cron job {name} is not scheduled")
            elif not job["active"]:
                status.problems.append(f"cron job {name} is inactive")
        for job in status.cron_jobs:
            if job["last_status"] == "failed":
                status.problems.append(
                    f"the last run of cron job {job['jobname']} failed: {_one_line(job['last_message'])}"
                )
            elif job["failed_24h"]:
                status.warnings.append(
                    f"cron job {job['jobname']} failed {job['failed_24h']} time(s) in 24 h "
                    "(its last run succeeded)"
                )
    if status.pg_net_error_count:
        status.warnings.append(
            f"{status.pg_net_error_count} pg_net request(s) failed in the last {pg_net_minutes} min "
            f"(HTTP >= 400, timeout or network error)"
        )


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {text}" if days else text


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S%z") if value else "-"


def _one_line(text: str | None, width: int = 100) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]], out: TextIO, indent: str = "  ") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        print(indent + "  ".join(cells).rstrip(), file=out)


def render_status(status: Status, out: TextIO) -> None:
    print(f"bubble-sync status of {status.database} at {_when(status.checked_at)}", file=out)
    print(file=out)
    h = status.health
    print("Health (select * from bubble_sync.health())", file=out)
    if h is None:
        print("  not available: bubble_sync.health() is missing", file=out)
    else:
        jobs = _count(h["active_jobs"])
        lines = [
            ("active jobs", jobs, f"active cron jobs named bubble-sync% (expected {len(EXPECTED_JOBS)})"),
            ("pending", str(h["pending_items"]), f"oldest waiting {_duration(h['oldest_pending_age'])}"),
            ("processing", str(h["processing_items"]), f"of which expired leases: {h['expired_leases']}"),
            ("failed retryable", str(h["retryable_items"]), "will be retried by bubble-sync-retry"),
            ("permanently failed", str(h["permanently_failed_items"]), "need a person (requeue after a fix)"),
            ("completed today", str(h["completed_today"]), "completed in the last 24 hours"),
            ("failed job runs 24h", _count(h["failed_job_runs_24h"]), "failed runs of our cron jobs"),
            ("oldest pending age", _duration(h["oldest_pending_age"]), ""),
        ]  # fmt: skip
        _table([(a, b, c) for a, b, c in lines], out)
    print(file=out)

    print("Cron jobs (cron.job, cron.job_run_details)", file=out)
    if not status.cron_available:
        print("  pg_cron is not installed", file=out)
    elif not status.cron_jobs:
        print("  none of ours is scheduled", file=out)
    else:
        rows = [("job", "schedule", "active", "last run", "last status", "runs/failed 24h")]
        for job in status.cron_jobs:
            rows.append(
                (
                    job["jobname"],
                    job["schedule"],
                    "yes" if job["active"] else "NO",
                    _when(job["last_start"]),
                    job["last_status"] or "never ran",
                    f"{job['runs_24h']}/{job['failed_24h']}",
                )
            )
        _table(rows, out)
        for job in status.cron_jobs:
            if job["last_failure_at"]:
                print(
                    f"  last failure of {job['jobname']} at {_when(job['last_failure_at'])}: "
                    f"{_one_line(job['last_failure_message'])}",
                    file=out,
                )
    print(file=out)

    print("Failing rows (sync_queue status failed, by error)", file=out)
    if not status.failing:
        print("  none", file=out)
    else:
        rows = [("rows", "permanent", "last failed", "error", "records (table:record_id, newest first)")]
        for group in status.failing:
            rows.append(
                (
                    str(group["rows"]),
                    str(group["permanent"]),
                    _when(group["last_failed_at"]),
                    _one_line(group["error_message"], 70),
                    ", ".join(group["records"] or []),
                )
            )
        _table(rows, out)
    print(file=out)

    print("pg_net errors (net._http_response: HTTP >= 400, timeout or error, newest first)", file=out)
    if not status.pg_net_available:
        print("  pg_net is not installed", file=out)
    elif not status.pg_net_errors:
        print("  none", file=out)
    else:
        rows = [("id", "at", "status", "error / response")]
        for r in status.pg_net_errors:
            detail = r["error_msg"] or ("timed out" if r["timed_out"] else r["content"])
            code = "-" if r["status_code"] is None else str(r["status_code"])
            rows.append((str(r["id"]), _when(r["created"]), code, _one_line(detail, 90)))
        _table(rows, out)
        if status.pg_net_error_count > len(status.pg_net_errors):
            print(f"  ({status.pg_net_error_count} in all)", file=out)
    print(file=out)

    for warning in status.warnings:
        print(f"warning: {warning}", file=out)
    if status.healthy:
        print("HEALTHY (exit 0)", file=out)
    else:
        print(f"UNHEALTHY (exit 1): {len(status.problems)} problem(s)", file=out)
        for problem in status.problems:
            print(f"  - {problem}", file=out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def status_json(status: Status) -> str:
    """Intervals in seconds, times in ISO 8601."""
    document = {
        "database": status.database,
        "checked_at": status.checked_at,
        "healthy": status.healthy,
        "exit_code": status.exit_code,
        "problems": status.problems,
        "warnings": status.warnings,
        "health": status.health,
        "cron_jobs": status.cron_jobs if status.cron_available else None,
        "failing": status.failing,
        "pg_net_errors": status.pg_net_errors if status.pg_net_available else None,
        "pg_net_error_count": status.pg_net_error_count,
    }
    return json.dumps(_jsonable(document), indent=2)


def run_status(
    url: str, *, as_json: bool, max_pending_minutes: float, pg_net_minutes: int, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    try:
        conn = _connect(url)
    except OperatorError as exc:
        return _cannot_connect(exc, as_json, out)
    try:
        with conn:
            status = collect_status(
                conn,
                database=mask_url(url),
                max_pending_minutes=max_pending_minutes,
                pg_net_minutes=pg_net_minutes,
            )
    except psycopg.Error as exc:
        # Connected, but the queries failed (permissions, a broken schema): the pipeline is not healthy.
        message = f"status queries failed: {_one_line(str(exc), 300)}"
        if as_json:
            print(json.dumps({"database": mask_url(url), "healthy": False, "exit_code": 1,
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


# -- requeue -------------------------------------------------------------------------------------------------

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
    conn: psycopg.Connection,
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
                    _one_line(row["old_error"], 80),
                )
            )
        _table(rows, out)
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
        conn = _connect(url)
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
            print(f"requeue: failed, nothing changed: {_one_line(str(exc), 300)}", file=sys.stderr)
            return 1
    print(f"database: {mask_url(url)}", file=out)
    render_requeue(result, out)
    return 0

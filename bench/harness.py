"""One profile's run: its own local stack, the workload, and the raw observations (no statistics here).

The stack is the devstack's pieces started directly (not `./dev up`, which has one fixed configuration):
a PostgreSQL cluster with the real pg_cron in a temporary directory, the pg_net worker double as a process,
the Bubble double in-process (latency and rate limit set), and `Pulumi.local.yaml` with the profile's settings
(dispatchMode, batchSize, concurrency, bubbleBulkCreate, bubbleRateLimitPerMinute) on top: the Deno function
host gets that stack's function settings (components.function_env) and its SQL is applied with psql, as
`./dev up --no-engine` does. A profile with an outage takes the double down (every /obj request answers 503)
for `Settings.outage_seconds` from halfway through the steady signups, on a timer beside the workload. The
`mappings` profile's stack has bench/mapped_app.py's mappings (its tables are made before the stack SQL,
which attaches the triggers to them, and the double is told the app's schema); its workload and checks are
bench/mapped.py's.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench import mapped_app
from components.function_env import function_env
from components.operator.backfill import run_backfill
from components.stack_file import load_stack_config
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster, free_port
from devstack.functions import deno_binary, runtime_env, start_functions_host, stop_process
from devstack.processes import Started, stop
from devstack.stack import start_pgnet_worker
from devstack.stack_sql import apply_stack_sql

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "supabase" / "functions"
LOCAL_STACK = REPO_ROOT / "Pulumi.local.yaml"
BUBBLE_PREFIX = "/version-test/api/1.1"
SOURCE_TABLE = "profiles"
PROCESSOR_JOB = "bubble-sync-processor"
RETRY_JOB = "bubble-sync-retry"
OUTAGE_STATUS = 503
# The outage begins halfway through the steady signups: rows have synced by then, and signups keep arriving
# into it (the burst too, unless the outage is shorter than the rest of the steady part).
OUTAGE_BEGINS_AT_STEADY_SHARE = 0.5


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    dispatch_mode: str  # "immediate" (trigger + minute cron) or "cron" (minute cron only)
    batch_size: int
    concurrency: int
    bulk_create: bool = False
    # Ours is configured with the Bubble plan's rate limit (stack key bubbleRateLimitPerMinute = the double's
    # limit here) and spaces its requests at it; the seed's function knew no limit.
    paced: bool = True
    # The seed's function processed one batch per invocation; ours drains the queue unless given a limit. The
    # seed profile's cron job therefore asks for {"limit": batch_size}, as the seed's function did.
    rows_per_invocation: int | None = None
    # Bubble is down (the double answers 503 to every /obj request) for Settings.outage_seconds mid-run; the
    # run then waits for the queue to empty (Settings.recovery_timeout_s after the outage at most).
    outage: bool = False
    # A Bubble plan's limit: the stack's bubbleRateLimitPerMinute and the double's, every other setting at its
    # default. The workload is one burst of Settings.plan_burst_seconds at that rate; afterwards the double
    # alone is measured (what it serves without the function: the machine's ceiling, Settings.ceiling_*).
    plan_per_minute: float | None = None
    # The workload is `python -m components backfill` of this many existing records of public.profiles.
    backfill_rows: int | None = None
    # The stack has bench/mapped_app.py's mappings (three tables, three Bubble data types, the double told
    # their schema); the workload and its checks are bench/mapped.py's.
    mapped: bool = False


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "default",
            "ours: immediate dispatch + minute cron, batch 50, concurrency following the rate (0)",
            "immediate",
            50,
            0,
        ),
        Profile(
            "default-bulk",
            "ours with bubbleBulkCreate: first attempts of creates go through Bubble's bulk endpoint",
            "immediate",
            50,
            5,
            bulk_create=True,
        ),
        Profile(
            "seed",
            "the seed's plan: minute cron only, 10 rows per invocation, 5 at a time",
            "cron",
            10,
            5,
            rows_per_invocation=10,
            paced=False,
        ),
        Profile(
            "starter",
            "ours at Bubble's Starter plan: rate limit 15,000/min, every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=15_000,
        ),
        Profile(
            "growth",
            "ours at Bubble's Growth plan: rate limit 25,000/min, every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=25_000,
        ),
        Profile(
            "team",
            "ours at Bubble's Team plan: rate limit 35,000/min, every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=35_000,
        ),
        Profile(
            "backfill",
            "python -m components backfill of 100,000 existing users at Growth's limit (bulk creates)",
            "immediate",
            50,
            0,
            plan_per_minute=25_000,
            backfill_rows=100_000,
        ),
        Profile(
            "mappings",
            "three mappings at Growth's limit: users (a row filter), listings (a reference to their host),"
            " messages (deletes); every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=25_000,
            mapped=True,
        ),
        Profile(
            "outage",
            "ours (as default) with Bubble down mid-run: every request answers 503 for --outage-seconds",
            "immediate",
            50,
            5,
            outage=True,
        ),
    )
}


@dataclass(frozen=True)
class Settings:
    signups: int = 300
    steady_fraction: float = 0.5  # the first part arrives at `arrival_rate`, the rest in one burst
    arrival_rate: float = 5.0  # signups per second during the steady part
    latency_ms: float = 100.0  # the double's base latency; plus uniform 0..jitter: 150 ms ± 50 on average
    latency_jitter_ms: float = 100.0
    rate_limit_per_minute: float = 600.0
    rate_limit_burst: float = 10.0
    drain_timeout_s: float = 120.0  # after the last signup, for profiles with immediate dispatch
    cron_ticks: int = 3  # processor ticks observed for cron-only profiles (0: none, all derived)
    outage_seconds: float = 180.0  # profiles with an outage: how long Bubble answers 503 to everything
    # profiles with an outage: how long after it the run waits for an empty queue. Rows that failed during
    # the outage come back through the retry job (every 5 minutes) once their growing wait has passed.
    recovery_timeout_s: float = 900.0
    # Bubble's bulk calls take this long per line (its manual gives only the bound: up to 4 minutes for 1,000
    # lines, which the function plans for; a call of 50 lines takes 1.25 s here, 1,000 lines 25 s).
    bulk_ms_per_line: float = 25.0
    plan_burst_seconds: float = 20.0  # plan profiles: the burst is this many seconds of the plan's limit
    ceiling_seconds: float = 10.0  # plan profiles: how long the double alone is driven afterwards
    ceiling_concurrency: int = 200  # ... with this many requests in flight (the function's most per run)
    backfill_timeout_s: float = 1800.0  # backfill profiles: after the rows are queued
    backfill_rows: int | None = None  # backfill profiles: this many records instead of the profile's
    seed: int = 7
    functions_dir: str | None = None  # another copy of supabase/functions (to measure a change)
    function_env: dict[str, str] = field(default_factory=dict)  # extra environment for the function


@dataclass(frozen=True)
class OutageWindow:
    """When Bubble was down (epoch seconds, as the harness switched the double)."""

    planned_seconds: float
    began_at: float
    ended_at: float


@dataclass
class Observation:
    """What one profile's run saw, as raw timestamps (epoch seconds, UTC)."""

    profile: Profile
    settings: Settings
    started_at: float
    steady_ids: list[str]
    burst_ids: list[str]
    burst_at: float
    inserts_done_at: float
    ended_at: float
    # record_id, status, created_at, completed_at, updated_at, retry_count, max_retries, error_message
    rows: list[dict[str, Any]]
    bubble_created: dict[str, float]  # record_id -> the double's Created Date
    requests: list[dict[str, Any]]  # the double's request log (/obj requests)
    bubble_records: int = 0  # records of our table in the double (more than bubble_created: duplicates)
    ticks: list[float] = field(default_factory=list)  # processor cron runs that started during the run
    timed_out: bool = False
    outage: OutageWindow | None = None
    cron_runs: dict[str, list[float]] = field(default_factory=dict)  # job name -> run starts during the run
    notes: list[str] = field(default_factory=list)
    # the function host's log: one entry per invocation (cpu_ms, wall_ms, status, end) and each run's summary
    invocations: list[dict[str, Any]] = field(default_factory=list)
    run_summaries: list[dict[str, Any]] = field(default_factory=list)
    ceiling: dict[str, Any] | None = None  # plan profiles: what the double alone served (double_ceiling)
    mapped: Any = None  # the mappings profile: bench.mapped.MappedRun


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def parse_bubble_time(text: str) -> float:
    """The double's ISO times (a record's Created Date, a log entry's time) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


@dataclass
class Stack:
    dsn: str
    admin_dsn: str
    double: BubbleDouble
    bubble_token: str
    logs: Path


def _profile_config(profile: Profile, settings: Settings) -> dict[str, str]:
    """The profile as stack config on top of Pulumi.local.yaml: it gets the SQL and the function settings
    such a stack gets (with mappings: their rows and triggers, and BUBBLE_SYNC_MAPPINGS)."""
    config = {
        "dispatchMode": profile.dispatch_mode,
        "batchSize": str(profile.batch_size),
        "concurrency": str(profile.concurrency),
        "bubbleBulkCreate": "true" if profile.bulk_create else "false",
        "bubbleRateLimitPerMinute": str(int(settings.rate_limit_per_minute)) if profile.paced else "0",
    }
    if profile.mapped:
        config["mappings"] = mapped_app.mappings_config()
    return config


@contextmanager
def local_stack(profile: Profile, settings: Settings, workdir: Path) -> Iterator[Stack]:
    state = workdir / profile.name
    state.mkdir(parents=True, exist_ok=True)
    logs = state / "logs"
    cluster = Cluster(state)
    started: list[Started] = []
    with ExitStack() as cleanup:
        cleanup.callback(cluster.destroy)

        def stop_started() -> None:
            for s in reversed(started):
                stop(s)

        cleanup.callback(stop_started)
        _log(f"[{profile.name}] starting PostgreSQL (pg_cron), pg_net worker, Bubble double, Deno host")
        cluster.create()
        started.append(start_pgnet_worker(cluster, logs))

        token = secrets.token_hex(16)
        app_knobs: dict[str, Any] = {"schema": mapped_app.SCHEMA} if profile.mapped else {}
        double = BubbleDouble(
            token=token,
            latency_ms=settings.latency_ms,
            latency_jitter_ms=settings.latency_jitter_ms,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            rate_limit_burst=settings.rate_limit_burst,
            bulk_ms_per_line=settings.bulk_ms_per_line,
            seed=settings.seed,
            **app_knobs,
        )
        double.start()
        cleanup.callback(double.stop)

        service_role_key = "sb_secret_bench_" + secrets.token_urlsafe(24)
        port = free_port()
        supabase_url = f"http://127.0.0.1:{port}"
        overrides = _profile_config(profile, settings)
        config = load_stack_config(
            LOCAL_STACK,
            overrides={
                **overrides,
                "supabaseUrl": supabase_url,
                "bubbleBaseUrl": double.url.rstrip("/") + BUBBLE_PREFIX,
            },
            secret_overrides={"bubbleApiToken": token},
        )
        host, _ = start_functions_host(
            functions_dir=Path(settings.functions_dir) if settings.functions_dir else FUNCTIONS_DIR,
            port=port,
            env=runtime_env(
                supabase_url=supabase_url,
                db_url=cluster.dsn(),
                service_role_key=service_role_key,
                extra={**{k: str(v) for k, v in function_env(config).items()}, **settings.function_env},
            ),
            log_path=logs / "functions_host.log",
        )
        cleanup.callback(stop_process, host)

        if profile.mapped:  # the stack's triggers go on the source tables: they must exist first
            with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute(mapped_app.TABLES)
        apply_stack_sql(
            LOCAL_STACK,
            overrides=overrides,
            dsn=cluster.dsn(),
            variables={"supabase_url": supabase_url, "service_role_key": service_role_key},
        )
        if profile.rows_per_invocation is not None:
            _limit_processor_job(cluster.dsn(), profile.rows_per_invocation)
        yield Stack(
            dsn=cluster.dsn(),
            admin_dsn=cluster.admin_dsn("postgres"),
            double=double,
            bubble_token=token,
            logs=logs,
        )


def _limit_processor_job(dsn: str, limit: int) -> None:
    """The seed's cron tick: the same request as invoke_bubble_sync_processor's, asking for one batch only."""
    command = (
        "select net.http_post("
        "url := (select rtrim(s.decrypted_secret, '/') from vault.decrypted_secrets s"
        " where s.name = 'supabase_url') || '/functions/v1/bubble_sync', "
        f"body := jsonb_build_object('action', 'process_queue_data_api', 'limit', {int(limit)}), "
        "headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || "
        "(select s.decrypted_secret from vault.decrypted_secrets s where s.name = 'service_role_key')), "
        "timeout_milliseconds := 5000)"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select cron.schedule(%s, '* * * * *', %s)", (PROCESSOR_JOB, command))


# -- the outage ---------------------------------------------------------------------------------------------


class ScheduledOutage:
    """Takes the Bubble double down at `begin_at` and back up `seconds` later, on a thread of its own, so the
    workload's loops keep their pace; records when each switch really happened.

    Leaving the context ends an outage still under way (Bubble is never left down) and cancels one not yet
    begun."""

    def __init__(self, double: BubbleDouble, begin_at: float, seconds: float) -> None:
        self._double = double
        self.begin_at = begin_at
        self.seconds = seconds
        self.began_at: float | None = None
        self.ended_at: float | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-outage", daemon=True)

    @property
    def planned_end(self) -> float:
        return self.begin_at + self.seconds

    def __enter__(self) -> ScheduledOutage:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._cancel.set()
        self._thread.join()

    def _run(self) -> None:
        if self._cancel.wait(max(0.0, self.begin_at - time.time())):
            return
        self._double.configure(outage_status=OUTAGE_STATUS)
        self.began_at = time.time()
        _log(f"Bubble down (every request answers {OUTAGE_STATUS}) for {self.seconds:g} s")
        self._cancel.wait(max(0.0, self.planned_end - time.time()))
        self._double.configure(outage_status=None)
        self.ended_at = time.time()
        _log("Bubble back up")

    def window(self) -> OutageWindow | None:
        """The outage as it happened; None if it never began (the run ended first)."""
        if self.began_at is None or self.ended_at is None:
            return None
        return OutageWindow(planned_seconds=self.seconds, began_at=self.began_at, ended_at=self.ended_at)


# -- the workload -------------------------------------------------------------------------------------------

_ENQUEUE = "select 1 from bubble_sync.enqueue(%s, %s, 'INSERT', %s::jsonb)"
_ENQUEUE_MANY = """
select count(*) from generate_series(1, %(n)s) g,
  lateral bubble_sync.enqueue(%(table)s, %(prefix)s || g, 'INSERT',
    jsonb_build_object('email', %(prefix)s || g || '@bench.example',
                       'first_name', 'Burst', 'last_name', 'U' || g))
"""


def profile_settings(profile: Profile, settings: Settings) -> Settings:
    """The settings a profile runs with: a plan's limit and its burst, or a backfill's rows, on top."""
    if profile.plan_per_minute is None:
        return settings
    per_minute = profile.plan_per_minute
    if profile.backfill_rows is not None:
        signups = settings.backfill_rows or profile.backfill_rows
    else:
        signups = max(1, round(per_minute / 60 * settings.plan_burst_seconds))
    return replace(
        settings,
        rate_limit_per_minute=per_minute,
        rate_limit_burst=per_minute / 60,  # a second's worth
        signups=signups,
        steady_fraction=0.0,
    )


def run_profile(profile: Profile, settings: Settings, workdir: Path | None = None) -> Observation:
    own_workdir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bubble-sync-bench-"))
    settings = profile_settings(profile, settings)
    if profile.mapped:
        from bench.mapped import drive  # bench/mapped.py imports this module: imported when needed
    else:
        drive = _drive
    try:
        with local_stack(profile, settings, workdir) as stack:
            observation = drive(profile, settings, stack)
            if profile.plan_per_minute is not None and profile.backfill_rows is None:
                ceiling = (mapped_app.CEILING_TYPE, mapped_app.CEILING_FIELDS) if profile.mapped else None
                observation.ceiling = double_ceiling(stack.double, stack.bubble_token, settings, ceiling)
            observation.invocations, observation.run_summaries = read_host_log(stack.logs)
            return observation
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def _drive(profile: Profile, settings: Settings, stack: Stack) -> Observation:
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


def double_ceiling(
    double: BubbleDouble, token: str, settings: Settings, thing: tuple[str, dict[str, object]] | None = None
) -> dict[str, Any]:
    """What the double serves alone on this machine: single creates from `ceiling_concurrency` loops for
    `ceiling_seconds` (bench/double_load.ts), its rate limit off meanwhile. `thing`: the data type and
    fields to create (default: users as the single-type profiles send them)."""
    _log(
        f"measuring the Bubble double alone: {settings.ceiling_concurrency} creates in flight for"
        f" {settings.ceiling_seconds:g} s"
    )
    double.configure(rate_limit_per_minute=0)
    try:
        done = subprocess.run(
            [
                deno_binary(),
                "run",
                "--allow-net",
                str(REPO_ROOT / "bench" / "double_load.ts"),
                double.url.rstrip("/") + BUBBLE_PREFIX,
                token,
                str(settings.ceiling_concurrency),
                str(settings.ceiling_seconds),
                *((thing[0], json.dumps(thing[1])) if thing else ()),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=settings.ceiling_seconds + 60,
        )
    finally:
        double.configure(
            rate_limit_per_minute=settings.rate_limit_per_minute, rate_limit_burst=settings.rate_limit_burst
        )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "concurrency": settings.ceiling_concurrency,
        "seconds": measured["seconds"],
        "requests": measured["requests"],
        "ok": measured["ok"],
        "requests_per_s": measured["ok"] / measured["seconds"],
    }


_INVOCATION = re.compile(r"^invocation function=bubble_sync (?P<fields>.*)$")
_RUN_SUMMARY = '{"event":"bubble_sync.run"'


def read_host_log(logs: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The function host's invocation lines (status, cpu_ms, wall_ms, end) and the runs' summaries."""
    invocations: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    path = logs / "functions_host.log"
    if not path.exists():
        return invocations, summaries
    for line in path.read_text(errors="replace").splitlines():
        found = _INVOCATION.match(line.strip())
        if found:
            fields = dict(part.split("=", 1) for part in found["fields"].split() if "=" in part)
            invocations.append(
                {
                    "status": int(fields.get("status", 0)),
                    "cpu_ms": int(fields.get("cpu_ms", 0)),
                    "wall_ms": int(fields.get("wall_ms", 0)),
                    "end": fields.get("end", ""),
                }
            )
        at = line.find(_RUN_SUMMARY)
        if at >= 0:
            try:
                summaries.append(json.loads(line[at:]))
            except ValueError:
                pass
    return invocations, summaries


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

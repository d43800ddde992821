"""Upgrading a stack in place: a stack deployed by the previous release converges under this code with one
`pulumi up`, and the queue does not notice.

The previous release's program is unpacked from git (`git archive`) and deployed with the real engine, the
README's way; rows are put in every state the queue has, two of them with leases a worker still holds. Then
the workspace's links are pointed at this tree and pulumi-up.yml's own command runs. While it runs, a watcher
polls the database: no row may disappear or change, no held lease may be taken away, and no cron job may call
a function that does not exist at that moment (a function whose return type changes is dropped and created
in one transaction, so the watcher must never see it missing). Afterwards the stack must be converged (the
drift check is clean), the functions must be exactly this release's, and the held leases must still work
with this release's verbs.

RELEASES lists the commits whose stacks this code must upgrade: add the previous main to it with every release
and keep the older entries that the built engine can still deploy (from 9181af6 on, the program can run
without the postgresql plugin: `manageExtensions: false`).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from components.sql.catalogue import functions
from devstack.pulumi_engine import PROJECT_ENTRIES, REPO_ROOT, Engine
from tests.engine_support import (
    STACK,
    Cli,
    Postgres,
    fresh_postgres,
    make_stack_the_readme_way,
    new_cli,
    secrets_in,
    stack_values,
    workflow_command,
)
from tests.management_api_double import running_double

#: commit -> what it was; each is a main that landed (CI passed) and that users may have deployed
RELEASES = {
    "db8f838": "issue 8 (the real Pulumi engine) and issue 9 steps 1-4",
    "daf83bb": "issue 9 (catalogue from sql/, failing_since, settle window)",
    "4451dda": "issues 10-11, issue 12 items 2-3 (real Bubble, preflight, batched verdicts, backfill)",
    "c79ac09": "issue 12 (parallel runs, per-record order in claim, plan benchmarks)",
    "dfaa985": "issue 18 (mappings as code) and issue 19's verification and alerts",
    "986db5c": "issue 20 items 1-4 (README as an entry point, each rule once, one job per module)",
}
DEPLOY = workflow_command("pulumi-up.yml", "pulumi up --refresh --yes")
DRIFT_CHECK = workflow_command("drift.yml", "pulumi preview --refresh --expect-no-changes")

# Rows in every state, written as plain rows (the table's columns outlive any one release's functions).
# The leases held run for an hour: a worker is still busy with them when the upgrade starts and ends.
ROWS = """
insert into public.sync_queue
  (table_name, record_id, operation, payload, status, retry_count, max_retries, next_retry_at,
   error_message, bubble_id, lease_token, lease_expires_at, completed_at)
values
  ('profiles', 'pending',          'INSERT', '{"email": "a@example.com"}', 'pending',    0, 3, null,
   null, null, null, null, null),
  ('profiles', 'pending-deferred', 'INSERT', '{"email": "b@example.com"}', 'pending',    0, 3,
   now() + interval '10 minutes', 'Bubble answered 429', null, null, null, null),
  ('profiles', 'held-1',           'INSERT', '{"email": "c@example.com"}', 'processing', 0, 3, null,
   null, null, %(held_1)s, now() + interval '1 hour', null),
  ('profiles', 'held-2',           'UPDATE', '{"email": "d@example.com"}', 'processing', 1, 3, null,
   null, '1700000000000x2', %(held_2)s, now() + interval '1 hour', null),
  ('profiles', 'lease-expired',    'INSERT', '{"email": "e@example.com"}', 'processing', 0, 3, null,
   null, null, %(expired)s, now() - interval '1 minute', null),
  ('profiles', 'completed',        'INSERT', '{"email": "f@example.com"}', 'completed',  0, 3, null,
   null, '1700000000000x6', null, null, now()),
  ('profiles', 'failed-retrying',  'INSERT', '{"email": "g@example.com"}', 'failed',     1, 3,
   now() + interval '30 seconds', 'Bubble answered 503', null, null, null, null),
  ('profiles', 'failed-for-good',  'INSERT', '{"email": "h@example.com"}', 'failed',     3, 3, null,
   'Bubble answered 400: bad field', null, null, null, null)
"""
# The columns the previous release made, as they were: a release may add columns (existing rows read NULL or
# the default there), never change what a row already holds.
COLUMNS = (
    "select string_agg(quote_ident(column_name), ', ' order by ordinal_position)"
    " from information_schema.columns where table_schema = 'public' and table_name = 'sync_queue'"
)


def all_rows(columns: str) -> str:
    return f"select {columns} from public.sync_queue order by record_id"


HELD_LEASES = "select record_id, lease_token from public.sync_queue where status = 'processing' order by 1"
# Our jobs whose command calls a function that does not exist (a job's command is one `select f(...)`).
JOBS_CALLING_NOTHING = r"""
select j.jobname, j.command
  from cron.job j
 where (j.jobname like 'bubble-sync%' or j.jobname like 'bubble_sync.%')
   and to_regproc(substring(j.command from '(?i)select\s+([a-z_][a-z0-9_.]*)\s*\(')) is null
"""
LIVE_FUNCTIONS = """
select p.oid::regprocedure::text
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'bubble_sync' or (n.nspname = 'public' and p.proname like 'invoke_bubble_sync_%')
 order by 1
"""


@dataclass
class Watch:
    """What the watcher saw while the upgrade ran: every difference from the starting state."""

    polls: int = 0
    problems: list[str] = field(default_factory=list)


@contextmanager
def watched(dsn: str) -> Iterator[Watch]:
    """Polls the database every 20 ms until the block ends, recording rows that changed or vanished, held
    leases that were broken, and jobs calling a missing function."""
    watch = Watch()
    stop = threading.Event()
    with psycopg.connect(dsn, autocommit=True) as conn:
        (columns,) = conn.execute(COLUMNS).fetchone()  # type: ignore[misc]
        rows_before = conn.execute(all_rows(columns)).fetchall()
        leases_before = conn.execute(HELD_LEASES).fetchall()

    def poll() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(all_rows(columns)).fetchall()
                if rows != rows_before:
                    watch.problems.append(f"rows changed: {rows_before} -> {rows}")
                leases = conn.execute(HELD_LEASES).fetchall()
                if leases != leases_before:
                    watch.problems.append(f"held leases changed: {leases_before} -> {leases}")
                for job, command in conn.execute(JOBS_CALLING_NOTHING).fetchall():
                    watch.problems.append(f"cron job {job} calls a missing function: {command}")
                watch.polls += 1
                time.sleep(0.02)

    thread = threading.Thread(target=poll, name="upgrade-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join(timeout=30)


def unpack_release(commit: str, into: Path) -> Path:
    """The program of `commit` (what a workspace links) unpacked from git into `into`."""
    # safe.directory: the clone may belong to another user than the one running the tests (CI as root)
    git = ["git", "-c", "safe.directory=*", "-C", str(REPO_ROOT)]
    found = subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail(
            f"commit {commit} (a release this code must upgrade) is not in this clone's history "
            f"({found.stderr.strip()}): clone without --depth, or `git fetch --unshallow`",
            pytrace=False,
        )
    entries = [name for name in PROJECT_ENTRIES if name != ".venv"]
    archive = subprocess.run(
        [*git, "archive", "--format=tar", commit, *entries], capture_output=True, check=True
    )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_workflow(cli: Cli, args: list[str], env: dict[str, str | None]) -> Any:
    cli.env.update(env)
    return cli.run([a.replace("$STACK", STACK) for a in args])


@pytest.mark.parametrize("release", sorted(RELEASES), ids=lambda c: f"from {c}")
def test_a_stack_of_the_previous_release_upgrades_in_place(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, release: str
) -> None:
    old_tree = unpack_release(release, tmp_path_factory.mktemp("release") / release)
    token = "sbp_upgradetest_" + uuid.uuid4().hex
    with running_double(token) as api, fresh_postgres(tmp_path_factory.mktemp("upgrade-pg")) as postgres:
        cli = new_cli(engine, tmp_path_factory.mktemp("upgrade-ws"))
        cli.workspace.prepare(source=old_tree)
        old_code = {"PYTHONPATH": str(old_tree)}
        values, secret_values = stack_values(postgres, api, token)
        assert make_stack_the_readme_way(cli, values) == {}
        deployed = run_workflow(cli, DEPLOY, old_code)
        assert deployed.code == 0, deployed.output
        assert postgres.query(JOBS_CALLING_NOTHING) == []

        held = {"held_1": str(uuid.uuid4()), "held_2": str(uuid.uuid4()), "expired": str(uuid.uuid4())}
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            conn.execute(ROWS, held)
        (columns,) = postgres.query(COLUMNS)[0]
        rows_before = postgres.query(all_rows(columns))
        assert len(rows_before) == 8

        cli.workspace.prepare()  # this release's program
        with watched(postgres.dsn) as watch:
            upgraded = run_workflow(cli, DEPLOY, {"PYTHONPATH": None})
        assert upgraded.code == 0, upgraded.output
        assert watch.polls > 10 and watch.problems == []

        assert_converged(cli, postgres)
        assert postgres.query(all_rows(columns)) == rows_before
        # every row still to be applied has its place in the queue order (completed rows need none)
        unordered = (
            "select record_id from public.sync_queue where queue_order is null and status <> 'completed'"
        )
        assert postgres.query(unordered) == []
        assert_held_leases_still_work(postgres, held)
        assert_the_queue_takes_backfilled_rows(postgres)
        assert secrets_in("\n".join(cli.transcript), secret_values) == []


def assert_converged(cli: Cli, postgres: Postgres) -> None:
    """One `up` was enough: nothing left to change, and exactly this release's functions exist."""
    check = run_workflow(cli, DRIFT_CHECK, {})
    assert check.code == 0, check.output
    ours = postgres.query(
        "select coalesce(to_regprocedure(f)::text, f) from unnest(%s::text[]) f order by 1",
        ([f.regprocedure for f in functions()],),
    )
    assert postgres.query(LIVE_FUNCTIONS) == ours
    assert postgres.query(JOBS_CALLING_NOTHING) == []


def assert_the_queue_takes_backfilled_rows(postgres: Postgres) -> None:
    """The queue a release before backfills created allowed the operations INSERT and UPDATE only: upgraded
    in place, it takes BACKFILL rows, and claim hands them out after the changes (the rebuilt index's
    order)."""
    postgres.execute("create table public.profiles (id bigint primary key, email text)")
    postgres.execute("insert into public.profiles values (1, 'a@example.com'), (2, 'b@example.com')")
    queued = postgres.query(
        "select * from bubble_sync.enqueue_backfill('public.profiles', 'id', '{email}',"
        " array(select to_jsonb(p) from public.profiles p order by id))"
    )
    assert queued == [(2, 0)]
    definitions = dict(postgres.query(
        "select conname, pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = 'public.sync_queue'::regclass and conname = 'sync_queue_operation_valid'"
    ))  # fmt: skip
    assert "'BACKFILL'" in definitions["sync_queue_operation_valid"]
    (index,) = postgres.query("select indexdef from pg_indexes where indexname = 'sync_queue_pending_idx'")
    assert "BACKFILL" in index[0]
    claimed = postgres.query("select operation from bubble_sync.claim('process_queue_data_api', 10, 60)")
    assert claimed[-2:] == [("BACKFILL",), ("BACKFILL",)] and ("INSERT",) in claimed[:-2]


def assert_held_leases_still_work(postgres: Postgres, held: dict[str, str]) -> None:
    """The worker that held leases before the upgrade finishes them with this release's verbs; the lease
    that had run out comes back through reclaim with its attempt counted."""
    complete = postgres.query("select bubble_sync.complete(%s::uuid, 'bubble-1')", (held["held_1"],))
    assert complete == [(True,)]
    failed = postgres.query(
        "select bubble_sync.fail(%s::uuid, 'Bubble answered 503', 'retryable')", (held["held_2"],)
    )
    assert failed[0][0] not in (None, False)
    assert postgres.query("select bubble_sync.reclaim()") == [(1,)]
    states = dict(postgres.query("select record_id, status from public.sync_queue"))
    assert (states["held-1"], states["held-2"], states["lease-expired"]) == ("completed", "failed", "pending")

"""`python -m components backfill` and its SQL (sql/functions/backfill.sql, sql/operator_backfill.sql) against
real PostgreSQL with the queue layer: what it queues (exactly what the signup trigger writes), chunk by chunk
and resumable, what it skips, its flags' checks, its progress; the claim order that keeps backfilled rows
behind signups. The Edge Function's side (look up, link, bulk create) against the Bubble double is in
tests/test_backfill_sync.py.

Why one module: its tests share the `conn` and `backfill` helpers and follow one command from what it queues
through chunks, interruption and progress to where the claim puts what it queued.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from components.__main__ import main
from components.operator import backfill as bf
from components.sql.templates import QUEUE_FILES
from tests.conftest import Database, apply_sql
from tests.queue_support import T0, at, claim, enqueue

ROOT = Path(__file__).resolve().parent.parent

PROFILES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  serial     integer generated always as identity unique,
  email      text,
  first_name text,
  created_at timestamptz not null default '2025-01-06 09:00+00',
  password_hash text
);
"""


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def add_profiles(
    conn: psycopg.Connection[Any], count: int, *, start: int = 0, domain: str = "example.com"
) -> None:
    conn.execute(
        "insert into public.profiles (email, first_name, password_hash)"
        " select 'u' || i || '@' || %s, 'Ada ' || i, 'secret-' || i from generate_series(%s::int, %s::int) i",
        (domain, start, start + count - 1),
    )


def queue_rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return conn.execute(
        "select table_name, record_id, operation, payload, status from public.sync_queue order by record_id"
    ).fetchall()


def backfill(db: Database, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backfill", "--database-url", db.dsn, "--no-follow", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- what it queues ------------------------------------------------------------------------------------------

MEMBERS = """
create schema app;
create table app.members (
  member_no  bigint primary key,
  email      text not null,
  joined_at  timestamptz not null,
  born_on    date,
  score      numeric(10, 3),
  ratio      double precision,
  active     boolean,
  tags       text[],
  prefs      jsonb,
  api_key    text,
  note       text
);
"""
MEMBER_ROWS = """
insert into app.members values
  (1, 'a@example.com', '2024-02-29 23:59:59.123456+05:30', '1990-01-01', 12.5, 0.1, true, '{x,"y z"}',
   '{"b": [1, 2], "a": null}', 'key-1', 'it''s'),
  (20, 'b@example.com', '2025-01-01 00:00+00', null, null, 1e20, false, '{}', 'null', null, null),
  (300, 'c@example.com', '2025-06-01 12:00+00', '2000-02-29', -0.001, 'NaN', null, null, '[1, "two"]', 'k',
   E'line\\nbreak \\u00e9')
"""


ALLOW_LIST = ("email", "joined_at", "born_on", "score", "ratio", "active", "tags", "prefs", "note")


@pytest.mark.parametrize("allow_list", [ALLOW_LIST, ()], ids=["allow-list", "every-column"])
def test_backfilled_rows_are_exactly_what_the_signup_trigger_writes(
    queue_db: Database,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    allow_list: tuple[str, ...],
) -> None:
    # The trigger's own rows for the same records, types and all (a schema outside public, a bigint key)
    conn.execute(MEMBERS)
    args = ", ".join(f"'{a}'" for a in ("member_no", *allow_list))
    conn.execute(
        f"create trigger bubble_sync_enqueue after insert or update on app.members"
        f" for each row execute function bubble_sync.enqueue_change({args})"
    )
    conn.execute(MEMBER_ROWS)
    by_trigger = [(r["table_name"], r["record_id"], r["payload"]) for r in queue_rows(conn)]
    assert len(by_trigger) == 3 and by_trigger[0][:2] == ("app.members", "1")
    conn.execute("truncate public.sync_queue")

    # the flags default to the trigger's own arguments
    code, out, err = backfill(queue_db, capsys, "--from", "app.members")
    assert code == 0, err
    rows = queue_rows(conn)
    assert [(r["table_name"], r["record_id"], r["payload"]) for r in rows] == by_trigger
    assert {(r["operation"], r["status"]) for r in rows} == {("BACKFILL", "pending")}
    if not allow_list:  # every column but those that look like credentials, as the trigger sends them
        assert "api_key" not in rows[0]["payload"] and rows[0]["payload"]["note"] == "it's"
    assert "queued 3 rows in 1 chunks" in out


def test_chunks_in_key_order_one_transaction_each(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 1050)
    code, out, err = backfill(queue_db, capsys, "--from", "profiles", "--fields", "email,first_name",
                              "--chunk-size", "100")  # fmt: skip
    assert code == 0, err
    assert "1,050 rows" in out and "to queue 1,050; skipped 0" in out
    assert "queued 1,050 rows in 11 chunks" in out
    stats = conn.execute(
        "select count(*) as n, count(distinct record_id) as records,"
        " count(distinct xmin::text) as transactions from public.sync_queue"
    ).fetchone()
    assert stats == {"n": 1050, "records": 1050, "transactions": 11}
    # each chunk holds the next 100 keys: keyset pagination over the key, in the key's own order
    chunks: dict[str, list[Any]] = {}
    for row in conn.execute("select q.xmin::text as tx, p.id from public.sync_queue q"
                            " join public.profiles p on p.id::text = q.record_id").fetchall():  # fmt: skip
        chunks.setdefault(row["tx"], []).append(row["id"])
    ranges = sorted((min(ids), max(ids)) for ids in chunks.values())  # uuid order, as PostgreSQL's
    assert all(high < low for (_, high), (low, _) in zip(ranges, ranges[1:], strict=False))
    assert sorted(len(ids) for ids in chunks.values()) == [50] + [100] * 10
    payload = conn.execute("select payload from public.sync_queue limit 1").fetchone()["payload"]
    assert set(payload) == {"email", "first_name"}  # nothing else: not the password hash


def test_a_change_meets_its_backfilled_row_and_a_rerun_skips_it(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute(PROFILES)
    conn.execute(
        "create trigger bubble_sync_enqueue after insert or update on public.profiles"
        " for each row execute function bubble_sync.enqueue_change('id', 'email', 'first_name')"
    )
    conn.execute("alter table public.profiles disable trigger bubble_sync_enqueue")  # records from before
    add_profiles(conn, 3)
    conn.execute("alter table public.profiles enable trigger bubble_sync_enqueue")
    assert backfill(queue_db, capsys, "--from", "public.profiles")[0] == 0
    # the record changes while its backfilled row waits: one row, still a BACKFILL, with the new payload
    conn.execute("update public.profiles set first_name = 'Grace' where email = 'u0@example.com'")
    rows = queue_rows(conn)
    assert len(rows) == 3 and {r["operation"] for r in rows} == {"BACKFILL"}
    assert {r["payload"]["first_name"] for r in rows} == {"Grace", "Ada 1", "Ada 2"}
    # a re-run finds every record queued
    code, out, _ = backfill(queue_db, capsys, "--from", "public.profiles")
    assert code == 0 and "to queue 0; skipped 3" in out and "queued 0 rows" in out
    assert len(queue_rows(conn)) == 3


def test_records_the_queue_has_in_any_state_are_skipped(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 8)
    ids = [r["id"] for r in conn.execute("select id::text from public.profiles order by id").fetchall()]
    states = [
        ("INSERT", "pending", 0),
        ("UPDATE", "processing", 0),
        ("INSERT", "completed", 0),  # synced
        ("INSERT", "failed", 1),  # retrying
        ("INSERT", "failed", 3),  # failed for good
        ("BACKFILL", "completed", 0),  # an earlier backfill
    ]
    for record_id, (operation, status, retries) in zip(ids, states, strict=False):
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, status, retry_count,"
            " lease_token, lease_expires_at) values ('profiles', %s, %s, %s, %s,"
            " case when %s = 'processing' then gen_random_uuid() end,"
            " case when %s = 'processing' then now() + interval '1 minute' end)",
            (record_id, operation, status, retries, status, status),
        )
    # another table's row for the same id is another record
    conn.execute(
        "insert into public.sync_queue (table_name, record_id, operation) values ('other', %s, 'INSERT')",
        (ids[6],),
    )
    code, out, _ = backfill(queue_db, capsys, "--from", "profiles", "--fields", "email", "--dry-run")
    assert code == 0 and "to queue 2; skipped 6" in out and "dry run: would queue 2 rows and skip 6" in out
    code, out, _ = backfill(queue_db, capsys, "--from", "profiles", "--fields", "email")
    assert code == 0 and "queued 2 rows" in out and "skipped 6" in out
    backfilled = conn.execute(
        "select record_id from public.sync_queue where table_name = 'profiles' and operation = 'BACKFILL'"
        " and status = 'pending' order by 1"
    ).fetchall()
    assert [r["record_id"] for r in backfilled] == ids[6:]


def test_where_and_dry_run(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 30)
    add_profiles(conn, 20, start=100, domain="old.example.org")
    conn.execute("update public.profiles set email = null where email = 'u0@example.com'")
    where = "email like '%@old.example.org' -- a trailing comment; and a percent sign"
    code, out, err = backfill(queue_db, capsys, "--from", "profiles", "--fields", "email", "--where", where,
                              "--dry-run")  # fmt: skip
    assert code == 0, err
    assert "20 rows" in out and "dry run: would queue 20 rows and skip 0; nothing was queued" in out
    assert queue_rows(conn) == []
    code, out, _ = backfill(queue_db, capsys, "--from", "profiles", "--fields", "email", "--where", where)
    assert code == 0 and "queued 20 rows" in out
    assert {r["payload"]["email"].split("@")[1] for r in queue_rows(conn)} == {"old.example.org"}


def test_rows_with_a_null_key_are_left_out_and_said_so(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute("create table public.people (email text unique, name text)")
    conn.execute("insert into public.people values ('a@example.com', 'A'), (null, 'B'), (null, 'C')")
    code, out, _ = backfill(queue_db, capsys, "--from", "people", "--key", "email", "--fields", "name")
    assert code == 0 and "left out 2 with a NULL email" in out and "queued 1 rows" in out
    assert [r["record_id"] for r in queue_rows(conn)] == ["a@example.com"]


# -- the flags, checked before anything is queued ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (["--from", "public.nope", "--fields", "email"], "", "--from public.nope: no such table"),
        (["--from", "a.b.c.d", "--fields", "email"], "", "--from a.b.c.d: "),
        (["--from", "profile_view", "--fields", "email"],
         "create view profile_view as select * from profiles", "--from profile_view is a view"),
        (["--from", "profiles", "--key", "uid", "--fields", "email"], "",
         "--key uid: public.profiles has no column uid"),
        (["--from", "profiles", "--key", "email", "--fields", "first_name"], "",
         "--key email: public.profiles has no primary key or unique index on email alone"),
        (["--from", "profiles", "--fields", "email,First_Name"], "",
         "--fields: public.profiles has no column First_Name (did you mean first_name?"),
        (["--from", "profiles", "--fields", "email,email"], "", "--fields names email more than once"),
        (["--from", "profiles"], "", "--fields is required: public.profiles has no signup trigger"),
        (["--from", "profiles", "--fields", "email", "--where", "emial = 'x'"], "",
         "--where \"emial = 'x'\": "),
        (["--from", "profiles", "--fields", "email", "--where", "1 / (serial - serial) = 1"], "",
         "failed while counting the rows: division by zero"),
        (["--from", "profiles", "--fields", "email", "--where", "true; delete from profiles"], "",
         "--where 'true; delete from profiles'"),
        (["--from", "profiles", "--key", "serial", "--fields", "email"],
         "create trigger t after insert on profiles for each row"
         " execute function bubble_sync.enqueue_change('id')",
         "--key serial: the signup trigger t on public.profiles keys records by id"),
        (["--from", "profiles", "--fields", "email", "--chunk-size", "0"], "",
         "--chunk-size 0: must be between"),
        (["--from", "profiles", "--fields", "email"],
         "drop function bubble_sync.enqueue_backfill(regclass, text, text[], jsonb[], timestamptz)",
         "without bubble_sync.enqueue_backfill: run `pulumi up` for this stack first"),
        (["--from", "profiles", "--fields", "email"],
         "alter table public.sync_queue drop constraint sync_queue_operation_valid, add constraint"
         " sync_queue_operation_valid check (operation in ('INSERT', 'UPDATE'))",
         "public.sync_queue refuses a BACKFILL row (new row for relation \"sync_queue\" violates check"),
    ],
    ids=["no-table", "bad-name", "view", "no-key", "key-not-unique", "no-field", "field-twice", "no-fields",
         "where-unknown-column", "where-fails-on-a-row", "where-two-statements", "key-not-the-triggers",
         "chunk-size", "release-before-backfill", "constraint-before-backfill"],
)  # fmt: skip
def test_a_flag_that_does_not_fit_is_named_and_nothing_is_queued(
    queue_db: Database,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    setup: str,
    message: str,
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 5)
    if setup:
        conn.execute(setup)
    code, out, err = backfill(queue_db, capsys, *args)
    assert code == 2, out + err
    assert message in err and err.endswith("(exit 2)\n"), err
    assert conn.execute("select count(*) as n from public.sync_queue").fetchone()["n"] == 0
    assert "queued" not in out


def test_fields_other_than_the_triggers_are_a_warning(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute(PROFILES)
    conn.execute(
        "create trigger signup after insert on profiles for each row"
        " execute function bubble_sync.enqueue_change('id', 'email', 'first_name')"
    )
    code, out, _ = backfill(queue_db, capsys, "--from", "profiles", "--fields", "email", "--dry-run")
    assert code == 0
    assert (
        "warning: --fields differ from the allow-list of the signup trigger signup (email, first_name)" in out
    )


def test_an_adopted_queue_takes_backfilled_rows(db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    # the seed's hand-made queue: uuid ids, a unique index on pending rows per record, its own operations
    with db.connect() as c:
        c.execute(ADOPTED_QUEUE)
        for relative_path in QUEUE_FILES:
            apply_sql(c, relative_path)
    with psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute(PROFILES)
        add_profiles(c, 10)
        code, out, err = backfill(db, capsys, "--from", "profiles", "--fields", "email")
        assert code == 0, err
        assert "queued 10 rows" in out
        (claimed,) = claim(c, limit=1, now=at(3600))  # the adopted table's own create first
        assert claimed["operation"] == "SIGNUP_ATOMIC"


ADOPTED_QUEUE = """
create table public.sync_queue (
  id              uuid primary key default gen_random_uuid(),
  table_name      text not null,
  record_id       text not null,
  operation       text not null,
  payload         jsonb,
  status          text default 'pending' not null,
  retry_count     integer default 0,
  max_retries     integer default 3,
  created_at      timestamptz default now(),
  next_retry_at   timestamptz,
  idempotency_key text unique
);
create unique index idx_sync_queue_pending_unique on public.sync_queue (table_name, record_id)
  where status = 'pending';
insert into public.sync_queue (table_name, record_id, operation, created_at)
values ('profiles', 'x', 'SIGNUP_ATOMIC', '2025-01-01 10:00+00');
"""


# -- interrupted and resumed ---------------------------------------------------------------------------------


def test_an_interrupted_run_keeps_its_chunks_and_a_rerun_queues_the_rest(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 250)
    with psycopg.connect(queue_db.dsn, autocommit=True) as c:
        plan = bf.plan_backfill(c, source="profiles", key=None, fields=["email"], where=None, chunk_size=40)
        counts = bf.Counts()
        chunks = 0

        def interrupt_after_three() -> None:
            nonlocal chunks
            chunks += 1
            if chunks == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            bf.queue_chunks(c, plan, counts, on_chunk=interrupt_after_three)
    assert (counts.chunks, counts.queued) == (3, 120)
    assert len(queue_rows(conn)) == 120
    code, out, _ = backfill(queue_db, capsys, "--from", "profiles", "--fields", "email", "--chunk-size", "40")
    assert code == 0 and "queued 130 rows" in out and "skipped 120" in out
    rows = queue_rows(conn)
    assert len(rows) == 250 and len({r["record_id"] for r in rows}) == 250


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 60_000)
    command = [sys.executable, "-m", "components", "backfill", "--database-url", queue_db.dsn, "--from",
               "profiles", "--fields", "email,first_name", "--chunk-size", "20",
               "--progress-interval", "0.05"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command + ["--no-follow"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the first progress line: chunks are being committed
        lines.append(line)
        if line.startswith("queueing:") and not line.startswith("queueing: 0/"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + out + err
    said = re.search(r"interrupted: ([\d,]+) rows queued by this run \((\d[\d,]*) chunks committed", err)
    assert said, err
    assert "Queued rows keep syncing without this command" in err and "Traceback" not in err
    queued = int(said.group(1).replace(",", ""))
    assert 0 < queued < 60_000
    in_queue = conn.execute("select count(*) as n from public.sync_queue").fetchone()["n"]
    assert in_queue == queued  # every committed chunk, and nothing of the one in flight
    assert (
        conn.execute("select count(*) as n from pg_stat_activity where state like 'idle in%'").fetchone()["n"]
        == 0
    )

    rerun = subprocess.run(command + ["--no-follow"], cwd=ROOT, env=env, text=True, capture_output=True,
                           timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {queued:,} already in the queue" in rerun.stdout
    stats = conn.execute(
        "select count(*) as n, count(distinct record_id) as records from public.sync_queue"
    ).fetchone()
    assert stats == {"n": 60_000, "records": 60_000}


def test_ctrl_c_just_after_a_chunk_committed_counts_it_and_exits_cleanly(
    queue_db: Database, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C can land after the server committed a chunk and before the run counted it (seen under load:
    the message said 20 queued with 40 in the queue, or the session, left mid-command, failed the exit with a
    traceback). The database's count is what the run says, and the exit is 130."""
    from components.operator.backfill import chunks

    conn.execute(PROFILES)
    add_profiles(conn, 100)
    real = chunks._one_chunk
    calls = 0

    def committed_then_interrupted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        row = real(*args, **kwargs)  # committed
        if calls == 3:
            raise KeyboardInterrupt  # before queue_chunks counts it
        return row

    monkeypatch.setattr(chunks, "_one_chunk", committed_then_interrupted)
    out, err = io.StringIO(), io.StringIO()
    code = bf.run_backfill(
        queue_db.dsn, source="profiles", fields=["email"], chunk_size=20, out=out, err=err, tty=False,
        follow_sync=False,
    )  # fmt: skip
    assert code == bf.EXIT_INTERRUPTED, out.getvalue() + err.getvalue()
    assert conn.execute("select count(*) as n from public.sync_queue").fetchone()["n"] == 60
    assert "interrupted: 60 rows queued by this run (3 chunks committed" in err.getvalue()


# -- progress ------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_one_updating_line_on_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    progress = bf.Progress(out, to_scan=1000, to_queue=900, tty=True, clock=clock)
    clock.now += 2
    progress.show("queueing", bf.Counts(chunks=4, scanned=400, queued=350, skipped=50, synced=10))
    clock.now += 0.1
    progress.show(
        "queueing", bf.Counts(chunks=5, scanned=500, queued=450)
    )  # under the redraw interval: not shown
    clock.now += 0.2
    progress.show("queueing", bf.Counts(chunks=5, scanned=500, queued=450, skipped=50, synced=20, failed=1))
    progress.close()
    text = out.getvalue()
    assert text.count("\r\x1b[2K") == 2 and text.endswith("\n") and text.count("\n") == 1
    last = text.rsplit("\r\x1b[2K", 1)[1]
    # 450 queued in 2.3 s; 500 of 1,000 rows read in 2.3 s: 2.3 s to go
    assert last == "queueing: 450/900 queued, 20 synced, 1 failed; 196 rows/s queued, ETA 2s\n"


def test_progress_to_a_log_is_a_line_every_interval_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    progress = bf.Progress(out, to_scan=100, to_queue=100, tty=False, interval=10, clock=clock)
    counts = bf.Counts(queued=100, synced=0, outstanding=100)
    for _ in range(30):  # 30 s, synced 2 rows a second
        clock.now += 1
        counts.synced += 2
        counts.outstanding -= 2
        progress.show("syncing", counts)
    assert out.getvalue().splitlines() == [
        "syncing: 100 queued, 2/100 synced, 0 failed; 2 rows/s synced, ETA 49s",
        "syncing: 100 queued, 22/100 synced, 0 failed; 2 rows/s synced, ETA 39s",
        "syncing: 100 queued, 42/100 synced, 0 failed; 2 rows/s synced, ETA 29s",
    ]
    counts.failed, counts.retrying, counts.outstanding = 3, 2, counts.outstanding - 3
    progress.show("syncing", counts, force=True)
    assert (
        out.getvalue().splitlines()[-1]
        == "syncing: 100 queued, 60/100 synced, 3 failed (2 retrying); 2 rows/s synced, ETA 18s"
    )


def test_following_shows_the_rows_sync_until_none_is_left(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    """run_backfill with following: the worker is played by `sleep`, which syncs 40 rows a poll (one for
    good: failed), so the follow sees progress, then the end."""
    conn.execute(PROFILES)
    add_profiles(conn, 100)
    clock = Clock()
    polls = 0

    def sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        clock.now += seconds
        conn.execute(
            "update public.sync_queue set status = 'completed', completed_at = now() where id in"
            " (select id from public.sync_queue where status = 'pending' order by id limit 40)"
        )
        if polls == 1:
            conn.execute(
                "update public.sync_queue set status = 'failed', retry_count = 3, error_message = 'x'"
                " where id = (select min(id) from public.sync_queue where status = 'completed')"
            )

    out, err = io.StringIO(), io.StringIO()
    code = bf.run_backfill(
        queue_db.dsn, source="profiles", key=None, fields=["email"], where=None, chunk_size=30,
        progress_interval=1, out=out, err=err, tty=False, clock=clock, sleep=sleep,
        status_hint="python -m components status --stack dev",
    )  # fmt: skip
    text = out.getvalue()
    assert code == bf.EXIT_FAILED, text + err.getvalue()
    assert "queued 100 rows in 4 chunks" in text
    syncing = [line for line in text.splitlines() if line.startswith("syncing:")]
    assert syncing[0].startswith("syncing: 100 queued, 0/100 synced, 0 failed;")
    assert syncing[-1].startswith("syncing: 100 queued, 99/100 synced, 1 failed;") and syncing[-1].endswith(
        "ETA 0s"
    )
    assert any("39/100 synced" in line for line in syncing)
    assert text.endswith(
        "done: 99 synced, 1 failed for good: `python -m components status --stack dev` shows why;"
        " fix the cause, then `requeue` them (exit 1)\n"
    )


def test_following_says_where_to_look_when_nothing_syncs(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 3)
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.now += 30
        if clock.now > 1000 + 200:  # the worker comes back after 3 minutes
            conn.execute("update public.sync_queue set status = 'completed'")

    out = io.StringIO()
    code = bf.run_backfill(
        queue_db.dsn, source="profiles", key=None, fields=["email"], where=None, out=out, err=io.StringIO(),
        tty=False, clock=clock, sleep=sleep,
    )  # fmt: skip
    assert code == 0
    hints = [line for line in out.getvalue().splitlines() if line.startswith("nothing synced")]
    assert hints == [
        "nothing synced for 2m00s while 3 rows wait: is the processor running? `python -m components status`"
        " says why"
    ]


# -- in the queue: signups first -----------------------------------------------------------------------------


def test_claim_takes_every_pending_change_before_backfilled_rows(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 30)
    with psycopg.connect(queue_db.dsn, autocommit=True) as c:
        plan = bf.plan_backfill(c, source="profiles", key=None, fields=["email"], where=None)
        assert bf.queue_chunks(c, plan, bf.Counts()).queued == 30
    conn.execute("update public.sync_queue set created_at = %s", (at(0),))  # backfilled first, at T0
    enqueue(conn, "signup-1", now=at(60))  # a minute later
    enqueue(conn, "signup-2", operation="UPDATE", now=at(120))
    first = claim(conn, limit=3, now=at(180))
    assert [r["record_id"] for r in first[:2]] == ["signup-1", "signup-2"]
    assert first[2]["operation"] == "BACKFILL"
    assert len(claim(conn, limit=100, now=at(180))) == 29


def test_health_leaves_backfilled_rows_out_of_the_oldest_pending_age(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "insert into public.sync_queue (table_name, record_id, operation, created_at)"
        " values ('profiles', 'old', 'BACKFILL', %s), ('profiles', 'new', 'INSERT', %s)",
        (T0, at(3000)),
    )
    health = conn.execute("select * from bubble_sync.health(%s)", (at(3600),)).fetchone()
    assert health["pending_items"] == 2
    assert health["oldest_pending_age"].total_seconds() == 600


def test_a_chunk_waits_for_a_change_of_the_same_record_then_skips_it(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    """The signup trigger of a record holds the record's lock until its transaction ends: the chunk gives way
    (lock_timeout), is tried again, then sees the trigger's row and skips the record."""
    conn.execute(PROFILES)
    add_profiles(conn, 5)
    conn.execute(
        "create trigger bubble_sync_enqueue after update on public.profiles"
        " for each row execute function bubble_sync.enqueue_change('id', 'email')"
    )
    with psycopg.connect(queue_db.dsn) as changer:
        changer.execute("update public.profiles set email = 'new@example.com' where email = 'u2@example.com'")
        result: dict[str, Any] = {}

        def run() -> None:
            with psycopg.connect(queue_db.dsn, autocommit=True) as c:
                plan = bf.plan_backfill(c, source="profiles", key=None, fields=["email"], where=None)
                started = time.monotonic()
                result["counts"] = bf.queue_chunks(c, plan, bf.Counts())
                result["took"] = time.monotonic() - started

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(1.5)
        assert worker.is_alive(), "the chunk did not wait for the record's lock"
        changer.commit()
        worker.join(timeout=30)
    assert (result["counts"].queued, result["counts"].skipped) == (4, 1) and result["took"] >= 1
    ops = {r["payload"]["email"]: r["operation"] for r in queue_rows(conn)}
    assert ops == {"new@example.com": "UPDATE", **{f"u{i}@example.com": "BACKFILL" for i in (0, 1, 3, 4)}}


def test_each_chunk_reads_the_key_index_from_where_the_last_ended(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(PROFILES)
    add_profiles(conn, 20_000)
    conn.execute("analyze public.profiles")
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.prepare_threshold = None
        plan = bf.plan_backfill(c, source="profiles", key=None, fields=["email"], where=None)
        after = c.execute("select id::text from public.profiles order by id offset 10000 limit 1").fetchone()[
            "id"
        ]
        query = plan.compose("queue_chunk")
        params = {"source_oid": plan.source_oid, "key_column": "id", "fields": ["email"], "chunk_size": 500}
        for value in (None, after):
            explain = psycopg.sql.SQL("explain ") + query
            lines = [r["QUERY PLAN"] for r in c.execute(explain, {**params, "after": value}).fetchall()]
            text = "\n".join(lines)
            # the page: at most 500 entries of the primary key's index, read in order from `after`
            page = text[: text.index("InitPlan")]
            assert "Limit" in page and "Index Scan using profiles_pkey on profiles" in page, text
            assert "Sort" not in page and "Seq Scan" not in text, text
            if value is not None:
                assert re.search(r"Index Cond: \(\(id IS NOT NULL\) AND \(id > ", page), text


def test_the_stack_gives_the_connection_and_the_hint(
    queue_db: Database, conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    parts = urlsplit(queue_db.dsn)
    (tmp_path / "Pulumi.ops.yaml").write_text(
        "config:\n  bubble-sync:projectRef: localdevstackproject\n"
        f"  bubble-sync:dbHost: {parts.hostname}\n  bubble-sync:dbPort: {parts.port}\n"
        f"  bubble-sync:dbName: {parts.path.lstrip('/')}\n  bubble-sync:dbSslMode: disable\n"
        "  bubble-sync:dbPassword:\n    secure: v1:AAAAAAAAAAAAAAAA:not-readable-here\n",
        encoding="utf-8",
    )
    conn.execute(PROFILES)
    add_profiles(conn, 2)
    monkeypatch.delenv("BUBBLE_SYNC_DATABASE_URL", raising=False)
    monkeypatch.setenv("PGPASSWORD", parts.password or "")
    args = [
        "backfill",
        "--stack",
        "ops",
        "--project-dir",
        str(tmp_path),
        "--from",
        "profiles",
        "--fields",
        "email",
    ]
    assert main([*args, "--no-follow"]) == 0
    out = capsys.readouterr().out
    assert "queued 2 rows" in out and "`python -m components status --stack ops` shows the queue" in out
    assert (parts.password or "") not in out


def test_a_chunk_probes_the_queue_per_record_whatever_its_statistics(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    """A backfill grows the queue by thousands of rows between two analyzes. Which records of a chunk the
    queue has must stay one index probe per record: planned as a join from the old statistics, it read every
    row of the table, for every chunk (100,000 rows took minutes instead of seconds)."""
    conn.execute(PROFILES)
    add_profiles(conn, 20_000)
    with psycopg.connect(queue_db.dsn, autocommit=True) as c:
        plan = bf.plan_backfill(c, source="profiles", key=None, fields=["email"], where=None, chunk_size=2000)
        assert bf.queue_chunks(c, plan, bf.Counts()).queued == 20_000  # never analyzed since
    conn.execute("delete from public.sync_queue where id % 1000 = 0")
    plans: list[str] = []
    with psycopg.connect(queue_db.admin_dsn, autocommit=True, row_factory=dict_row) as admin:
        admin.prepare_threshold = None
        admin.execute("load 'auto_explain'")
        admin.execute("set auto_explain.log_min_duration = 0")
        admin.execute("set auto_explain.log_nested_statements = on")
        admin.execute("set client_min_messages = log")
        admin.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        params = {"source_oid": plan.source_oid, "key_column": "id", "fields": ["email"], "chunk_size": 2000}
        with admin.transaction():
            row = admin.execute(plan.compose("queue_chunk"), {**params, "after": None}).fetchone()
    assert (row["queued"], row["skipped"]) == (2, 1998)
    scans = [line.strip(" ->") for text in plans for line in text.splitlines() if "on sync_queue" in line]
    assert scans and all(s.startswith(("Index Only Scan", "Index Scan", "Insert on")) for s in scans), scans
    assert any("Index Cond: ((table_name = $" in text and "AND (record_id = $" in text for text in plans)

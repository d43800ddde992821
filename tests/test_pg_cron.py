"""The real pg_cron, as Supabase configures it, runs in the devstack cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import Database

JOB = "devstack-cron-probe"


@pytest.fixture
def probe_table(cron_db: Database) -> Iterator[str]:
    with cron_db.connect() as conn:
        conn.execute("create table if not exists public.cron_probe (ran_at timestamptz default now())")
        conn.execute("truncate public.cron_probe")
    try:
        yield "public.cron_probe"
    finally:
        with cron_db.connect() as conn:
            conn.execute("select cron.unschedule(jobid) from cron.job where jobname = %s", (JOB,))
            conn.execute("drop table public.cron_probe")


def test_scheduled_job_appears_in_cron_job_and_runs(cron_db: Database, probe_table: str) -> None:
    with cron_db.connect() as conn:
        # pg_cron 1.4 (Debian 12) has no seconds schedules, so wait for the next minute tick.
        conn.execute(
            "select cron.schedule(%s, '* * * * *', %s)", (JOB, f"insert into {probe_table} default values")
        )
        row = conn.execute(
            "select schedule, active, username, database from cron.job where jobname = %s", (JOB,)
        ).fetchone()
        assert row == ("* * * * *", True, "postgres", "postgres")

        deadline = time.monotonic() + 75
        ran = 0
        while time.monotonic() < deadline and not ran:
            time.sleep(1)
            (ran,) = conn.execute(f"select count(*) from {probe_table}").fetchone()
        details = conn.execute(
            "select d.status, d.return_message from cron.job_run_details d join cron.job j using (jobid)"
            " where j.jobname = %s",
            (JOB,),
        ).fetchall()
    assert ran >= 1, "the job did not run within a minute"
    assert ("succeeded", "INSERT 0 1") in details


def test_unschedule_of_a_missing_job_raises(cron_db: Database) -> None:
    with (
        cron_db.connect() as conn,
        pytest.raises(psycopg.errors.InternalError, match="could not find valid entry"),
    ):
        conn.execute("select cron.unschedule('no-such-job-anywhere')")


def test_schedule_upserts_by_name_without_reactivating(cron_db: Database, probe_table: str) -> None:
    with cron_db.connect() as conn:
        (jobid,) = conn.execute("select cron.schedule(%s, '0 3 * * *', 'select 1')", (JOB,)).fetchone()
        conn.execute("select cron.alter_job(%s, active := false)", (jobid,))
        (again,) = conn.execute("select cron.schedule(%s, '0 4 * * *', 'select 2')", (JOB,)).fetchone()
        row = conn.execute(
            "select schedule, command, active from cron.job where jobid = %s", (jobid,)
        ).fetchone()
    assert again == jobid
    assert row == ("0 4 * * *", "select 2", False)

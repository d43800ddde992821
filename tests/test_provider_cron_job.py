"""CronJob against the real pg_cron 1.4, as `postgres` (which may only SELECT cron.job, as on Supabase).

The `postgres` database is shared by the session: every test uses its own job name and removes it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.output import Unknown

from components.providers import CronJobProvider, ProviderError
from tests.conftest import Database


@pytest.fixture
def job_name(cron_db: Database) -> Iterator[str]:
    name = f"bs-provider-test-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        with cron_db.connect() as conn:
            conn.execute("select cron.unschedule(jobid) from cron.job where jobname like %s", (f"{name}%",))


def inputs(name: str, **overrides: Any) -> dict[str, Any]:
    return {"name": name, "schedule": "0 3 * * *", "command": "select 1", "active": True, **overrides}


def configured(dsn: str) -> CronJobProvider:
    provider = CronJobProvider()
    provider.configure(ConfigureRequest(Config({"bubble-sync:databaseUrl": dsn}, "bubble-sync")))
    return provider


def live_job(db: Database, name: str) -> tuple[Any, ...] | None:
    with db.connect() as conn:
        return conn.execute(
            "select jobid, schedule, command, active from cron.job where jobname = %s", (name,)
        ).fetchone()


def test_create_read_no_diff(cron_db: Database, job_name: str) -> None:
    provider = configured(cron_db.dsn)
    created = provider.create(inputs(job_name))
    assert created.id == job_name
    row = live_job(cron_db, job_name)
    assert row is not None and row[1:] == ("0 3 * * *", "select 1", True)
    assert created.outs["jobid"] == row[0]
    assert (created.outs["database"], created.outs["username"]) == ("postgres", "postgres")

    read = provider.read(created.id, created.outs)
    assert read.id == job_name
    assert {k: read.outs[k] for k in inputs(job_name)} == inputs(job_name)
    assert provider.diff(read.id, read.outs, inputs(job_name)).changes is False


DRIFT = {
    "rescheduled": ("select cron.schedule(%(name)s, '*/7 * * * *', 'select 1')", "schedule"),
    "deactivated": ("select cron.alter_job(%(jobid)s, active := false)", "active"),
    "command changed": ("select cron.alter_job(%(jobid)s, command := 'select 2')", "command"),
}


@pytest.mark.parametrize("case", DRIFT, ids=list(DRIFT))
def test_drift_is_detected_and_repaired(cron_db: Database, job_name: str, case: str) -> None:
    sql, field = DRIFT[case]
    provider = configured(cron_db.dsn)
    created = provider.create(inputs(job_name))
    with cron_db.connect() as conn:  # behind the provider's back, as postgres
        conn.execute(sql, {"name": job_name, "jobid": created.outs["jobid"]})

    read = provider.read(created.id, created.outs)
    assert read.id == job_name
    assert read.outs[field] != created.outs[field]
    diff = provider.diff(read.id, read.outs, inputs(job_name))
    assert (diff.changes, diff.replaces) == (True, [])

    updated = provider.update(read.id, read.outs, inputs(job_name))
    assert updated.outs["jobid"] == created.outs["jobid"]
    read = provider.read(read.id, updated.outs)
    assert provider.diff(read.id, read.outs, inputs(job_name)).changes is False
    assert live_job(cron_db, job_name) == (created.outs["jobid"], "0 3 * * *", "select 1", True)


def test_unscheduled_job_reads_as_gone_and_create_restores_it(cron_db: Database, job_name: str) -> None:
    provider = configured(cron_db.dsn)
    created = provider.create(inputs(job_name))
    with cron_db.connect() as conn:
        conn.execute("select cron.unschedule(%s)", (job_name,))
    read = provider.read(created.id, created.outs)
    assert (read.id, read.outs) == ("", {})

    recreated = provider.create(inputs(job_name))
    assert recreated.id == job_name  # the id is the name: stable although the job id is new
    assert recreated.outs["jobid"] != created.outs["jobid"]
    assert live_job(cron_db, job_name) == (recreated.outs["jobid"], "0 3 * * *", "select 1", True)


def test_create_adopts_a_deactivated_job_and_reactivates_it(cron_db: Database, job_name: str) -> None:
    with cron_db.connect() as conn:  # the seed's SQL ran before, and someone paused the job
        (jobid,) = conn.execute("select cron.schedule(%s, '* * * * *', 'select 0')", (job_name,)).fetchone()
        conn.execute("select cron.alter_job(%s, active := false)", (jobid,))
    provider = configured(cron_db.dsn)
    created = provider.create(inputs(job_name))
    assert created.outs["jobid"] == jobid
    assert live_job(cron_db, job_name) == (jobid, "0 3 * * *", "select 1", True)


def test_inactive_job_is_kept_inactive(cron_db: Database, job_name: str) -> None:
    provider = configured(cron_db.dsn)
    created = provider.create(inputs(job_name, active=False))
    live = live_job(cron_db, job_name)
    assert live is not None and live[3] is False
    read = provider.read(created.id, created.outs)
    assert provider.diff(read.id, read.outs, inputs(job_name, active=False)).changes is False
    assert provider.diff(read.id, read.outs, inputs(job_name)).changes is True


def test_invalid_schedule_is_a_clear_error_and_leaves_no_job(cron_db: Database, job_name: str) -> None:
    provider = configured(cron_db.dsn)
    with pytest.raises(ProviderError, match=rf"cron job '{job_name}': invalid schedule '61 \* \* \* \*'"):
        provider.create(inputs(job_name, schedule="61 * * * *"))
    assert live_job(cron_db, job_name) is None


def test_delete_is_idempotent(cron_db: Database, job_name: str) -> None:
    provider = configured(cron_db.dsn)
    created = provider.create(inputs(job_name))
    provider.delete(created.id, created.outs)
    assert live_job(cron_db, job_name) is None
    provider.delete(created.id, created.outs)  # cron.unschedule(name) would raise here


def test_without_pg_cron_the_job_is_gone_and_delete_succeeds(db: Database) -> None:
    # `db` has no pg_cron, as a database looks after `drop extension pg_cron` (which deletes every job)
    provider = configured(db.dsn)
    assert provider.read("bubble-sync-processor", inputs("bubble-sync-processor")).id == ""
    provider.delete("bubble-sync-processor", inputs("bubble-sync-processor"))


def test_delete_leaves_jobs_of_other_names_alone(cron_db: Database, job_name: str) -> None:
    provider = configured(cron_db.dsn)
    kept = provider.create(inputs(f"{job_name}-kept"))
    gone = provider.create(inputs(job_name))
    provider.delete(gone.id, gone.outs)
    assert live_job(cron_db, f"{job_name}-kept") is not None
    assert kept.id == f"{job_name}-kept"


def test_diff_unknowns_and_renames() -> None:
    provider = CronJobProvider()
    olds = {**inputs("a"), "jobid": 7}
    assert provider.diff("a", olds, inputs("a")).changes is False
    assert provider.diff("a", olds, {k: v for k, v in inputs("a").items() if k != "active"}).changes is False
    assert provider.diff("a", olds, inputs("a", command=Unknown())).changes is True
    assert provider.diff("a", olds, inputs("a", schedule=Unknown())).changes is True
    rename = provider.diff("a", olds, inputs("b"))
    # two names can coexist: the new job is created before the old one is unscheduled
    assert (rename.changes, rename.replaces, rename.delete_before_replace) == (True, ["name"], False)


def test_check_rejects_blank_fields() -> None:
    result = CronJobProvider().check({}, {"name": "x", "schedule": " ", "command": "select 1"})
    assert [f.property for f in result.failures] == ["schedule"]
    assert result.inputs["active"] is True

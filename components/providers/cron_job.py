"""A named pg_cron job of the connecting role (normally `postgres`), managed through `cron.*` functions.

pg_cron facts this relies on (supabase-facts §0.8, §1.1, §1.7): `cron.schedule(name, schedule, command)`
upserts by (jobname, username) but leaves a deactivated job inactive; `cron.unschedule(name)` raises when
the job is missing; `postgres` may only SELECT `cron.job` (RLS shows it its own jobs), so every change goes
through `cron.schedule` / `cron.alter_job` / `cron.unschedule`.

The resource id is the job name: a job's numeric id changes whenever it is re-created, so `jobid` is an
output. Drift repaired by `update`: the job unscheduled, rescheduled, deactivated, or its command changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.providers._base import PostgresProvider, changed, inputs_of, is_unknown

__all__ = ["CronJob", "CronJobArgs", "CronJobProvider"]

INPUT_KEYS = ("name", "schedule", "command", "active")
COMPARED_KEYS = ("schedule", "command", "active")

_READ = """
select jobid, schedule, command, active, database, username
  from cron.job
 where jobname = %s and username = current_user
"""


@dataclass
class CronJobArgs:
    """`name` is the job name (unique per role; the resource id), `schedule` cron syntax (or
    `[1-59] seconds` on pg_cron 1.5+), `command` the SQL to run, `active` whether it runs."""

    name: pulumi.Input[str]
    schedule: pulumi.Input[str]
    command: pulumi.Input[str]
    active: pulumi.Input[bool] = True


class CronJobProvider(PostgresProvider):
    kind = "cron job"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {**news, "active": news.get("active", True)}
        failures = []
        for key in ("name", "schedule", "command"):
            value = inputs.get(key)
            if not is_unknown(value) and (not isinstance(value, str) or not value.strip()):
                failures.append(CheckFailure(key, f"{key} must be a non-empty string"))
        if not is_unknown(inputs["active"]) and not isinstance(inputs["active"], bool):
            failures.append(CheckFailure("active", "active must be true or false"))
        return CheckResult(inputs, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["name"], outs=self._apply(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        name = id_ or props["name"]
        with self.session(repr(name), "read") as conn:
            live = _live(conn, name)
        if live is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=name, outs={**inputs_of(props, INPUT_KEYS), **live})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Different names can coexist, so a rename creates the new job before unscheduling the old one.
        replaces = changed(olds, news, ("name",))
        news = {**news, "active": news.get("active", True)}
        changes = bool(replaces) or bool(changed(olds, news, COMPARED_KEYS))
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        name = id_ or props["name"]
        with self.session(repr(name), "unschedule", transaction=True) as conn:
            if not _has_pg_cron(conn):  # dropping the extension deleted every job
                return
            # cron.unschedule(name) raises when the job is gone; unscheduling by id what we can see doesn't.
            conn.execute(
                "select cron.unschedule(jobid) from cron.job where jobname = %s and username = current_user",
                (name,),
            )

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Upserts the job, then sets `active` (cron.schedule alone would leave a paused job paused)."""
        name, schedule = props["name"], props["schedule"]
        active = props.get("active", True)
        with self.session(repr(name), "schedule", transaction=True) as conn:
            try:
                with conn.transaction():  # a savepoint: an invalid schedule is reported below
                    row = conn.execute(
                        "select cron.schedule(%s, %s, %s)", (name, schedule, props["command"])
                    ).fetchone()
            except psycopg.Error as exc:
                if not (exc.diag.message_primary or "").startswith("invalid schedule"):
                    raise
                hint = exc.diag.message_hint or "use cron format (e.g. 5 4 * * *)"
                raise self.fail(repr(name), f"invalid schedule {schedule!r}: {hint}") from None
            assert row is not None
            conn.execute("select cron.alter_job(%s, active := %s)", (row[0], bool(active)))
            live = _live(conn, name)
        if live is None:  # scheduled under another role than the one we read as: should not happen
            raise self.fail(repr(name), "the job was scheduled but is not visible in cron.job")
        return {**inputs_of(props, INPUT_KEYS), "active": active, **live}


def _has_pg_cron(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select pg_catalog.to_regclass('cron.job') is not null").fetchone()
    return bool(row and row[0])


def _live(conn: psycopg.Connection[Any], name: str) -> dict[str, Any] | None:
    """The job as pg_cron has it, or None when it (or pg_cron itself) is gone."""
    if not _has_pg_cron(conn):
        return None
    row = conn.execute(_READ, (name,)).fetchone()
    if row is None:
        return None
    jobid, schedule, command, active, database, username = row
    return {
        "schedule": schedule,
        "command": command,
        "active": bool(active),
        "jobid": int(jobid),
        "database": database,
        "username": username,
    }


class CronJob(Resource, module="bubblesync", name="CronJob"):
    """A pg_cron job owned by the connecting role; id = the job name, `jobid` = pg_cron's current id."""

    name: pulumi.Output[str]
    schedule: pulumi.Output[str]
    command: pulumi.Output[str]
    active: pulumi.Output[bool]
    jobid: pulumi.Output[int]
    database: pulumi.Output[str]
    username: pulumi.Output[str]

    def __init__(
        self, resource_name: str, args: CronJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "name": args.name,
            "schedule": args.schedule,
            "command": args.command,
            "active": args.active,
            # outputs only
            "jobid": None,
            "database": None,
            "username": None,
        }
        super().__init__(CronJobProvider(), resource_name, props, opts)

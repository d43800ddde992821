"""The SQL under `sql/`, as the providers and the setup-script generator see it.

`render` fills the `{{ name }}` markers of a file with SQL literals (the parameters, their defaults and the
stack config keys that set them are components/sql/params.py's); `load` reads a file.
`QUEUE_FILES` and `CRON_JOBS` say which files make up the queue layer and which jobs run it; what the files
define (each function, its signature and grants) is read from the files themselves by
components/sql/catalogue.py.

Pure Python: no Pulumi, no database, nothing happens at import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

__all__ = [
    "QUEUE_COLUMNS",
    "CRON_JOBS",
    "DISPATCH_TRIGGER_FILE",
    "MAPPING_RECORD_FILE",
    "MAPPING_TRIGGER_FILE",
    "EXTENSION_CHECK_FILE",
    "OPERATOR_BACKFILL_FILE",
    "OPERATOR_RECONCILE_FILE",
    "OPERATOR_STATUS_FILE",
    "UNIT_PARAMS",
    "VAULT_SECRET_FILE",
    "VERIFICATION_FILE",
    "QUEUE_FILES",
    "SQL_DIR",
    "CronJobSpec",
    "Identifier",
    "NULL",
    "load",
    "literal",
    "placeholders",
    "render",
    "schedule_statement",
]

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# The columns the queue needs, each with the types an adopted table may have for it (the first is the one
# sql/queue_schema.sql creates). The QueueSchema provider reports drift against this; the adoption check in
# sql/queue_schema.sql accepts the same types (tests/test_sql_templates.py keeps the two in step). Not `id`:
# an adopted table's id may be a uuid, a bigint or missing, and nothing of ours uses it.
_TEXT = ("text", "character varying")
_INT = ("integer", "smallint", "bigint")
_TIME = ("timestamp with time zone",)
QUEUE_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "table_name": _TEXT,
    "record_id": _TEXT,
    "operation": _TEXT,
    "payload": ("jsonb",),
    "status": _TEXT,
    "retry_count": _INT,
    "max_retries": _INT,
    "next_retry_at": _TIME,
    "failing_since": _TIME,
    "error_message": _TEXT,
    "bubble_id": _TEXT,
    "lease_token": ("uuid",),
    "lease_expires_at": _TIME,
    "created_at": _TIME,
    "updated_at": _TIME,
    "completed_at": _TIME,
    "queue_order": ("bigint",),
}


@dataclass(frozen=True)
class Identifier:
    """A name to render as an identifier (`{{ table }}` -> `public."Listings"`), not as a text literal. `sql`
    is the name as SQL writes it, already quoted where it must be (components/mappings.py, quote_ident)."""

    sql: str


class _Null:
    """SQL's null, asked for by name: a missing value (None) stays an error, so a parameter nobody filled in
    never turns into a silent null."""

    def __repr__(self) -> str:
        return "NULL"


NULL = _Null()


def literal(value: object) -> str:
    """`value` as SQL: numbers as numbers, bools as true/false, `NULL` as null, text quoted (quotes doubled),
    a `timedelta` as an `interval` literal, a list or tuple of text as a text[] literal, an `Identifier` as
    an identifier."""
    if value is NULL:
        return "null"
    if isinstance(value, Identifier):
        return value.sql
    if isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise TypeError(f"only lists of text render as SQL arrays: {value!r}")
        return "array[" + ", ".join(literal(item) for item in value) + "]::text[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot render {value!r} as a SQL number")
        return repr(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("SQL text cannot contain NUL characters")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, timedelta):
        return _interval(value)
    raise TypeError(f"cannot render a {type(value).__name__} as a SQL literal: {value!r}")


def _interval(value: timedelta) -> str:
    # timedelta normalises to days (may be negative) + 0 <= seconds < 86400 + microseconds; PostgreSQL adds
    # the parts up the same way, e.g. timedelta(seconds=-1) -> interval '-1 days 86399 seconds'.
    parts = []
    if value.days:
        parts.append(f"{value.days} days")
    if value.seconds or value.microseconds or not parts:
        seconds = f"{value.seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".")
        parts.append(f"{seconds} seconds")
    return "interval '" + " ".join(parts) + "'"


def placeholders(template_text: str) -> set[str]:
    """The names of the `{{ name }}` markers in a template."""
    return set(_PLACEHOLDER.findall(template_text))


def render(template_text: str, params: Mapping[str, object]) -> str:
    """Replaces every `{{ name }}` with `literal(params[name])`. A marker without a value raises `KeyError`
    naming it; values nobody asked for are ignored (one parameter set serves every file)."""
    missing = sorted(placeholders(template_text) - params.keys())
    if missing:
        raise KeyError(f"no value for SQL placeholder(s): {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: literal(params[m.group(1)]), template_text)


def load(relative_path: str) -> str:
    """The text of a file under `sql/`, e.g. `load("functions/lease.sql")`."""
    path = (SQL_DIR / relative_path).resolve()
    if not path.is_relative_to(SQL_DIR):
        raise ValueError(f"{relative_path!r} is not under {SQL_DIR}")
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------------------
# What the files contain
# ------------------------------------------------------------------------------------------------------------

# The database layer, in the order it must be applied (the table first: functions return its row type).
QUEUE_FILES: tuple[str, ...] = (
    "queue_schema.sql",
    "functions/gate.sql",
    "functions/lease.sql",
    "functions/enqueue.sql",
    "functions/backfill.sql",
    "functions/compare.sql",
    "functions/invoke.sql",
    "functions/verify.sql",
    "functions/dispatch.sql",
    "functions/maintenance.sql",
    "monitoring.sql",
    "alerts.sql",
)
# Applied after QUEUE_FILES only when immediate dispatch is on.
DISPATCH_TRIGGER_FILE = "dispatch_trigger.sql"
#: the original plan's verification queries, the end of every render-sql script
VERIFICATION_FILE = "verification.sql"
#: one mapping's row in bubble_sync.mappings, and its trigger on the source table (per mapping)
MAPPING_RECORD_FILE = "mapping_record.sql"
MAPPING_TRIGGER_FILE = "mapping_trigger.sql"
# Statements filled in per unit (one extension, one secret) on top of the stack's parameters.
#: stands in for an extension the stack does not manage (manageExtensions false)
EXTENSION_CHECK_FILE = "setup/require_extension.sql"
#: stores one Vault secret from a psql variable (the render-sql script only)
VAULT_SECRET_FILE = "setup/store_vault_secret.sql"
#: the read-only queries of `python -m components status` (psycopg parameters; never applied)
OPERATOR_STATUS_FILE = "operator_status.sql"
#: the queries of `python -m components backfill` (psycopg parameters and psycopg.sql `{identifier}` slots;
#: never applied)
OPERATOR_BACKFILL_FILE = "operator_backfill.sql"
#: the queries of `python -m components reconcile` (psycopg parameters and psycopg.sql slots; never applied)
OPERATOR_RECONCILE_FILE = "operator_reconcile.sql"
UNIT_PARAMS: Mapping[str, tuple[str, ...]] = {
    EXTENSION_CHECK_FILE: ("extension",),
    VAULT_SECRET_FILE: ("psql_variable", "secret_name", "secret_description"),
    MAPPING_RECORD_FILE: ("mapping_name", "queue_table", "definition"),
    MAPPING_TRIGGER_FILE: (
        "mapping_name",
        "table",
        "table_text",
        "trigger_name",
        "trigger_text",
        "key_column",
        "columns",
        "row_filter",
        "argument",
    ),  # fmt: skip
}


@dataclass(frozen=True)
class CronJobSpec:
    """One pg_cron job: its name, the parameter holding its schedule, and its command (a template)."""

    name: str
    schedule_param: str
    command: str

    def statement(self, params: Mapping[str, object]) -> str:
        """The SQL that schedules this job with the stack's parameters (for the generated script)."""
        return schedule_statement(self.name, str(params[self.schedule_param]), render(self.command, params))


CRON_JOBS: tuple[CronJobSpec, ...] = (
    CronJobSpec(
        "bubble-sync-processor", "processor_schedule", "select public.invoke_bubble_sync_processor()"
    ),
    CronJobSpec("bubble-sync-retry", "retry_schedule", "select public.invoke_bubble_sync_retry()"),
    # Not bubble-sync-...: the seed's verification query (jobname LIKE 'bubble-sync%') lists exactly two jobs.
    CronJobSpec(
        "bubble_sync.purge",
        "purge_schedule",
        "select bubble_sync.purge({{ run_details_retention }}, {{ completed_retention }})",
    ),
    # The scheduled verification: the edge function checks a sample of each mapping against Bubble.
    CronJobSpec("bubble_sync.verify", "verify_schedule", "select bubble_sync.invoke_verify()"),
    # The alerts: evaluated every minute, a message posted only when what is wrong changes (sql/alerts.sql).
    CronJobSpec(
        "bubble_sync.alerts",
        "alert_schedule",
        "select bubble_sync.evaluate_alerts({{ alert_after }}, {{ alert_backlog }}, {{ stack_name }})",
    ),
)


def schedule_statement(name: str, schedule: str, command: str) -> str:
    """Schedules (or updates) a pg_cron job by name and switches it back on: cron.schedule upserts by
    name but leaves a job someone deactivated inactive."""
    return (
        f"select cron.schedule({literal(name)}, {literal(schedule)}, {literal(command)});\n"
        "select cron.alter_job(j.jobid, active := true)\n"
        "  from cron.job j\n"
        f" where j.jobname = {literal(name)} and j.username = current_user and not j.active;"
    )

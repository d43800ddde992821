"""The database objects of a stack as an ordered list of SQL units, and the setup script made from them.

`sql_plan(config)` is the one place that decides what a stack puts in the database: which extensions, the
queue DDL, every function (rendered from `sql/` with the stack's parameters) and its EXECUTE grants, the
dispatch trigger (only when dispatchMode is `immediate`), the Vault secrets and the cron jobs, in the order
they must be applied. `BubbleSync` turns each unit into a Pulumi resource; `render_script` turns the same
units into one psql script (the seed's PGCRON_COMPLETE_SETUP.sql, generated) that the local stack applies
and a DBA can review or run by hand. Secrets never enter the script: it reads them from psql variables.

Pure Python: no Pulumi, no database, nothing happens at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from components import sql_catalogue, sql_templates
from components.config import StackConfig
from components.sql_catalogue import FunctionSpec
from components.sql_templates import QUEUE_COLUMNS

__all__ = [
    "API_ROLES",
    "CronJobUnit",
    "ExtensionUnit",
    "FunctionUnit",
    "QUEUE_COLUMNS",
    "QUEUE_TABLE",
    "QueueUnit",
    "SqlObjectUnit",
    "SqlPlan",
    "VaultSecretUnit",
    "render_script",
    "sql_params",
    "sql_plan",
]

QUEUE_TABLE = "public.sync_queue"
# Roles whose EXECUTE on our functions is revoked (Supabase's default privileges grant it to the API roles).
API_ROLES = ("public", "anon", "authenticated", "service_role")


_DISPATCH_TRIGGER = "bubble_sync_dispatch"


# -- the units -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtensionUnit:
    """An extension the stack needs. `managed`: the stack enables it (pulumi-postgresql); otherwise it was
    enabled in the dashboard and the stack only checks it is there (manageExtensions false)."""

    name: str
    schema: str
    managed: bool = True

    def sql(self) -> str:
        if self.managed:
            return f"create extension if not exists {self.name} with schema {self.schema};"
        return self.check_sql

    @property
    def check_sql(self) -> str:
        """Fails, naming the extension and what to do, when it is not enabled in this database."""
        name = _literal(self.name)
        return "\n".join(
            [
                f"do $require_{self.name}$",
                "begin",
                f"  if not exists (select from pg_catalog.pg_extension e where e.extname = {name}) then",
                f"    raise exception 'bubble-sync: extension {self.name} is not enabled in this database'",
                "      using hint = 'Enable it in the Supabase dashboard (Database > Extensions), or set the "
                "stack config manageExtensions to true.';",
                "  end if;",
                "end",
                f"$require_{self.name}$;",
            ]
        )

    @property
    def requirement(self) -> SqlObjectUnit:
        """The check of an extension the stack does not manage, as a SqlObject: `apply_sql` fails while it
        is missing, the probe reports it gone, and there is nothing to drop (the stack does not own it)."""
        probe = f"select 'enabled' from pg_catalog.pg_extension e where e.extname = {_literal(self.name)}"
        return SqlObjectUnit(
            name=f"extension {self.name}",
            apply_sql=self.check_sql,
            drop_sql="select 'left in place: enabled outside the stack'",
            probe_sql=probe,
            expected="enabled",
            source="",
        )


@dataclass(frozen=True)
class QueueUnit:
    """`public.sync_queue` and the private schema `bubble_sync`, from `sql/queue_schema.sql`."""

    ddl: str
    columns: Mapping[str, tuple[str, ...]]
    source: str = "queue_schema.sql"

    def sql(self) -> str:
        return self.ddl.strip()


@dataclass(frozen=True)
class FunctionUnit:
    """One function: its rendered `create or replace function` statement and who may execute it."""

    spec: FunctionSpec
    definition: str

    @property
    def execute_grants(self) -> list[str]:
        return list(self.spec.grant_execute_to)

    def sql(self) -> str:
        # The same grants the SqlFunction provider sets: nobody but the owner, then exactly the listed roles.
        lines = [
            f"{self.definition.strip()};",
            "",
            f"revoke all on function {self.spec.signature} from {', '.join(API_ROLES)};",
        ]
        if self.execute_grants:
            lines.append(
                f"grant execute on function {self.spec.signature} to {', '.join(self.execute_grants)};"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class SqlObjectUnit:
    """An object the SqlObject provider manages: created by `apply_sql`, removed by `drop_sql`, and
    recognised by `probe_sql` returning `expected`."""

    name: str
    apply_sql: str
    drop_sql: str
    probe_sql: str
    expected: str
    source: str

    def sql(self) -> str:
        return f"{self.apply_sql.strip()};"


@dataclass(frozen=True)
class VaultSecretUnit:
    """A Vault secret by name. The value is never part of the plan: the program passes the secret Output,
    the script reads the psql variable `variable`."""

    name: str
    description: str
    variable: str

    def sql(self) -> str:
        # psql does not interpolate variables inside a dollar-quoted DO body, so the value travels in a
        # transaction-local setting; `\gset` keeps psql from printing it.
        name, description = _literal(self.name), _literal(self.description)
        stash = "select set_config('bubble_sync.setup_value', {}, true) is null as bubble_sync_unset \\gset"
        return "\n".join(
            [
                stash.format(f":'{self.variable}'"),
                "do $vault$",
                "declare",
                "  v_id    uuid;",
                "  v_value text := current_setting('bubble_sync.setup_value');",
                "begin",
                "  if coalesce(v_value, '') = '' then",
                f"    raise exception 'bubble-sync.sql: the psql variable {self.variable} is empty';",
                "  end if;",
                f"  select s.id into v_id from vault.secrets s where s.name = {name};",
                "  if v_id is null then",
                f"    perform vault.create_secret(v_value, {name}, {description});",
                "  else",
                f"    perform vault.update_secret(v_id, v_value, {name}, {description});",
                "  end if;",
                "end",
                "$vault$;",
                stash.format("''"),
            ]
        )


@dataclass(frozen=True)
class CronJobUnit:
    name: str
    schedule: str
    command: str

    def sql(self) -> str:
        return sql_templates.schedule_statement(self.name, self.schedule, self.command)


Unit = ExtensionUnit | QueueUnit | FunctionUnit | SqlObjectUnit | VaultSecretUnit | CronJobUnit


@dataclass(frozen=True)
class SqlPlan:
    """Everything a stack puts in the database, in apply order (reverse it to tear down)."""

    extensions: tuple[ExtensionUnit, ...]
    queue: QueueUnit
    functions: tuple[FunctionUnit, ...]
    secrets: tuple[VaultSecretUnit, ...]
    dispatch_trigger: SqlObjectUnit | None
    cron_jobs: tuple[CronJobUnit, ...]

    @property
    def units(self) -> list[Unit]:
        trigger = [self.dispatch_trigger] if self.dispatch_trigger else []
        return [*self.extensions, self.queue, *self.functions, *self.secrets, *trigger, *self.cron_jobs]


# -- building the plan ---------------------------------------------------------------------------------------


def sql_params(config: StackConfig) -> dict[str, object]:
    """The template parameters of a stack: sql_templates' defaults overridden by the stack's config."""
    return {
        **sql_templates.DEFAULT_PARAMS,
        "default_max_retries": config.max_retries,
        "lease_seconds": config.lease_seconds,
        "http_timeout_ms": config.http_timeout_ms,
        "batch_size": config.batch_size,
        "concurrency": config.concurrency,
        "run_details_retention": timedelta(days=config.run_details_retention_days),
        "completed_retention": timedelta(days=config.completed_retention_days),
        "processor_schedule": config.processor_schedule,
        "retry_schedule": config.retry_schedule,
        "purge_schedule": config.maintenance_schedule,
    }


def sql_plan(config: StackConfig) -> SqlPlan:
    params = sql_params(config)
    queue_file = sql_templates.QUEUE_FILES[0]
    queue = QueueUnit(ddl=sql_templates.render(sql_templates.load(queue_file), params), columns=QUEUE_COLUMNS)
    functions = tuple(
        FunctionUnit(spec=spec, definition=spec.statement(params)) for spec in sql_catalogue.functions()
    )
    trigger = _dispatch_trigger(params) if config.dispatch_mode == "immediate" else None
    secrets = (
        VaultSecretUnit(
            "supabase_url", "bubble-sync: the project's API URL, for pg_net calls", "supabase_url"
        ),
        VaultSecretUnit(
            "service_role_key",
            "bubble-sync: bearer credential for the bubble_sync edge function",
            "service_role_key",
        ),
    )
    jobs = tuple(
        CronJobUnit(
            name=job.name,
            schedule=str(params[job.schedule_param]),
            command=sql_templates.render(job.command, params),
        )
        for job in sql_templates.CRON_JOBS
    )
    return SqlPlan(
        extensions=(
            ExtensionUnit("pg_cron", "pg_catalog", managed=config.manage_extensions),
            ExtensionUnit("pg_net", "extensions", managed=config.manage_extensions),
        ),
        queue=queue,
        functions=functions,
        secrets=secrets,
        dispatch_trigger=trigger,
        cron_jobs=jobs,
    )


def _dispatch_trigger(params: Mapping[str, object]) -> SqlObjectUnit:
    source = sql_templates.DISPATCH_TRIGGER_FILE
    (statement,) = sql_catalogue.split_statements(sql_templates.render(sql_templates.load(source), params))
    return SqlObjectUnit(
        name=f"{QUEUE_TABLE}.{_DISPATCH_TRIGGER}",
        apply_sql=statement,
        drop_sql=f"drop trigger if exists {_DISPATCH_TRIGGER} on {QUEUE_TABLE}",
        probe_sql=(
            "select pg_catalog.pg_get_triggerdef(t.oid) from pg_catalog.pg_trigger t "
            f"where t.tgrelid = pg_catalog.to_regclass({_literal(QUEUE_TABLE)}) "
            f"and t.tgname = {_literal(_DISPATCH_TRIGGER)}"
        ),
        # What pg_get_triggerdef prints for that statement (tests/test_render_sql.py checks it on PostgreSQL).
        expected=(
            f"CREATE TRIGGER {_DISPATCH_TRIGGER} AFTER INSERT ON {QUEUE_TABLE} "
            "REFERENCING NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION bubble_sync.dispatch_wake()"
        ),
        source=source,
    )


# -- the script ----------------------------------------------------------------------------------------------


def render_script(config: StackConfig, *, stack: str | None = None) -> str:
    """The complete setup SQL for a stack, for psql. `stack=None`: defaults and placeholders."""
    plan = sql_plan(config)
    parts = [_header(config, stack), _variables(config)]
    parts.append(_section("Transaction: everything below commits together or not at all", "begin;"))
    extensions = (
        "Extensions" if config.manage_extensions else "Extensions (enabled in the dashboard: checked)"
    )
    parts.append(_section(extensions, "\n".join(unit.sql() for unit in plan.extensions)))
    parts.append(_section(f"The queue (sql/{plan.queue.source})", plan.queue.sql()))
    source = None
    for unit in plan.functions:
        if unit.spec.file != source:
            source = unit.spec.file
            parts.append(_banner(f"Functions (sql/{source})"))
        parts.append(unit.sql())
    parts.append(
        _section(
            "Vault secrets: updated in place when the name exists (names are unique), created otherwise",
            "\n\n".join(unit.sql() for unit in plan.secrets),
        )
    )
    if plan.dispatch_trigger:
        parts.append(
            _section(f"Immediate dispatch (sql/{plan.dispatch_trigger.source})", plan.dispatch_trigger.sql())
        )
    else:
        parts.append(
            _section(
                "Immediate dispatch: off (dispatchMode = cron); rows wait for bubble-sync-processor",
                f"drop trigger if exists {_DISPATCH_TRIGGER} on {QUEUE_TABLE};",
            )
        )
    parts.append(
        _section(
            "Cron jobs (pg_cron runs them in the `postgres` database)",
            "\n\n".join(j.sql() for j in plan.cron_jobs),
        )
    )
    parts.append("commit;")
    parts.append(
        _section(
            "Verification (the seed's queries; expected results in the comments)",
            # without the file's own header: the section title says what follows
            sql_templates.load(sql_templates.VERIFICATION_FILE).split("\n\n", 1)[1],
        )
    )
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


def _header(config: StackConfig, stack: str | None) -> str:
    what = f"stack {stack!r}" if stack else "the default settings (no stack given)"
    command = "python -m components render-sql" + (f" --stack {stack}" if stack else "")
    url = config.supabase_url or "https://<project-ref>.supabase.co"
    lines = [
        f"bubble-sync: complete database setup for {what}.",
        f"Generated by `{command}` from sql/ and the stack config; do not edit, re-generate.",
        "",
        "Run it with psql, as the `postgres` role, in the database pg_cron runs in (`postgres` on Supabase):",
        "",
        f'    psql "$DATABASE_URL" -v service_role_key="$SERVICE_ROLE_KEY" -v supabase_url={url} '
        "-f bubble-sync.sql",
        "",
        "service_role_key (required) and supabase_url"
        + (f" (default {config.supabase_url})" if config.supabase_url else " (required)")
        + " are psql variables: the script",
        "stores them in Vault and never contains them. Safe to run again: every statement is idempotent.",
        "",
        "Settings: "
        + ", ".join(
            f"{k}={v}"
            for k, v in (
                ("dispatchMode", config.dispatch_mode),
                ("batchSize", config.batch_size),
                ("maxRetries", config.max_retries),
                ("leaseSeconds", config.lease_seconds),
                ("httpTimeoutMs", config.http_timeout_ms),
                ("runDetailsRetentionDays", config.run_details_retention_days),
                ("completedRetentionDays", config.completed_retention_days),
            )
        ),
    ]
    return "\n".join(f"-- {line}".rstrip() for line in lines)


def _variables(config: StackConfig) -> str:
    lines = ["\\set ON_ERROR_STOP on"]
    if config.supabase_url:
        lines += [
            "\\if :{?supabase_url}",
            "\\else",
            f"  \\set supabase_url {_literal(config.supabase_url)}",
            "\\endif",
        ]
    required = ("service_role_key",) if config.supabase_url else ("supabase_url", "service_role_key")
    for variable in required:
        lines += [
            f"\\if :{{?{variable}}}",
            "\\else",
            "  do $missing$ begin",
            f"    raise exception 'bubble-sync.sql: set the psql variable {variable}: "
            f"psql -v {variable}=... -f bubble-sync.sql';",
            "  end $missing$;",
            "\\endif",
        ]
    return _section("psql variables (secrets are never written into this file)", "\n".join(lines))


def _section(title: str, body: str) -> str:
    return f"{_banner(title)}\n\n{body.strip()}"


def _banner(title: str) -> str:
    rule = "-- " + "-" * 105
    return f"{rule}\n-- {title}\n{rule}"


def _literal(value: str) -> str:
    return sql_templates.literal(value)

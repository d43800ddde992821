"""The database objects of a stack as an ordered list of SQL units: `sql_plan(config)` is the one place that
decides what a stack puts in the database: which extensions (or the checks that stand in for them), the queue
DDL, every function of sql/ rendered with the stack's parameters and its EXECUTE grants, the dispatch trigger
(only when dispatchMode is `immediate`), the Vault secrets and the cron jobs, in the order they must be
applied. `BubbleSync` turns each unit into a Pulumi resource; components/sql/render.py turns the same units
into one psql script.

Pure Python: no Pulumi, no database, nothing happens at import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from components.config import StackConfig
from components.mappings import Mapping as SyncMapping
from components.mappings import quote_ident
from components.sql import catalogue, templates
from components.sql.catalogue import REVOKED_FROM, FunctionSpec
from components.sql.params import sql_params
from components.sql.templates import QUEUE_COLUMNS

__all__ = [
    "DISPATCH_TRIGGER",
    "CronJobUnit",
    "ExtensionUnit",
    "FunctionUnit",
    "MappingUnit",
    "QUEUE_COLUMNS",
    "QUEUE_TABLE",
    "QueueUnit",
    "SqlObjectUnit",
    "SqlPlan",
    "VaultSecretUnit",
    "mapping_unit",
    "sql_params",
    "sql_plan",
]

QUEUE_TABLE = "public.sync_queue"


#: the trigger that switches immediate dispatch on (sql/dispatch_trigger.sql)
DISPATCH_TRIGGER = "bubble_sync_dispatch"


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
        return f"{self.check_sql};"

    @property
    def check_sql(self) -> str:
        """Fails, naming the extension and what to do, when it is not enabled in this database."""
        return _statement(templates.EXTENSION_CHECK_FILE, {"extension": self.name})

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
            f"revoke all on function {self.spec.signature} from {', '.join(REVOKED_FROM)};",
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
class MappingUnit:
    """One mapping of bubble-sync:mappings: its row in bubble_sync.mappings and its trigger on the source
    table, each a SqlObject (created, probed for drift, dropped)."""

    mapping: SyncMapping
    record: SqlObjectUnit
    trigger: SqlObjectUnit

    def sql(self) -> str:
        return f"{self.record.sql()}\n\n{self.trigger.sql()}"


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
        stash = "select set_config('bubble_sync.setup_value', {}, true) is null as bubble_sync_unset \\gset"
        values = {
            "psql_variable": self.variable,
            "secret_name": self.name,
            "secret_description": self.description,
        }
        store = _statement(templates.VAULT_SECRET_FILE, values)
        return "\n".join([stash.format(f":'{self.variable}'"), f"{store};", stash.format("''")])


@dataclass(frozen=True)
class CronJobUnit:
    name: str
    schedule: str
    command: str

    def sql(self) -> str:
        return templates.schedule_statement(self.name, self.schedule, self.command)


Unit = ExtensionUnit | QueueUnit | FunctionUnit | SqlObjectUnit | VaultSecretUnit | MappingUnit | CronJobUnit


@dataclass(frozen=True)
class SqlPlan:
    """Everything a stack puts in the database, in apply order (reverse it to tear down)."""

    extensions: tuple[ExtensionUnit, ...]
    queue: QueueUnit
    functions: tuple[FunctionUnit, ...]
    secrets: tuple[VaultSecretUnit, ...]
    dispatch_trigger: SqlObjectUnit | None
    cron_jobs: tuple[CronJobUnit, ...]
    #: one per mapping of bubble-sync:mappings, in config order (none without mappings)
    mappings: tuple[MappingUnit, ...] = ()

    @property
    def units(self) -> list[Unit]:
        trigger = [self.dispatch_trigger] if self.dispatch_trigger else []
        return [
            *self.extensions, self.queue, *self.functions, *self.secrets, *trigger, *self.mappings,
            *self.cron_jobs,
        ]  # fmt: skip


# -- building the plan ---------------------------------------------------------------------------------------


def sql_plan(config: StackConfig, stack: str | None = None) -> SqlPlan:
    """The stack's units (`stack`: its name, which the alerts' commands carry)."""
    params = sql_params(config, stack)
    queue_file = templates.QUEUE_FILES[0]
    queue = QueueUnit(ddl=templates.render(templates.load(queue_file), params), columns=QUEUE_COLUMNS)
    functions = tuple(
        FunctionUnit(spec=spec, definition=spec.statement(params)) for spec in catalogue.functions()
    )
    trigger = _dispatch_trigger(params) if config.dispatch_mode == "immediate" else None
    secrets: tuple[VaultSecretUnit, ...] = (
        VaultSecretUnit(
            "supabase_url", "bubble-sync: the project's API URL, for pg_net calls", "supabase_url"
        ),
        VaultSecretUnit(
            "service_role_key",
            "bubble-sync: bearer credential for the bubble_sync edge function",
            "service_role_key",
        ),
    )
    if config.alert_webhook_url is not None:
        # only when set: a stack without alerts stores nothing, and bubble_sync.evaluate_alerts posts nothing
        secrets += (
            VaultSecretUnit(
                "alert_webhook_url",
                "bubble-sync: where the database posts alerts (a Slack-compatible webhook)",
                "alert_webhook_url",
            ),
        )
    jobs = tuple(
        CronJobUnit(
            name=job.name,
            schedule=str(params[job.schedule_param]),
            command=templates.render(job.command, params),
        )
        for job in templates.CRON_JOBS
    )
    every = config.mappings
    return SqlPlan(
        mappings=tuple(mapping_unit(m, every) for m in every),
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
    source = templates.DISPATCH_TRIGGER_FILE
    (statement,) = catalogue.split_statements(templates.render(templates.load(source), params))
    return SqlObjectUnit(
        name=f"{QUEUE_TABLE}.{DISPATCH_TRIGGER}",
        apply_sql=statement,
        drop_sql=f"drop trigger if exists {DISPATCH_TRIGGER} on {QUEUE_TABLE}",
        probe_sql=(
            "select pg_catalog.pg_get_triggerdef(t.oid) from pg_catalog.pg_trigger t "
            f"where t.tgrelid = pg_catalog.to_regclass({_literal(QUEUE_TABLE)}) "
            f"and t.tgname = {_literal(DISPATCH_TRIGGER)}"
        ),
        # What pg_get_triggerdef prints for that statement (tests/test_render_sql.py checks it on PostgreSQL).
        expected=(
            f"CREATE TRIGGER {DISPATCH_TRIGGER} AFTER INSERT ON {QUEUE_TABLE} "
            "REFERENCING NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION bubble_sync.dispatch_wake()"
        ),
        source=source,
    )


def mapping_unit(mapping: SyncMapping, every: tuple[SyncMapping, ...]) -> MappingUnit:
    """The two objects of one mapping (`every`: the stack's mappings, naming the tables references go to)."""
    definition = json.dumps(mapping.definition(every), separators=(",", ":"), ensure_ascii=False)
    record_values = {
        "mapping_name": mapping.name,
        "queue_table": mapping.queue_table,
        "definition": definition,
    }
    name = _literal(mapping.name)
    record = SqlObjectUnit(
        name=f"mapping {mapping.name}",
        apply_sql=_statements(templates.MAPPING_RECORD_FILE, record_values),
        drop_sql=f"delete from bubble_sync.mappings where name = {name}",
        # jsonb compares by value: the probe says `current`, or shows the row that differs
        probe_sql=(
            f"select case when m.table_name = {_literal(mapping.queue_table)}"
            f" and m.definition = {_literal(definition)}::jsonb then 'current'"
            " else m.table_name || ' ' || m.definition::text end"
            f" from bubble_sync.mappings m where m.name = {name}"
        ),
        expected="current",
        source=templates.MAPPING_RECORD_FILE,
    )
    table = templates.Identifier(mapping.qualified_table)
    argument = mapping.trigger_argument()
    trigger_values = {
        "mapping_name": mapping.name,
        "table": table,
        "table_text": table.sql,
        "trigger_name": templates.Identifier(quote_ident(mapping.trigger_name)),
        "trigger_text": mapping.trigger_name,
        "key_column": mapping.key,
        "columns": list(mapping.columns),
        "row_filter": templates.NULL if mapping.where is None else mapping.where,
        "argument": argument,
    }
    trigger = SqlObjectUnit(
        name=f"{table.sql}.{mapping.trigger_name}",
        apply_sql=_statements(templates.MAPPING_TRIGGER_FILE, trigger_values),
        # a table dropped meanwhile took its trigger with it (the provider takes 42P01 as already gone)
        drop_sql=f"drop trigger if exists {quote_ident(mapping.trigger_name)} on {table.sql}",
        # enabled or not ('O' origin, 'D' disabled...), then the definition
        probe_sql=(
            "select t.tgenabled::text || ' ' || pg_catalog.pg_get_triggerdef(t.oid)"
            " from pg_catalog.pg_trigger t"
            f" where t.tgrelid = pg_catalog.to_regclass({_literal(table.sql)})"
            f" and t.tgname = {_literal(mapping.trigger_name)}"
        ),
        # What pg_get_triggerdef prints for that statement (tests/test_mapping_resources.py checks it on
        # PostgreSQL): events in INSERT, DELETE, UPDATE order, the argument as a literal.
        expected=(
            f"O CREATE TRIGGER {quote_ident(mapping.trigger_name)} AFTER INSERT OR DELETE OR UPDATE ON "
            f"{table.sql} FOR EACH ROW EXECUTE FUNCTION bubble_sync.enqueue_mapped({_literal(argument)})"
        ),
        source=templates.MAPPING_TRIGGER_FILE,
    )
    return MappingUnit(mapping=mapping, record=record, trigger=trigger)


def _statements(file: str, values: Mapping[str, object]) -> str:
    """Every statement of a per-unit file under sql/, rendered with `values`, as one text (applied in one
    transaction)."""
    statements = catalogue.split_statements(templates.render(templates.load(file), values))
    return ";\n\n".join(statements)


def _literal(value: str) -> str:
    return templates.literal(value)


def _statement(file: str, values: Mapping[str, object]) -> str:
    """The one statement of a per-unit file under sql/, rendered with `values`."""
    (statement,) = catalogue.split_statements(templates.render(templates.load(file), values))
    return statement

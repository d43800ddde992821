"""The queue's DDL as one resource: `public.sync_queue`, its indexes, RLS and revokes, and the private
schema `bubble_sync` that holds the queue's functions and triggers.

`ddl` is idempotent SQL that creates the queue or adopts an existing one (adds what is missing, never
drops or rewrites rows). Live state compared on refresh: the desired columns and their types, RLS on,
no policies, no privilege for `anon`/`authenticated` (Supabase's default privileges grant them everything
in `public`), and the private schema present. `create`/`update` run the DDL and then check that the live
state is as required, so a DDL that does not repair a drift case fails loudly instead of leaving it.
For that, the DDL must: add missing columns, `enable row level security`, drop every policy on the
table, revoke all from public/anon/authenticated, and create `bubble_sync`.

`delete` keeps the table and its rows (it holds data) unless `drop_table_on_delete` was true at the last
`up`: it drops the triggers on the table whose functions live in `bubble_sync`, then that schema
(cascade: our functions, and whatever depends on them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pulumi
from psycopg import sql
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

__all__ = ["QueueSchema", "QueueSchemaArgs", "QueueSchemaProvider", "accepts", "normalize_type"]

TABLE_SCHEMA = "public"
TABLE_NAME = "sync_queue"
TABLE = f"{TABLE_SCHEMA}.{TABLE_NAME}"
PRIVATE_SCHEMA = "bubble_sync"
API_ROLES = ("anon", "authenticated")

INPUT_KEYS = ("ddl", "columns", "drop_table_on_delete")
# What the live queue must look like besides its columns: Supabase exposes `public` over its Data API and
# grants its tables to the API roles, so RLS on, no policies, and no privilege for anon/authenticated.
REQUIRED_STATE: dict[str, Any] = {
    "missing_columns": [],
    "rls_enabled": True,
    "policy_count": 0,
    "api_role_privileges": [],
    "private_schema_exists": True,
}

_TABLE_FACTS = """
select c.oid, c.relrowsecurity,
       (select count(*) from pg_catalog.pg_policy p where p.polrelid = c.oid),
       exists (select 1 from pg_catalog.pg_namespace where nspname = %s)
  from pg_catalog.pg_class c
 where c.oid = pg_catalog.to_regclass(%s)
"""
_COLUMNS = """
select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
  from pg_catalog.pg_attribute a
 where a.attrelid = %s::oid and a.attnum > 0 and not a.attisdropped
"""
# Column-level grants count too: has_any_column_privilege is true for a table-level or any column grant.
_API_PRIVILEGES = """
select r.rolname || ':' || p.privilege
  from pg_catalog.pg_roles r
 cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
       as p(privilege)
 where r.rolname = any(%s)
   and case when p.privilege in ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
            then pg_catalog.has_any_column_privilege(r.oid, %s::oid, p.privilege)
            else pg_catalog.has_table_privilege(r.oid, %s::oid, p.privilege) end
 order by 1
"""
_OUR_TRIGGERS = """
select t.tgname
  from pg_catalog.pg_trigger t
  join pg_catalog.pg_proc f on f.oid = t.tgfoid
  join pg_catalog.pg_namespace n on n.oid = f.pronamespace
 where t.tgrelid = pg_catalog.to_regclass(%s) and not t.tgisinternal and n.nspname = %s
"""

# Spellings PostgreSQL accepts for the types a queue uses, mapped to what format_type prints.
_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "serial": "integer",
    "int8": "bigint",
    "bigserial": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "varchar": "character varying",
    "char": "character",
    "bpchar": "character",
    "float8": "double precision",
    "float4": "real",
    "decimal": "numeric",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timetz": "time with time zone",
    "time": "time without time zone",
}
_TYPE_PARTS = re.compile(
    r"^(?P<base>[a-z_][a-z0-9_ ]*?)\s*(?P<mod>\([^)]*\))?"
    r"(?P<zone>\s+with(?:out)? time zone)?\s*(?P<array>(?:\[\])*)$"
)


def normalize_type(spelling: str) -> str:
    """A column type as `format_type` prints it: `timestamptz` -> `timestamp with time zone`,
    `varchar(20)` -> `character varying(20)`. Spellings it does not know are only lower-cased."""
    text = " ".join(spelling.lower().split())
    m = _TYPE_PARTS.match(text)
    if m is None:
        return text
    base = m.group("base") + (m.group("zone") or "")
    base = _TYPE_ALIASES.get(base, base)
    mod = (m.group("mod") or "").replace(" ", "")
    if mod and base.startswith(("timestamp ", "time ")):  # timestamp(3) with time zone
        head, zone = base.split(" ", 1)
        return f"{head}{mod} {zone}{m.group('array')}"
    return f"{base}{mod}{m.group('array')}"


def _type_options(wanted: object) -> list[str]:
    """The accepted types of one column: a type name or a list of them ([] when malformed)."""
    options = (
        [wanted] if isinstance(wanted, str) else list(wanted) if isinstance(wanted, (list, tuple)) else []
    )
    return options if options and all(isinstance(o, str) and o.strip() for o in options) else []


def accepts(wanted: str | Sequence[str], live: str) -> bool:
    """Whether a live column type (as `format_type` prints it) is one the queue accepts."""
    live_type = normalize_type(live)
    live_base = re.sub(r"\([^)]*\)", "", live_type)
    return any(normalize_type(o) in (live_type, live_base) for o in _type_options(wanted))


@dataclass
class QueueSchemaArgs:
    """`ddl`: idempotent SQL creating or adopting the queue (see module docstring for what it must do).
    `columns`: column name -> the type the queue needs (as `format_type` prints it, or a common alias), or
    the list of types it accepts: an adopted table may hold `status` as `character varying(20)`, which our
    functions handle as well as `text`. A length or precision on the live type does not matter.
    `drop_table_on_delete`: drop `public.sync_queue` and its rows on destroy (default: keep them)."""

    ddl: pulumi.Input[str]
    columns: pulumi.Input[Mapping[str, pulumi.Input[str | Sequence[str]]]]
    drop_table_on_delete: pulumi.Input[bool] = False


class QueueSchemaProvider(PostgresProvider):
    kind = "queue schema"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {**news, "drop_table_on_delete": news.get("drop_table_on_delete", False)}
        failures = []
        ddl = inputs.get("ddl")
        if not is_unknown(ddl) and (not isinstance(ddl, str) or not ddl.strip()):
            failures.append(CheckFailure("ddl", "ddl must be a non-empty SQL string"))
        columns = inputs.get("columns")
        if not is_unknown(columns) and (
            not isinstance(columns, Mapping)
            or not columns
            or not all(isinstance(k, str) and _type_options(v) for k, v in columns.items())
        ):
            failures.append(
                CheckFailure("columns", "columns must map column names to a type name or a list of them")
            )
        if not is_unknown(inputs["drop_table_on_delete"]) and not isinstance(
            inputs["drop_table_on_delete"], bool
        ):
            failures.append(
                CheckFailure("drop_table_on_delete", "drop_table_on_delete must be true or false")
            )
        return CheckResult(inputs, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=TABLE, outs=self._apply(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.session(TABLE, "read") as conn:
            live = _inspect(conn, props.get("columns") or {})
        if live is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_ or TABLE, outs={**inputs_of(props, INPUT_KEYS), **live})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        news = {**news, "drop_table_on_delete": news.get("drop_table_on_delete", False)}
        changes = bool(changed(olds, news, ("ddl", "drop_table_on_delete"))) or bool(
            _drift(news.get("columns"), olds)
        )
        return DiffResult(changes=changes, replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        drop_table = bool(props.get("drop_table_on_delete", False))
        with self.session(TABLE, "drop", transaction=True) as conn:
            for (trigger,) in conn.execute(_OUR_TRIGGERS, (TABLE, PRIVATE_SCHEMA)).fetchall():
                conn.execute(
                    sql.SQL("drop trigger if exists {} on {}.{}").format(
                        sql.Identifier(trigger), sql.Identifier(TABLE_SCHEMA), sql.Identifier(TABLE_NAME)
                    )
                )
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(PRIVATE_SCHEMA)))
            if drop_table:
                # No cascade: anything else built on the queue must have been removed first.
                conn.execute(
                    sql.SQL("drop table if exists {}.{}").format(
                        sql.Identifier(TABLE_SCHEMA), sql.Identifier(TABLE_NAME)
                    )
                )

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Runs the DDL and checks the result in the same transaction; rolls back if anything is off."""
        columns = props.get("columns") or {}
        with self.session(TABLE, "apply the DDL", transaction=True) as conn:
            conn.execute(props["ddl"])
            live = _inspect(conn, columns)
            if live is None:
                raise self.fail(TABLE, f"the DDL did not create {TABLE}")
            problems = _drift(columns, live)
            if problems:
                raise self.fail(
                    TABLE,
                    "after running the DDL the queue still differs from what it must be: "
                    + "; ".join(f"{k} is {live[k]!r}" for k in problems)
                    + " (the DDL must add missing columns, enable RLS, drop policies, revoke the API roles)",
                )
        return {
            **inputs_of(props, INPUT_KEYS),
            "drop_table_on_delete": props.get("drop_table_on_delete", False),
            **live,
        }


def _inspect(conn: psycopg.Connection[Any], columns: Mapping[str, str]) -> dict[str, Any] | None:
    """The live facts about the queue, or None when the table does not exist."""
    row = conn.execute(_TABLE_FACTS, (PRIVATE_SCHEMA, TABLE)).fetchone()
    if row is None:
        return None
    oid, rls_enabled, policy_count, private_schema_exists = row
    types = dict(conn.execute(_COLUMNS, (oid,)).fetchall())
    live_columns: dict[str, Any] = {}
    for column, wanted in columns.items():
        if column in types:
            # Keep the requested spelling when the live type is acceptable: refresh then shows no change.
            live_columns[column] = wanted if accepts(wanted, types[column]) else types[column]
    privileges = [r[0] for r in conn.execute(_API_PRIVILEGES, (list(API_ROLES), oid, oid)).fetchall()]
    return {
        "columns": live_columns,
        "missing_columns": sorted(c for c in columns if c not in types),
        "rls_enabled": bool(rls_enabled),
        "policy_count": int(policy_count),
        "api_role_privileges": privileges,
        "private_schema_exists": bool(private_schema_exists),
    }


def _drift(wanted_columns: Any, live: Mapping[str, Any]) -> list[str]:
    """Which live facts differ from the desired columns and the required state."""
    problems = [key for key, required in REQUIRED_STATE.items() if live.get(key) != required]
    live_columns = live.get("columns")
    if (
        is_unknown(wanted_columns)
        or not isinstance(wanted_columns, Mapping)
        or not isinstance(live_columns, Mapping)
        or set(wanted_columns) != set(live_columns)
        or not all(
            live_columns[c] == wanted
            or (isinstance(live_columns[c], str) and accepts(wanted, live_columns[c]))
            for c, wanted in wanted_columns.items()
        )
    ):
        problems.insert(0, "columns")
    return problems


class QueueSchema(Resource, module="bubblesync", name="QueueSchema"):
    """The queue table and the private schema, from one idempotent DDL; id = `public.sync_queue`."""

    ddl: pulumi.Output[str]
    columns: pulumi.Output[dict[str, Any]]
    drop_table_on_delete: pulumi.Output[bool]
    missing_columns: pulumi.Output[list[str]]
    rls_enabled: pulumi.Output[bool]
    policy_count: pulumi.Output[int]
    api_role_privileges: pulumi.Output[list[str]]
    private_schema_exists: pulumi.Output[bool]

    def __init__(
        self, resource_name: str, args: QueueSchemaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "ddl": args.ddl,
            "columns": args.columns,
            "drop_table_on_delete": args.drop_table_on_delete,
            # outputs only
            "missing_columns": None,
            "rls_enabled": None,
            "policy_count": None,
            "api_role_privileges": None,
            "private_schema_exists": None,
        }
        super().__init__(QueueSchemaProvider(), resource_name, props, opts)

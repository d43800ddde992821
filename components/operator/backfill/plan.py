"""Checking a backfill before anything is queued: what the flags mean in this database (`plan_backfill`,
returning a `Plan`), and what a run would do (`describe`). BackfillError names the flag at fault, or the step
to take; its message holds no secret.

The checks: the table, the key (a column a primary key or unique index covers alone) and the fields, from
the table's mapping when the stack maps it (mapped.py: what its trigger queues) or else from the flags and
the signup trigger's own arguments (flags.py); the row filter (the mapping's `where` and the operator's
--where, both must hold); and a queue that takes BACKFILL rows. Then the counts of what would be queued and
what skipped (all a --dry-run does). They run in one transaction that is rolled back (the probe of the queue
inserts a row). The queries are in sql/operator_backfill.sql.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from components.mappings import Mapping
from components.operator.backfill.base import BackfillError, qualified_name, run_query
from components.operator.backfill.flags import checked_fields, checked_key, describe_triggers, signup_triggers
from components.operator.backfill.mapped import check_mapping, refuse_without_inserts
from components.operator.connection import OperatorError
from components.operator.formatting import one_line
from components.operator.mappings import deployed_mappings
from components.operator.queries import backfill_query, one_row

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "BackfillError",
    "Plan",
    "describe",
    "plan_backfill",
    "qualified_name",
]

#: rows per chunk, and so per transaction. Each record of a chunk is locked as enqueue locks it (an entry in
#: PostgreSQL's shared lock table, which holds max_locks_per_transaction x max_connections: 6,400 by default,
#: 3,840 on Supabase's smallest compute), so a chunk stays well under that.
DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 2000

_RELKINDS = {"v": "a view", "m": "a materialized view", "f": "a foreign table", "S": "a sequence",
             "c": "a composite type", "i": "an index", "I": "an index", "t": "a TOAST table"}  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """What the flags mean in this database, checked, and what a run would do now."""

    source_oid: int
    schema: str
    table: str
    queue_table_name: str  # what the signup trigger writes into sync_queue.table_name
    key: str
    key_type: str
    fields: tuple[str, ...]  # empty: every column but credentials, as the trigger without an allow-list
    where: str | None  # the operator's --where
    chunk_size: int
    matching: int = 0
    null_keys: int = 0
    already_queued: int = 0
    warnings: tuple[str, ...] = ()
    #: the stack's mapping of the table: its key, columns and row filter are the plan's
    mapping: Mapping | None = None

    @property
    def source(self) -> str:
        return qualified_name(self.schema, self.table)

    @property
    def label(self) -> str:
        """How messages name what is backfilled: the mapping, else the table."""
        return f"mapping {self.mapping.name}" if self.mapping is not None else self.source

    @property
    def condition(self) -> str | None:
        """The rows taken: the mapping's row filter and the --where, both (each on lines of its own, so that a
        trailing comment in one cannot swallow the other)."""
        parts = [p for p in (self.mapping.where if self.mapping else None, self.where) if p is not None]
        if len(parts) < 2:
            return parts[0] if parts else None
        return " and ".join(f"(\n{p}\n)" for p in parts)

    @property
    def to_scan(self) -> int:
        """The rows the keyset pagination visits."""
        return self.matching - self.null_keys

    @property
    def to_queue(self) -> int:
        return self.to_scan - self.already_queued

    def compose(self, name: str) -> sql.Composed:
        """The query `name` of sql/operator_backfill.sql with its slots filled in."""
        condition = self.condition
        where = "true" if condition is None else condition.replace("%", "%%")
        return sql.SQL(backfill_query(name)).format(
            source=sql.Identifier(self.schema, self.table),
            row=sql.Identifier(self.table),
            key=sql.Identifier(self.key),
            key_type=sql.SQL(self.key_type),  # format_type's own output, from the catalogue
            where=sql.SQL(where),
        )


# -- checking the flags --------------------------------------------------------------------------------------


def plan_backfill(
    conn: psycopg.Connection[Any],
    *,
    source: str | None = None,
    key: str | None = None,
    fields: Sequence[str] | None = None,
    where: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    mapping: Mapping | None = None,
    deployed: Sequence[Mapping] | None = None,
) -> Plan:
    """Checks everything against the database, in one transaction that is rolled back (its probe inserts a
    BACKFILL row), and counts the rows. Raises BackfillError naming the flag at fault.

    `source` (--from) or `mapping` (a deployed mapping, which names its table, key and fields: then `key` and
    `fields` stay None). `deployed`: the database's mappings, when the caller has read them already; a
    --from table among them is backfilled as its mapping."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise BackfillError(f"--chunk-size {chunk_size}: must be between 1 and {MAX_CHUNK_SIZE}")
    if where is not None and not where.strip():
        raise BackfillError("--where is empty: leave it out to take every row")
    if (source is None) == (mapping is None):
        raise BackfillError("give the table with --from TABLE, or a mapping (--mapping NAME), not both")
    if mapping is not None and (key is not None or fields is not None):
        raise BackfillError(f"--mapping {mapping.name} takes the key and the fields from the mapping")
    try:
        with conn.transaction(force_rollback=True):
            if deployed is None:
                deployed = deployed_mappings(conn)
            return _plan(
                conn, source=source, key=key, fields=fields, where=where, chunk_size=chunk_size,
                mapping=mapping, deployed=deployed,
            )  # fmt: skip
    except OperatorError as exc:  # bubble_sync.mappings cannot be read back
        raise BackfillError(str(exc)) from None
    except psycopg.errors.OutOfMemory as exc:  # pragma: no cover - the lock table, on a busy database
        message = one_line(str(exc))
        raise BackfillError(f"the database ran out of lock slots ({message}): lower --chunk-size") from None


def _plan(
    conn: psycopg.Connection[Any],
    *,
    source: str | None,
    key: str | None,
    fields: Sequence[str] | None,
    where: str | None,
    chunk_size: int,
    mapping: Mapping | None,
    deployed: Sequence[Mapping],
) -> Plan:
    present = one_row(run_query(conn, backfill_query("present")))
    if not present["queue"]:
        raise BackfillError(
            "public.sync_queue does not exist: the stack is not applied to this database (pulumi up first)"
        )
    if not present["backfill"]:
        raise BackfillError(
            "this database has the queue of an earlier release, without bubble_sync.enqueue_backfill: run "
            "`pulumi up` for this stack first (it also deploys the Edge Function that syncs backfilled rows)"
        )

    if mapping is not None:
        table = _source(conn, mapping.qualified_table, f"--mapping {mapping.name}: its table")
    else:
        assert source is not None
        table = _source(conn, source, f"--from {source}")
        mapping = next((m for m in deployed if m.queue_table == table["queue_table_name"]), None)
        if mapping is not None:
            _adopt(mapping, source, key, fields)
    columns = {
        row["name"]: row["type"] for row in run_query(conn, backfill_query("columns"), {"oid": table["oid"]})
    }
    label = qualified_name(table["schema_name"], table["table_name"])
    warnings: list[str] = []
    if mapping is not None:
        warnings += check_mapping(conn, mapping, table, columns, label)
        key, chosen = mapping.key, mapping.columns
    else:
        triggers = signup_triggers(conn, table["oid"])
        if len({(k, f) for _, k, f in triggers}) > 1:
            warnings.append(
                f"{label} has signup triggers with different arguments: {describe_triggers(triggers)}"
            )
        trigger = triggers[0] if triggers else None
        key = checked_key(conn, key, trigger, table["oid"], columns, label)
        chosen = checked_fields(fields, trigger, columns, label, warnings)

    plan = Plan(
        source_oid=table["oid"],
        schema=table["schema_name"],
        table=table["table_name"],
        queue_table_name=table["queue_table_name"],
        key=key,
        key_type=columns[key],
        fields=chosen,
        where=where,
        chunk_size=chunk_size,
        mapping=mapping,
    )
    _check_queue_accepts_backfill(conn)
    return _counted(conn, plan, tuple(warnings))


def _adopt(mapping: Mapping, source: str, key: str | None, fields: Sequence[str] | None) -> None:
    """A --from table the stack maps is backfilled as its mapping: its records must be queued as its trigger
    queues them (its key, its columns, its filter, the payload converted), or a later change would not meet
    them, and Bubble would get other fields than from the trigger."""
    if key is not None or fields is not None:
        raise BackfillError(
            f"--from {source} is the table of mapping {mapping.name}, whose key and fields are the ones its "
            f"trigger queues: leave out --key and --fields (or give --mapping {mapping.name})"
        )
    why = refuse_without_inserts(mapping)
    if why is not None:
        raise BackfillError(f"--from {source}: {why}")


def _source(conn: psycopg.Connection[Any], source: str, flag: str) -> MappingType[str, Any]:
    try:
        with conn.transaction():
            row = run_query(conn, backfill_query("source"), {"name": source}).fetchone()
    except psycopg.Error as exc:
        raise BackfillError(f"{flag}: {one_line(str(exc))}") from None
    if row is None:
        raise BackfillError(
            f"{flag}: no such table (named as SQL names it: schema.table, unquoted names in lower "
            "case; without a schema, the first match on the search path)"
        )
    if row["relkind"] not in ("r", "p"):
        what = _RELKINDS.get(row["relkind"], f"not a table (relkind {row['relkind']})")
        raise BackfillError(
            f"{flag} is {what}: give the table the signup trigger is attached to (the queue names "
            "a record by its table)"
        )
    return row


def _check_queue_accepts_backfill(conn: psycopg.Connection[Any]) -> None:
    conn.execute(backfill_query("quiet_dispatch"))
    try:
        with conn.transaction():  # a savepoint; the caller rolls the whole check back anyway
            conn.execute(backfill_query("accepts_backfill"))
    except psycopg.Error as exc:
        message = one_line(str(exc), 300)
        hint = (
            ": its constraint predates backfills, run `pulumi up` for this stack first"
            if "sync_queue_operation_valid" in message
            else ""
        )
        raise BackfillError(f"public.sync_queue refuses a BACKFILL row ({message}){hint}") from None


def _counted(conn: psycopg.Connection[Any], plan: Plan, warnings: tuple[str, ...]) -> Plan:
    filters = []
    if plan.mapping is not None and plan.mapping.where is not None:
        filters.append(f"the where of mapping {plan.mapping.name} {plan.mapping.where!r}")
    if plan.where is not None:
        filters.append(f"--where {plan.where!r}")
    what = " and ".join(filters) if filters else f"counting the rows of {plan.source}"
    try:
        with conn.transaction():
            conn.execute(plan.compose("check_where"), {})
    except psycopg.Error as exc:
        raise BackfillError(f"{what}: {one_line(str(exc), 300)}") from None
    params = {"queue_table_name": plan.queue_table_name, "key_column": plan.key}
    try:
        with conn.transaction():
            row = one_row(run_query(conn, plan.compose("count"), params))
    except psycopg.Error as exc:
        raise BackfillError(f"{what} failed while counting the rows: {one_line(str(exc), 300)}") from None
    return replace(
        plan,
        matching=row["matching"],
        null_keys=row["null_keys"],
        already_queued=row["already_queued"],
        warnings=warnings,
    )


def describe(plan: Plan) -> str:
    """One paragraph: what the run takes and what it would do."""
    fields = ", ".join(plan.fields) or "every column but credentials"
    condition = plan.condition
    where = f" where {one_line(condition, 80)}" if condition is not None else ""
    mapped = f"mapping {plan.mapping.name} (Bubble type {plan.mapping.data_type}): " if plan.mapping else ""
    lines = [
        f"{mapped}{plan.source}{where}: {plan.matching:,} rows (key {plan.key}, record ids "
        f"{plan.queue_table_name}:<{plan.key}>; fields {fields})",
        f"  to queue {plan.to_queue:,}; skipped {plan.already_queued:,} (already in public.sync_queue)",
    ]
    if plan.null_keys:
        lines.append(f"  left out {plan.null_keys:,} with a NULL {plan.key} (the trigger refuses those too)")
    return "\n".join(lines)

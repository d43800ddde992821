"""Checking a backfill before anything is queued: what the flags mean in this database (`plan_backfill`,
returning a `Plan`), and what a run would do (`describe`). BackfillError names the flag at fault, or the step
to take; its message holds no secret.

The checks: the table, the key (a column a primary key or unique index covers alone), the fields, the signup
trigger's own arguments, the --where, and a queue that takes BACKFILL rows; then the counts of what would be
queued and what skipped (all a --dry-run does). They run in one transaction that is rolled back (the probe of
the queue inserts a row). The queries are in sql/operator_backfill.sql.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from components.errors import BubbleSyncError
from components.operator.formatting import _one_line
from components.operator.queries import backfill_query

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


class BackfillError(BubbleSyncError):
    """A flag does not fit the database, or the database is not ready for a backfill. The message names the
    flag (or the step to take) and holds no secret; nothing was queued."""


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
    where: str | None
    chunk_size: int
    matching: int = 0
    null_keys: int = 0
    already_queued: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return qualified_name(self.schema, self.table)

    @property
    def to_scan(self) -> int:
        """The rows the keyset pagination visits."""
        return self.matching - self.null_keys

    @property
    def to_queue(self) -> int:
        return self.to_scan - self.already_queued

    def compose(self, name: str) -> sql.Composed:
        """The query `name` of sql/operator_backfill.sql with its slots filled in."""
        where = "true" if self.where is None else self.where.replace("%", "%%")
        return sql.SQL(backfill_query(name)).format(
            source=sql.Identifier(self.schema, self.table),
            row=sql.Identifier(self.table),
            key=sql.Identifier(self.key),
            key_type=sql.SQL(self.key_type),  # format_type's own output, from the catalogue
            where=sql.SQL(where),
        )


def qualified_name(schema: str, table: str) -> str:
    """schema.table as SQL reads it, quoting only the parts that need quotes."""
    return ".".join(
        part if re.fullmatch(r"[a-z_][a-z0-9_$]*", part) else sql.Identifier(part).as_string(None)
        for part in (schema, table)
    )


def _run(
    conn: psycopg.Connection[Any], query: str | sql.Composed, params: Mapping[str, Any] | None = None
) -> psycopg.Cursor[dict[str, Any]]:
    """Runs one query, its rows as dicts whatever the connection's row factory."""
    return conn.cursor(row_factory=dict_row).execute(query, params)


# -- checking the flags --------------------------------------------------------------------------------------


def plan_backfill(
    conn: psycopg.Connection[Any],
    *,
    source: str,
    key: str | None,
    fields: Sequence[str] | None,
    where: str | None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Plan:
    """Checks everything against the database, in one transaction that is rolled back (its probe inserts a
    BACKFILL row), and counts the rows. Raises BackfillError naming the flag at fault."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise BackfillError(f"--chunk-size {chunk_size}: must be between 1 and {MAX_CHUNK_SIZE}")
    if where is not None and not where.strip():
        raise BackfillError("--where is empty: leave it out to take every row")
    try:
        with conn.transaction(force_rollback=True):
            return _plan(conn, source=source, key=key, fields=fields, where=where, chunk_size=chunk_size)
    except psycopg.errors.OutOfMemory as exc:  # pragma: no cover - the lock table, on a busy database
        message = _one_line(str(exc))
        raise BackfillError(f"the database ran out of lock slots ({message}): lower --chunk-size") from None


def _plan(
    conn: psycopg.Connection[Any],
    *,
    source: str,
    key: str | None,
    fields: Sequence[str] | None,
    where: str | None,
    chunk_size: int,
) -> Plan:
    present = _run(conn, backfill_query("present")).fetchone()
    if not present["queue"]:
        raise BackfillError(
            "public.sync_queue does not exist: the stack is not applied to this database (pulumi up first)"
        )
    if not present["backfill"]:
        raise BackfillError(
            "this database has the queue of an earlier release, without bubble_sync.enqueue_backfill: run "
            "`pulumi up` for this stack first (it also deploys the Edge Function that syncs backfilled rows)"
        )

    table = _source(conn, source)
    columns = {
        row["name"]: row["type"] for row in _run(conn, backfill_query("columns"), {"oid": table["oid"]})
    }
    label = qualified_name(table["schema_name"], table["table_name"])
    triggers = [_trigger_args(row) for row in _run(conn, backfill_query("triggers"), {"oid": table["oid"]})]
    warnings: list[str] = []
    if len({(k, f) for _, k, f in triggers}) > 1:
        warnings.append(
            f"{label} has signup triggers with different arguments: {_describe_triggers(triggers)}"
        )
    trigger = triggers[0] if triggers else None

    key = _checked_key(conn, key, trigger, table["oid"], columns, label)
    chosen = _checked_fields(fields, trigger, columns, label, warnings)

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
    )
    _check_queue_accepts_backfill(conn)
    return _counted(conn, plan, tuple(warnings))


def _source(conn: psycopg.Connection[Any], source: str) -> Mapping[str, Any]:
    try:
        with conn.transaction():
            row = _run(conn, backfill_query("source"), {"name": source}).fetchone()
    except psycopg.Error as exc:
        raise BackfillError(f"--from {source}: {_one_line(str(exc))}") from None
    if row is None:
        raise BackfillError(
            f"--from {source}: no such table (named as SQL names it: schema.table, unquoted names in lower "
            "case; without a schema, the first match on the search path)"
        )
    if row["relkind"] not in ("r", "p"):
        what = _RELKINDS.get(row["relkind"], f"not a table (relkind {row['relkind']})")
        raise BackfillError(
            f"--from {source} is {what}: give the table the signup trigger is attached to (the queue names "
            "a record by its table)"
        )
    return row


def _trigger_args(row: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """(trigger name, its key column, its allow-list), read as bubble_sync.enqueue_change reads them."""
    args = [a.decode() for a in bytes(row["args"]).split(b"\x00")[: row["nargs"]]]
    return row["name"], (args[0] if args and args[0] else "id"), tuple(args[1:])


def _describe_triggers(triggers: Sequence[tuple[str, str, tuple[str, ...]]]) -> str:
    return "; ".join(f"{name} (key {key}, fields {', '.join(f) or 'all'})" for name, key, f in triggers)


def _checked_key(
    conn: psycopg.Connection[Any],
    key: str | None,
    trigger: tuple[str, str, tuple[str, ...]] | None,
    oid: int,
    columns: Mapping[str, str],
    label: str,
) -> str:
    if key is None:
        key = trigger[1] if trigger else "id"
    if key not in columns:
        raise BackfillError(f"--key {key}: {label} has no column {key}{_did_you_mean(key, columns)}")
    if trigger is not None and trigger[1] != key:
        raise BackfillError(
            f"--key {key}: the signup trigger {trigger[0]} on {label} keys records by {trigger[1]}; a "
            "backfilled record must carry the record id the trigger gives it, or a later change of it would "
            f"not find its row and Bubble would get it twice: use --key {trigger[1]} (or leave --key out)"
        )
    unique = {row["name"] for row in _run(conn, backfill_query("unique_columns"), {"oid": oid})}
    if key not in unique:
        raise BackfillError(
            f"--key {key}: {label} has no primary key or unique index on {key} alone; the key must tell "
            "records apart (the record id in Bubble is <table>:<key>) and order them for paging"
        )
    return key


def _checked_fields(
    fields: Sequence[str] | None,
    trigger: tuple[str, str, tuple[str, ...]] | None,
    columns: Mapping[str, str],
    label: str,
    warnings: list[str],
) -> tuple[str, ...]:
    if fields is None:
        if trigger is None:
            raise BackfillError(
                f"--fields is required: {label} has no signup trigger (bubble_sync.enqueue_change) to take "
                "the payload's fields from"
            )
        return trigger[2]
    chosen = tuple(fields)
    if not chosen:
        raise BackfillError("--fields is empty: name the columns Bubble gets, comma-separated")
    repeated = sorted({f for f in chosen if chosen.count(f) > 1})
    if repeated:
        raise BackfillError(f"--fields names {', '.join(repeated)} more than once")
    for name in chosen:
        if name not in columns:
            raise BackfillError(f"--fields: {label} has no column {name}{_did_you_mean(name, columns)}")
    if trigger is not None and set(trigger[2]) != set(chosen):
        warnings.append(
            f"--fields differ from the allow-list of the signup trigger {trigger[0]} "
            f"({', '.join(trigger[2]) or 'every column but credentials'}): backfilled records are sent with "
            "other fields than new signups"
        )
    return chosen


def _did_you_mean(name: str, columns: Mapping[str, str]) -> str:
    close = [c for c in columns if c.lower() == name.lower()]
    return f" (did you mean {close[0]}? column names are exact)" if close else ""


def _check_queue_accepts_backfill(conn: psycopg.Connection[Any]) -> None:
    conn.execute(backfill_query("quiet_dispatch"))
    try:
        with conn.transaction():  # a savepoint; the caller rolls the whole check back anyway
            conn.execute(backfill_query("accepts_backfill"))
    except psycopg.Error as exc:
        message = _one_line(str(exc), 300)
        hint = (
            ": its constraint predates backfills, run `pulumi up` for this stack first"
            if "sync_queue_operation_valid" in message
            else ""
        )
        raise BackfillError(f"public.sync_queue refuses a BACKFILL row ({message}){hint}") from None


def _counted(conn: psycopg.Connection[Any], plan: Plan, warnings: tuple[str, ...]) -> Plan:
    what = f"--where {plan.where!r}" if plan.where is not None else f"counting the rows of {plan.source}"
    try:
        with conn.transaction():
            conn.execute(plan.compose("check_where"), {})
    except psycopg.Error as exc:
        raise BackfillError(f"{what}: {_one_line(str(exc), 300)}") from None
    params = {"queue_table_name": plan.queue_table_name, "key_column": plan.key}
    try:
        with conn.transaction():
            row = _run(conn, plan.compose("count"), params).fetchone()
    except psycopg.Error as exc:
        raise BackfillError(f"{what} failed while counting the rows: {_one_line(str(exc), 300)}") from None
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
    where = f" where {_one_line(plan.where, 80)}" if plan.where is not None else ""
    lines = [
        f"{plan.source}{where}: {plan.matching:,} rows (key {plan.key}, record ids "
        f"{plan.queue_table_name}:<{plan.key}>; fields {fields})",
        f"  to queue {plan.to_queue:,}; skipped {plan.already_queued:,} (already in public.sync_queue)",
    ]
    if plan.null_keys:
        lines.append(
            f"  left out {plan.null_keys:,} with a NULL {plan.key} (the signup trigger refuses those too)"
        )
    return "\n".join(lines)

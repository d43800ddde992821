"""A mapping's side in Supabase, as reconcile walks it: `Target` (the mapping, its table and key as the
catalogue has them, the --where), checked by `resolve_target` before Bubble is asked anything; its records in
keyset chunks of the key (`chunks`); and the database's verdict on a chunk (`compare`: bubble_sync.
compare_with_bubble, the one comparison rule, over the things the session read).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from components.mappings import Mapping
from components.operator.formatting import one_line
from components.operator.reconcile.base import ReconcileError
from components.operator.reconcile.findings import Difference
from components.operator.reconcile.queries import reconcile_query

__all__ = ["DEFAULT_CHUNK_SIZE", "Target", "resolve_target"]

#: records per chunk: one comparison statement each (the things of 1,000 records fit a statement easily)
DEFAULT_CHUNK_SIZE = 1000


@dataclass(frozen=True)
class Target:
    """One mapping as reconcile compares it."""

    mapping: Mapping
    source_oid: int
    key_type: str
    #: the operator's --where (ANDed with the mapping's own)
    where: str | None = None

    @property
    def prefix(self) -> str:
        """How the record's key in Bubble starts: `<queue table>:`."""
        return f"{self.mapping.queue_table}:"

    @property
    def bubble_fields(self) -> tuple[str, ...]:
        """The Bubble fields a comparison reads: the mapped ones, and those a soft delete sets (an archived
        orphan is no difference)."""
        return (*(f.field for f in self.mapping.fields), *self.mapping.on_delete.fields)

    @property
    def condition(self) -> str | None:
        """The rows compared: the mapping's where and the --where, both (each on lines of its own, so that a
        trailing comment in one cannot swallow the other)."""
        parts = [p for p in (self.mapping.where, self.where) if p is not None]
        if len(parts) < 2:
            return parts[0] if parts else None
        return " and ".join(f"(\n{p}\n)" for p in parts)

    def compose(self, name: str) -> sql.Composed:
        condition = self.condition
        where = "true" if condition is None else condition.replace("%", "%%")
        return sql.SQL(reconcile_query(name)).format(
            source=sql.Identifier(self.mapping.schema, self.mapping.table),
            row=sql.Identifier(self.mapping.table),
            key=sql.Identifier(self.mapping.key),
            key_type=sql.SQL(self.key_type),  # format_type's own output, from the catalogue
            where=sql.SQL(where),
        )

    def params(self, **more: Any) -> dict[str, Any]:
        """The parameters naming the mapping, its table and its things, and `more`."""
        return {
            "mapping": self.mapping.name,
            "data_type": self.mapping.data_type,
            "key_field": self.mapping.key_field,
            "prefix": self.prefix,
            "queue_table": self.mapping.queue_table,
            "table_name": self.mapping.queue_table,
            "source_oid": self.source_oid,
            "columns": list(self.mapping.columns),
            "mapping_where": self.mapping.where,
            **more,
        }

    # -- reading ------------------------------------------------------------------------------------------

    def count(self, conn: psycopg.Connection[Any]) -> int:
        records: int = _rows(conn, self.compose("count"), {})[0]["records"]
        return records

    def chunks(self, conn: psycopg.Connection[Any], chunk_size: int) -> Iterator[list[str]]:
        """The records to compare, in key order, `chunk_size` at a time (keyset pagination)."""
        after: str | None = None
        query = self.compose("chunk")
        while True:
            row = _rows(conn, query, {"after": after, "chunk_size": chunk_size})[0]
            if not row["record_ids"]:
                return
            yield row["record_ids"]
            if len(row["record_ids"]) < chunk_size:
                return
            after = row["last_key"]

    def compare(self, conn: psycopg.Connection[Any], record_ids: Sequence[str]) -> list[Difference]:
        """What differs between these records and the things read for them (the things are then marked
        compared)."""
        rows = _rows(conn, reconcile_query("compare"), self.params(record_ids=list(record_ids)))
        return [
            Difference(
                r["record_id"], r["difference"], tuple(r["fields"] or ()), tuple(r["bubble_ids"] or ())
            )
            for r in rows
        ]

    def uncompared(self, conn: psycopg.Connection[Any]) -> list[str]:
        """Records named by things read that no comparison took: their row is gone or filtered out."""
        return [r["record_id"] for r in _rows(conn, reconcile_query("uncompared"), self.params())]

    def things(self, conn: psycopg.Connection[Any]) -> int:
        things: int = _rows(conn, reconcile_query("counted_things"), self.params())[0]["things"]
        return things

    def links(self, conn: psycopg.Connection[Any], record_ids: Sequence[str]) -> dict[str, str]:
        rows = _rows(conn, reconcile_query("links"), self.params(record_ids=list(record_ids)))
        return {r["record_id"]: r["bubble_id"] for r in rows}

    def archived(self, conn: psycopg.Connection[Any], bubble_ids: Sequence[str]) -> set[str]:
        """Of these things, those holding every value the mapping's soft delete sets."""
        if self.mapping.on_delete.action != "set" or not bubble_ids:
            return set()
        params = self.params(bubble_ids=list(bubble_ids), set_fields=Jsonb(
            dict(self.mapping.on_delete.fields)
        ))  # fmt: skip
        return {r["bubble_id"] for r in _rows(conn, reconcile_query("archived"), params)}


def resolve_target(conn: psycopg.Connection[Any], mapping: Mapping, where: str | None) -> Target:
    """The mapping checked against the database: its table and key exist, and the row filter (the mapping's
    and --where) plans. Raises ReconcileError naming what does not fit; reads no row."""
    if where is not None and not where.strip():
        raise ReconcileError("--where is empty: leave it out to compare every record")
    row = _rows(conn, reconcile_query("source"), {"table": mapping.qualified_table, "key": mapping.key})
    if not row:
        raise ReconcileError(
            f"mapping {mapping.name}: its table {mapping.qualified_table} does not exist (`pulumi preview` "
            "says the same of the stack's config)"
        )
    if row[0]["key_type"] is None:
        raise ReconcileError(
            f"mapping {mapping.name}: {mapping.qualified_table} has no key column {mapping.key}"
        )
    target = Target(mapping, row[0]["oid"], row[0]["key_type"], where)
    try:
        with conn.transaction():
            conn.execute(target.compose("check_where"))
    except psycopg.Error as exc:
        what = f"--where {where!r}" if where is not None else f"the where of mapping {mapping.name}"
        if where is not None and mapping.where is not None:
            what += f" (ANDed with the mapping's {mapping.where!r})"
        raise ReconcileError(f"{what}: {one_line(str(exc), 300)}") from None
    return target


def _rows(
    conn: psycopg.Connection[Any], query: str | sql.Composed, params: dict[str, Any]
) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()

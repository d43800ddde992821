"""The mappings a stack deployed, read from the database itself, so that `--database-url` alone is enough for
the operator tools (status, backfill, preflight): `deployed_mappings` reads `bubble_sync.mappings`, the row
per mapping the stack writes (sql/mapping_record.sql), through `components.mappings.from_definition`, and
`reference_order` puts them in the order their records must reach Bubble (a mapping after those it refers to).

A database deployed before mappings existed has no such table: no mappings, as a stack without any.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from components.mappings import Mapping, from_definition
from components.operator.connection import OperatorError
from components.operator.formatting import one_line
from components.operator.queries import query

__all__ = ["deployed_mappings", "mapping_names", "reference_order"]


def deployed_mappings(conn: psycopg.Connection[Any]) -> tuple[Mapping, ...]:
    """The deployed mappings, ordered by name; () when the database has none (or no bubble_sync.mappings at
    all). Raises OperatorError naming the mapping whose row cannot be read back as a mapping: the tools would
    otherwise queue or judge rows with a wrong idea of what the stack syncs."""
    cursor = conn.cursor(row_factory=dict_row)
    try:
        present = cursor.execute(query("mappings_present")).fetchone()
        if present is None or not present["present"]:
            return ()
        rows = cursor.execute(query("deployed_mappings")).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise OperatorError(f"cannot read bubble_sync.mappings: {one_line(str(exc))}") from None
    return tuple(_mapping(row) for row in rows)


def _mapping(row: dict[str, Any]) -> Mapping:
    name, table_name, definition = row["name"], row["table_name"], row["definition"]
    where = f"bubble_sync.mappings row {name!r}"
    if not isinstance(definition, dict):
        raise OperatorError(f"{where}: its definition is not a JSON object; `pulumi up` writes it again")
    try:
        mapping = from_definition(definition)
    except ValueError as exc:
        raise OperatorError(
            f"{where} is malformed ({one_line(str(exc), 200)}); `pulumi up` writes it again"
        ) from None
    # The row's own columns are what claim and the function go by: a definition that disagrees with them is
    # as broken as one that does not parse.
    if mapping.name != name or mapping.queue_table != table_name:
        raise OperatorError(
            f"{where} is malformed: its definition names mapping {mapping.name!r} of table "
            f"{mapping.queue_table!r}, the row says {name!r} of {table_name!r}; `pulumi up` writes it again"
        )
    return mapping


def reference_order(mappings: Iterable[Mapping]) -> tuple[Mapping, ...]:
    """`mappings` with each one after the mappings it refers to (`ref` fields), otherwise in the order given:
    users before listings when a listing names its host. A backfill queues them in this order, so a listing's
    row finds its host's row in the queue and waits for it (bubble_sync.claim) instead of failing to find the
    host in Bubble. A reference to a mapping not among them is no constraint; a cycle (refused at preview)
    keeps the given order for the mappings in it."""
    given = list(mappings)
    names = {m.name for m in given}
    ordered: list[Mapping] = []
    placed: set[str] = set()
    while len(ordered) < len(given):
        ready = [
            m
            for m in given
            if m.name not in placed
            and all(f.ref in placed or f.ref not in names or f.ref == m.name for f in m.fields if f.ref)
        ]
        if not ready:  # a cycle: take the first one left, as given
            ready = [next(m for m in given if m.name not in placed)]
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return tuple(ordered)


def mapping_names(mappings: Iterable[Mapping]) -> str:
    """`users, listings`, or `none` (for messages listing what is deployed)."""
    return ", ".join(m.name for m in mappings) or "none"

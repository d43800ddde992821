"""What flows from Supabase to Bubble: the stack's `mappings`, each a source table sent to a Bubble data type.

One `Mapping` per entry of `bubble-sync:mappings` (validated by components/mapping_config.py), with the forms
the rest of the system takes it in:

* `trigger_argument()` — the JSON the stack's trigger on the source table passes to
  `bubble_sync.enqueue_mapped()` (sql/functions/enqueue.sql): the key column, the columns to queue, the row
  filter and the operations. Self-contained, so the trigger never needs anything but its own definition.
* `definition()` — the whole mapping as JSON: the row of `bubble_sync.mappings` the stack writes (the tools
  and `bubble_sync.claim` read it there) and, as a list, the Edge Function's `BUBBLE_SYNC_MAPPINGS`
  (`mappings_json`).

A queue row of a mapped table carries `table_name` = `queue_table` (as `bubble_sync.queue_table_name` names
it), `record_id` = the key column's value, and a payload of the mapped columns by column name, with values as
`bubble_sync.mapped_payload` converts them for Bubble; the function renames them to the Bubble fields and
turns reference columns into Bubble ids.

Pure Python: nothing happens at import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from typing import Literal

from pglast import keywords

__all__ = [
    "OPERATIONS",
    "FieldMap",
    "Mapping",
    "OnDelete",
    "Operation",
    "from_definition",
    "mappings_json",
    "quote_ident",
]

Operation = Literal["insert", "update", "delete"]
#: the operations a mapping may sync, in the order they are written
OPERATIONS: tuple[Operation, ...] = ("insert", "update", "delete")
#: a value a soft delete may set: what YAML or JSON can hold
JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


def quote_ident(name: str) -> str:
    """`name` as PostgreSQL's quote_ident (and pg_get_triggerdef) writes an identifier: bare when it is a
    lowercase name that is not a keyword other than an unreserved one, else in double quotes."""
    bare = (
        name != ""
        and (name[0].islower() or name[0] == "_")
        and all(c.islower() or c.isdigit() or c in "_$" for c in name)
        and name.isascii()
        and (name not in _KEYWORDS or name in keywords.UNRESERVED_KEYWORDS)
    )
    return name if bare else '"' + name.replace('"', '""') + '"'


_KEYWORDS: frozenset[str] = frozenset().union(
    keywords.RESERVED_KEYWORDS,
    keywords.UNRESERVED_KEYWORDS,
    keywords.COL_NAME_KEYWORDS,
    keywords.TYPE_FUNC_NAME_KEYWORDS,
)


@dataclass(frozen=True)
class FieldMap:
    """A source column and the Bubble field it fills. `ref`: the name of the mapping whose record the column
    holds the key of; the field then gets that record's Bubble id (a relation field)."""

    column: str
    field: str
    ref: str | None = None


@dataclass(frozen=True)
class OnDelete:
    """What a DELETE of a source row does in Bubble: `delete` the thing, `ignore` it, or `set` these fields on
    it (a soft delete, say `{"Archived": true}`)."""

    action: Literal["delete", "ignore", "set"]
    fields: MappingType[str, JsonValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        if self.action == "set":
            return {"action": "set", "fields": dict(self.fields)}
        return {"action": self.action}


@dataclass(frozen=True)
class Mapping:
    """One validated entry of `bubble-sync:mappings`."""

    name: str
    #: the source table's schema and name, as PostgreSQL names them (unquoted)
    schema: str
    table: str
    #: the column whose value identifies a record (a primary key or unique column)
    key: str
    data_type: str
    #: the Bubble field holding the stable key (`<queue_table>:<key value>`), looked up before creates
    key_field: str
    fields: tuple[FieldMap, ...]
    #: a SQL condition on the row's columns; only rows for which it holds are synced (None: every row)
    where: str | None
    operations: tuple[Operation, ...]
    on_delete: OnDelete

    @property
    def queue_table(self) -> str:
        """How sync_queue.table_name names the table (bubble_sync.queue_table_name): `profiles` for
        public.profiles, `auth.users` outside public."""
        return self.table if self.schema == "public" else f"{self.schema}.{self.table}"

    @property
    def qualified_table(self) -> str:
        """The table as SQL names it: `public.profiles`, quoted where PostgreSQL needs it."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    @property
    def trigger_name(self) -> str:
        return f"bubble_sync_{self.name}"

    @property
    def columns(self) -> tuple[str, ...]:
        """The source columns the queue carries: the mapped ones, in the order of `fields` (by column)."""
        return tuple(f.column for f in self.fields)

    def trigger_argument(self) -> str:
        """The one argument of `bubble_sync.enqueue_mapped()` in this mapping's trigger (compact JSON)."""
        argument = {
            "key": self.key,
            "columns": list(self.columns),
            "where": self.where,
            "operations": list(self.operations),
        }
        return json.dumps(argument, separators=(",", ":"), ensure_ascii=False)

    def definition(self, mappings: Iterable[Mapping] = ()) -> dict[str, object]:
        """The whole mapping as JSON (camelCase, as the function reads it). `mappings`: the stack's mappings,
        to name each reference's table (`refTable`, the queue_table of the mapping it names)."""
        by_name = {m.name: m for m in mappings}
        fields: list[dict[str, object]] = []
        for f in self.fields:
            item: dict[str, object] = {"column": f.column, "field": f.field}
            if f.ref is not None:
                item["ref"] = f.ref
                target = by_name.get(f.ref)
                if target is not None:
                    item["refTable"] = target.queue_table
            fields.append(item)
        return {
            "name": self.name,
            "schema": self.schema,
            "sourceTable": self.table,
            "table": self.queue_table,
            "key": self.key,
            "dataType": self.data_type,
            "keyField": self.key_field,
            "fields": fields,
            "where": self.where,
            "operations": list(self.operations),
            "onDelete": self.on_delete.to_json(),
        }


def from_definition(definition: MappingType[str, object]) -> Mapping:
    """A mapping from its definition (`Mapping.definition()`, as bubble_sync.mappings holds it): how the
    operator tools know what a stack deployed from the database alone. Raises ValueError naming what is
    missing or malformed."""
    try:
        on_delete = definition["onDelete"]
        assert isinstance(on_delete, MappingType)
        fields = definition["fields"]
        assert isinstance(fields, list)
        operations = definition["operations"]
        assert isinstance(operations, list)
        return Mapping(
            name=str(definition["name"]),
            schema=str(definition["schema"]),
            table=str(definition["sourceTable"]),
            key=str(definition["key"]),
            data_type=str(definition["dataType"]),
            key_field=str(definition["keyField"]),
            fields=tuple(
                FieldMap(str(f["column"]), str(f["field"]), None if f.get("ref") is None else str(f["ref"]))
                for f in fields
            ),
            where=None if definition.get("where") is None else str(definition["where"]),
            operations=tuple(op for op in OPERATIONS if op in operations),
            on_delete=OnDelete(on_delete["action"], dict(on_delete.get("fields") or {})),
        )
    except (KeyError, TypeError, AssertionError, AttributeError) as exc:
        raise ValueError(f"not a mapping definition ({exc!r}): {dict(definition)!r}"[:500]) from None


def mappings_json(mappings: Iterable[Mapping]) -> str:
    """The stack's mappings as the Edge Function's `BUBBLE_SYNC_MAPPINGS` (compact JSON, config order)."""
    every = tuple(mappings)
    return json.dumps([m.definition(every) for m in every], separators=(",", ":"), ensure_ascii=False)

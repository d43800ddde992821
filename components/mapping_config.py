"""`bubble-sync:mappings` read and validated from the config alone (docs/mappings.md, "The keys of a
mapping").

`parse_mappings(raw, default_key_field)` takes what the config holds: JSON text (what
`pulumi.Config().get("mappings")` returns for structured config) or the list a stack file's YAML holds. It
gives the `Mapping`s (components/mappings.py) in config order, or every problem at once, each keyed by the
path of the value as `pulumi config set --path` spells it (`mappings[1].fields.host_id.ref`,
`mappings[0].fields["e-mail"]`). The CLI hands the program objects with their keys sorted, so under Pulumi a
mapping's fields come in column-name order; from a stack file, in the file's order.

Each single value is checked by components/mapping_values.py (re-exported here: `parse_table`,
`where_problem`, `key_path`); this module reads the entries and applies the rules across the list (unique
names and tables, references, their cycles: components/mapping_cycles.py).

What needs the database (the table, its key and columns exist, their types can be sent, `where` is a boolean
condition on the table) is components/mapping_check.py's job. Pure Python: nothing happens at import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field

from components.bubble_names import DATA_TYPE, FIELD_NAME, field_id_problem
from components.config_problem import ConfigProblem, did_you_mean
from components.mapping_cycles import reference_cycles
from components.mapping_values import (
    identifier_problem,
    json_problem,
    key_path,
    parse_table,
    value_kind,
    where_problem,
)
from components.mappings import OPERATIONS, FieldMap, Mapping, OnDelete, Operation

__all__ = ["KEY", "MAPPING_KEYS", "key_path", "parse_mappings", "parse_table", "where_problem"]

#: the stack config key
KEY = "mappings"
#: the keys one mapping may have, as docs/mappings.md lists them
MAPPING_KEYS = ("name", "table", "key", "dataType", "keyField", "fields", "where", "operations", "onDelete")
_FIELD_KEYS = ("field", "ref")
_ON_DELETE = ("delete", "ignore")

# The trigger is bubble_sync_<name>: 12 + 40 characters stay within PostgreSQL's 63-byte identifiers.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def parse_mappings(raw: object, default_key_field: str) -> tuple[tuple[Mapping, ...], list[ConfigProblem]]:
    """The mappings `raw` declares, and the problems found; the mappings are `()` whenever there is a problem.

    raw: JSON text, or an already parsed list; None, "" and [] declare none.
    default_key_field: a mapping's `keyField` when it sets none (the stack's bubbleExternalKeyField).
    """
    parser = _Parser(default_key_field)
    mappings = parser.parse(raw)
    problems = sorted(parser.problems, key=lambda p: _entry_index(p.key))
    return (() if problems else mappings), problems


# -- the parser ----------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """What one entry of the list declares, as far as it is valid (the list-wide rules need it)."""

    index: int
    name: str | None = None
    table: tuple[str, str] | None = None
    #: (path of the ref, the mapping it names)
    refs: list[tuple[str, str]] = field(default_factory=list)
    mapping: Mapping | None = None


class _Parser:
    def __init__(self, default_key_field: str) -> None:
        self._default_key_field = default_key_field
        self.problems: list[ConfigProblem] = []

    def parse(self, raw: object) -> tuple[Mapping, ...]:
        items = self._items(raw)
        entries = [self._entry(i, item) for i, item in enumerate(items)]
        self._unique(entries)
        self._references(entries)
        return tuple(e.mapping for e in entries if e.mapping is not None)

    def _problem(self, path: str, reason: str) -> None:
        self.problems.append(ConfigProblem(path, reason))

    def _items(self, raw: object) -> list[object]:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return []
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                self._problem(KEY, f"must be a list of mappings (JSON), and is not JSON: {exc}")
                return []
        if not isinstance(raw, list):
            self._problem(KEY, f"must be a list of mappings, got {value_kind(raw)}")
            return []
        return raw

    # -- one entry ------------------------------------------------------------------------------------

    def _entry(self, index: int, item: object) -> _Entry:
        entry = _Entry(index)
        path = f"{KEY}[{index}]"
        if not isinstance(item, MappingType):
            self._problem(
                path,
                f"must be a mapping (an object with name, table, dataType, fields), got {value_kind(item)}",
            )
            return entry
        before = len(self.problems)
        for key in item:
            if key not in MAPPING_KEYS:
                self._problem(key_path(path, str(key)), "unknown key" + did_you_mean(str(key), MAPPING_KEYS))
        entry.name = self._name(path, item.get("name"))
        entry.table = self._table(path, item.get("table"))
        key = self._column(key_path(path, "key"), _or_default(item.get("key"), "id"))
        data_type = self._text(key_path(path, "dataType"), item.get("dataType"), required=True)
        if data_type is not None and not DATA_TYPE.match(data_type):
            self._problem(key_path(path, "dataType"), f"must be a Bubble type name, got {data_type!r}")
            data_type = None
        key_field = self._field_name(
            key_path(path, "keyField"), _or_default(item.get("keyField"), self._default_key_field)
        )
        fields = self._fields(path, item.get("fields"), key_field, entry)
        where = self._where(key_path(path, "where"), item.get("where"))
        on_delete = self._on_delete(key_path(path, "onDelete"), item.get("onDelete"), key_field)
        operations = self._operations(path, item.get("operations"), item.get("onDelete"), on_delete)
        if len(self.problems) == before:
            assert entry.name and entry.table and key and data_type and key_field and fields and on_delete
            entry.mapping = Mapping(
                name=entry.name,
                schema=entry.table[0],
                table=entry.table[1],
                key=key,
                data_type=data_type,
                key_field=key_field,
                # By column: `pulumi config` hands the program an object's keys sorted, a stack file read
                # without the CLI keeps the file's order; the trigger and the definition must not differ.
                fields=tuple(sorted(fields, key=lambda f: f.column)),
                where=where,
                operations=operations,
                on_delete=on_delete,
            )
        return entry

    def _text(self, path: str, value: object, *, required: bool) -> str | None:
        """A string value; None when missing (a problem when required) or not text. A whole number is taken as
        its text: `pulumi config set --path` stores 2024 as a number."""
        if value is None or value == "":
            if required:
                self._problem(path, "is required")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self._problem(path, f"must be a string, got {value_kind(value)}")
            return None
        return value

    def _name(self, path: str, value: object) -> str | None:
        name = self._text(key_path(path, "name"), value, required=True)
        if name is not None and not _NAME.match(name):
            self._problem(
                key_path(path, "name"),
                f"must be lowercase letters, digits and _, starting with a letter, at most 40 (the trigger "
                f"is bubble_sync_<name>), got {name!r}",
            )
            return None
        return name

    def _table(self, path: str, value: object) -> tuple[str, str] | None:
        text = self._text(key_path(path, "table"), value, required=True)
        if text is None:
            return None
        parsed = parse_table(text)
        if isinstance(parsed, str):
            self._problem(key_path(path, "table"), parsed)
            return None
        return parsed

    def _column(self, path: str, value: object) -> str | None:
        column = self._text(path, value, required=True)
        if column is None:
            return None
        reason = identifier_problem(column)
        if reason:
            self._problem(path, f"must be a column name: {reason}, got {column!r}")
            return None
        return column

    def _field_name(self, path: str, value: object) -> str | None:
        name = self._text(path, value, required=True)
        if name is None:
            return None
        if not FIELD_NAME.match(name):
            self._problem(path, f"must be a Bubble field name, got {name!r}")
            return None
        reason = field_id_problem(name)
        if reason:
            self._problem(path, reason)
            return None
        return name

    def _fields(
        self, path: str, value: object, key_field: str | None, entry: _Entry
    ) -> tuple[FieldMap, ...] | None:
        path = key_path(path, "fields")
        if value is None or value == {} or value == "":
            self._problem(path, "is required: at least one `column: Field Name`")
            return None
        if not isinstance(value, MappingType):
            self._problem(path, f"must be an object of `column: Field Name`, got {value_kind(value)}")
            return None
        result: list[FieldMap] = []
        filled: dict[str, str] = {}  # Bubble field -> the column filling it
        for column_key, spec in value.items():
            column_path = key_path(path, str(column_key))
            column: str | None = str(column_key)
            reason = identifier_problem(str(column_key))
            if reason:
                self._problem(column_path, f"must be a column name: {reason}, got {column!r}")
                column = None
            ref: str | None = None
            if isinstance(spec, MappingType):
                for key in spec:
                    if key not in _FIELD_KEYS:
                        self._problem(
                            key_path(column_path, str(key)),
                            "unknown key" + did_you_mean(str(key), _FIELD_KEYS),
                        )
                field_path = key_path(column_path, "field")
                name = self._field_name(field_path, spec.get("field"))
                if spec.get("ref") is not None:
                    ref = self._text(key_path(column_path, "ref"), spec["ref"], required=True)
                    if ref is not None:
                        entry.refs.append((key_path(column_path, "ref"), ref))
            elif spec is None or (isinstance(spec, (str, int)) and not isinstance(spec, bool)):
                field_path = column_path
                name = self._field_name(field_path, spec)
            else:
                self._problem(
                    column_path, f"must be a Bubble field name or {{field, ref}}, got {value_kind(spec)}"
                )
                continue
            if name is not None and name == key_field:
                self._problem(
                    field_path,
                    f"{name!r} is the mapping's keyField, which holds each record's stable key; map the "
                    f"column to another field",
                )
                name = None
            elif name is not None and name in filled:
                self._problem(
                    field_path, f"Bubble field {name!r} is already filled by column {filled[name]!r}"
                )
                name = None
            if column is not None and name is not None:
                filled[name] = column
                result.append(FieldMap(column, name, ref))
        return tuple(result)

    def _where(self, path: str, value: object) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            self._problem(path, f"must be a SQL condition (a string), got {value_kind(value)}")
            return None
        where = value.strip()
        reason = where_problem(where)
        if reason:
            self._problem(path, reason)
            return None
        return where

    def _on_delete(self, path: str, value: object, key_field: str | None) -> OnDelete | None:
        if value is None or value in _ON_DELETE:
            return OnDelete("ignore" if value == "ignore" else "delete")
        if not isinstance(value, MappingType):
            self._problem(
                path, f"must be delete, ignore or {{set: {{Field: value}}}}, got {value_kind(value)}"
            )
            return None
        for key in value:
            if key != "set":
                self._problem(key_path(path, str(key)), "unknown key" + did_you_mean(str(key), ["set"]))
        set_path = key_path(path, "set")
        fields = value.get("set")
        if not isinstance(fields, MappingType) or not fields:
            got = "none" if fields == {} else value_kind(fields)
            self._problem(set_path, f"must be the fields a delete sets, {{Field: value, ...}}, got {got}")
            return None
        for name, field_value in fields.items():
            field_path = key_path(set_path, str(name))
            checked = self._field_name(field_path, name)
            if checked is not None and checked == key_field:
                self._problem(
                    field_path, f"{checked!r} is the mapping's keyField, which holds each record's stable key"
                )
            reason = json_problem(field_value)
            if reason:
                self._problem(field_path, reason)
        return OnDelete("set", {str(k): v for k, v in fields.items()})

    def _operations(
        self, entry_path: str, value: object, on_delete_given: object, on_delete: OnDelete | None
    ) -> tuple[Operation, ...]:
        path = key_path(entry_path, "operations")
        deletes = on_delete_given is not None and on_delete is not None and on_delete.action != "ignore"
        if value is None:
            return ("insert", "update", "delete") if deletes else ("insert", "update")
        if not isinstance(value, list):
            self._problem(path, f"must be a list of insert, update, delete, got {value_kind(value)}")
            return ()
        if not value:
            self._problem(
                path, "must not be empty: a mapping that syncs nothing (remove the mapping instead)"
            )
            return ()
        seen: set[str] = set()
        for i, operation in enumerate(value):
            if operation not in OPERATIONS:
                self._problem(f"{path}[{i}]", f"must be insert, update or delete, got {operation!r}"[:200])
            elif operation in seen:
                self._problem(f"{path}[{i}]", f"{operation} is listed twice")
            else:
                seen.add(operation)
        if deletes and "delete" not in seen:
            self._problem(
                key_path(entry_path, "onDelete"),
                "has no effect: operations has no delete (add delete to operations, or remove onDelete)",
            )
        return tuple(op for op in OPERATIONS if op in seen)

    # -- rules across the list ------------------------------------------------------------------------

    def _unique(self, entries: list[_Entry]) -> None:
        names: dict[str, int] = {}
        tables: dict[tuple[str, str], _Entry] = {}
        for entry in entries:
            path = f"{KEY}[{entry.index}]"
            if entry.name is not None:
                if entry.name in names:
                    self._problem(
                        key_path(path, "name"),
                        f"{entry.name!r} is already the name of {KEY}[{names[entry.name]}]",
                    )
                    entry.mapping = None
                else:
                    names[entry.name] = entry.index
            if entry.table is not None:
                first = tables.get(entry.table)
                if first is not None:
                    self._problem(
                        key_path(path, "table"),
                        f"{'.'.join(entry.table)} is already mapped by {KEY}[{first.index}]"
                        f"{f' ({first.name})' if first.name else ''}: one mapping per table",
                    )
                    entry.mapping = None
                else:
                    tables[entry.table] = entry

    def _references(self, entries: list[_Entry]) -> None:
        by_name = {e.name: e for e in entries if e.name is not None}
        # name -> [(path of the ref, the mapping it names)], valid references only
        graph: dict[str, list[tuple[str, str]]] = {}
        for entry in entries:
            for path, target in entry.refs:
                if target not in by_name:
                    self._problem(
                        path, f"no mapping named {json.dumps(target)}{did_you_mean(target, by_name)}"
                    )
                elif entry.name is not None:
                    graph.setdefault(entry.name, []).append((path, target))
        for cycle, path in reference_cycles(graph, [e.name for e in entries if e.name is not None]):
            self._problem(
                path,
                f"reference cycle {' -> '.join(cycle)}: each record would wait for the other to reach Bubble "
                f"first; send one of these columns as a plain field (without ref)",
            )


def _or_default(value: object, default: str) -> object:
    return default if value is None or value == "" else value


def _entry_index(key: str) -> int:
    """The mapping a problem's path is in (-1 for the key as a whole), to list problems entry by entry."""
    match = re.match(rf"^{KEY}\[(\d+)\]", key)
    return int(match.group(1)) if match else -1

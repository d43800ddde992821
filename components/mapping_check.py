"""The stack's mappings against the database (docs/mappings.md, "Checks"): what the config alone cannot tell.

`check_mappings(conn, mappings)` returns every problem at once, each keyed by its path in the config like
components/mapping_config.py's (`mappings[0].key`, `mappings[1].fields.created_at`, `mappings[0].where`):

* the table exists and is a table (or a partitioned one): what carries the stack's row trigger and a key;
* the key column exists and is the primary key, or has a unique index on that column alone (not partial, not
  an expression), so one value names one row;
* each mapped column exists, and its type is one `bubble_sync.mapped_payload` sends as Bubble takes it: text
  types (text, varchar, char, name, uuid, citext, enums), numbers, boolean, date and timestamps, arrays of
  those, and domains over any of them; a `ref` column holds one record's key, so not an array;
* `where` is a boolean condition on the table's columns: PostgreSQL plans it (EXPLAIN: nothing is run) in the
  shape the trigger runs it (bubble_sync.row_matches: the row's columns under the alias `r`), and its message
  is the problem's reason.

Everything runs in one read-only transaction that is rolled back (a savepoint inside the caller's own
transaction), so the check changes nothing; it takes only the share locks planning a SELECT takes, and gives
up on a table another session holds locked (a migration) after a lock timeout rather than hang.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from components.config_problem import ConfigProblem, did_you_mean
from components.mapping_config import KEY
from components.mapping_values import key_path, where_problem
from components.mappings import Mapping

__all__ = ["check_mappings"]

# The types Bubble's Data API has a field type for, as bubble_sync.mapped_payload / bubble_value send them
# (pg_catalog's names): text, numbers, yes/no, dates.
_SENDABLE = frozenset(
    {
        "text", "varchar", "bpchar", "name", "uuid",
        "int2", "int4", "int8", "numeric", "float4", "float8",
        "bool",
        "date", "timestamp", "timestamptz",
    }
)  # fmt: skip
# The relkinds a mapping may name: an ordinary or a partitioned table.
_TABLE_KINDS = ("r", "p")
_OTHER_KINDS = {
    "v": "a view",
    "m": "a materialized view",
    "f": "a foreign table (it has no primary key or unique index to name its rows)",
    "S": "a sequence",
}
# A definition another session is changing (a migration) must not hang the preview.
_LOCK_TIMEOUT = "10s"


def check_mappings(conn: psycopg.Connection[Any], mappings: Sequence[Mapping]) -> list[ConfigProblem]:
    """Every problem of `mappings` (valid as config, in config order) against the database `conn` reaches."""
    problems: list[ConfigProblem] = []
    with conn.transaction(force_rollback=True):
        conn.execute("set transaction read only")
        conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
        types = _Types(conn)
        for index, mapping in enumerate(mappings):
            problems += _check(conn, types, f"{KEY}[{index}]", mapping)
    return problems


@dataclass(frozen=True)
class _Column:
    name: str
    type_oid: int
    #: as format_type() prints it, with its modifier: `character varying(20)`, `jsonb[]`
    type_name: str


def _check(conn: psycopg.Connection[Any], types: _Types, path: str, mapping: Mapping) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []

    def problem(key: str, reason: str) -> None:
        problems.append(ConfigProblem(key, reason))

    table = _table(conn, mapping)
    if isinstance(table, str):
        problem(key_path(path, "table"), table)
        return problems
    columns = _columns(conn, table)

    def missing(name: str) -> str:
        return f"{_shown(mapping)} has no column {_quoted(name)}{did_you_mean(name, columns)}"

    if mapping.key not in columns:
        problem(key_path(path, "key"), missing(mapping.key))
    elif not _identifies_rows(conn, table, mapping.key):
        problem(
            key_path(path, "key"),
            f"{_quoted(mapping.key)} is neither the primary key of {_shown(mapping)} nor unique on its own "
            f"(a unique constraint or index on that column alone, without a WHERE): one key value must name "
            f"one row{_primary_key_hint(conn, table)}",
        )
    for field in mapping.fields:
        field_path = key_path(key_path(path, "fields"), field.column)
        column = columns.get(field.column)
        if column is None:
            problem(field_path, missing(field.column))
            continue
        reason = types.problem(column, ref=field.ref)
        if reason:
            problem(field_path, reason)
    if mapping.where is not None:
        reason = where_problem(mapping.where) or _where_on_table(conn, mapping)
        if reason:
            problem(key_path(path, "where"), reason)
    return problems


def _table(conn: psycopg.Connection[Any], mapping: Mapping) -> int | str:
    """The table's oid, or why the mapping cannot have it."""
    row = conn.execute(
        """select c.oid, c.relkind from pg_catalog.pg_class c
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            where n.nspname = %s and c.relname = %s""",
        (mapping.schema, mapping.table),
    ).fetchone()
    if row is None:
        tables = conn.execute(
            """select n.nspname || '.' || c.relname from pg_catalog.pg_class c
                 join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p', 'f')
                  and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')""",
        ).fetchall()
        hint = did_you_mean(_shown(mapping), [t[0] for t in tables])
        return f"no table {_shown(mapping)} in the database{hint}"
    oid, kind = row
    if kind not in _TABLE_KINDS:
        what = _OTHER_KINDS.get(kind, f"not a table (relkind {kind})")
        return f"{_shown(mapping)} is {what}: the stack's row trigger needs a table"
    return int(oid)


def _columns(conn: psycopg.Connection[Any], table: int) -> dict[str, _Column]:
    rows = conn.execute(
        """select a.attname, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod)
             from pg_catalog.pg_attribute a
            where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
            order by a.attnum""",
        (table,),
    )
    return {name: _Column(name, int(type_oid), type_name) for name, type_oid, type_name in rows}


def _identifies_rows(conn: psycopg.Connection[Any], table: int, column: str) -> bool:
    """Whether the primary key or a valid unique index covers exactly `column`, for every row."""
    row = conn.execute(
        """select exists (
             select 1 from pg_catalog.pg_index i
               join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
              where i.indrelid = %s and (i.indisprimary or i.indisunique) and i.indisvalid
                and i.indnkeyatts = 1 and i.indexprs is null and i.indpred is null
                and a.attname = %s)""",
        (table, column),
    ).fetchone()
    return bool(row and row[0])


def _primary_key_hint(conn: psycopg.Connection[Any], table: int) -> str:
    """`; its primary key is "id"`, when the table has a one-column primary key to suggest."""
    rows = conn.execute(
        """select a.attname from pg_catalog.pg_index i
             join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
            where i.indrelid = %s and i.indisprimary""",
        (table,),
    ).fetchall()
    return f"; its primary key is {_quoted(rows[0][0])}" if len(rows) == 1 else ""


def _where_on_table(conn: psycopg.Connection[Any], mapping: Mapping) -> str | None:
    """PostgreSQL's objection to `where` as a condition on the table's rows, or None. Explained, not run: no
    row is read and no function called. In WHERE rather than a select list, so aggregates, window and
    set-returning functions, meaningless for one row, are refused with PostgreSQL's own message."""
    assert mapping.where is not None
    query = sql.SQL("explain (costs off) select from (select * from {table}) as r where ({where})").format(
        table=sql.Identifier(mapping.schema, mapping.table), where=sql.SQL(mapping.where)
    )
    try:
        with conn.transaction():
            conn.execute(query)
    except psycopg.Error as exc:
        diag = exc.diag
        message = diag.message_primary or str(exc)
        if diag.message_hint:
            message += f" (hint: {diag.message_hint})"
        return f"is not a boolean condition on the columns of {_shown(mapping)}: {message}"
    return None


class _Types:
    """Whether a column's type can be sent, read from pg_type once per type."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._rows: dict[int, tuple[str, str, str, str, int, int, str]] = {}

    def problem(self, column: _Column, *, ref: str | None) -> str | None:
        """Why the column cannot be sent (as a reference to mapping `ref`, when given), or None."""
        offending = self._unsendable(column.type_oid, arrays=ref is None)
        if offending is None:
            return None
        if offending == "array":
            return (
                f"is {column.type_name}, a list: a ref column holds the key of one {ref} record (map it "
                f"without ref, as a list field)"
            )
        shown = offending if offending == column.type_name else f"{offending} ({column.type_name})"
        return f"Bubble's Data API has no field type for {shown}; map a generated column that casts it"

    def _unsendable(self, oid: int, *, arrays: bool) -> str | None:
        """None when the type can be sent; "array" for a list where `arrays` is false; else the name of the
        type that cannot be sent (a domain's base type, an array's element type)."""
        schema, name, typtype, category, element, base, shown = self._row(oid)
        if typtype == "d":
            return self._unsendable(base, arrays=arrays)
        if category == "A" and element:
            if not arrays:
                return "array"
            return self._unsendable(element, arrays=False)
        if typtype == "e":  # an enum: sent as its label
            return None
        if typtype == "b" and (
            (schema == "pg_catalog" and name in _SENDABLE) or name == "citext"  # citext: in any schema
        ):
            return None
        return shown

    def _row(self, oid: int) -> tuple[str, str, str, str, int, int, str]:
        if oid not in self._rows:
            row = self._conn.execute(
                """select t.typnamespace::regnamespace::text, t.typname::text, t.typtype::text,
                          t.typcategory::text, t.typelem::int, t.typbasetype::int,
                          pg_catalog.format_type(t.oid, null)
                     from pg_catalog.pg_type t where t.oid = %s""",
                (oid,),
            ).fetchone()
            assert row is not None, oid
            self._rows[oid] = row
        return self._rows[oid]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _shown(mapping: Mapping) -> str:
    """The table as the config names it (`public.Listings`, without quotes)."""
    return f"{mapping.schema}.{mapping.table}"

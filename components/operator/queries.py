"""The queries of the operator commands, by name: status's read-only ones from `sql/operator_status.sql`,
backfill's from `sql/operator_backfill.sql` (some with psycopg.sql `{slot}`s to fill in before they are sent).

The file is cut at its `-- name: <query_name>` lines and nothing else of it is parsed: a query is the text
under its name line, without the comment lines that open it and without its closing `;`, passed to psycopg
as it stands (`%(name)s` parameters, `%%` for a literal percent sign). A name written twice, a name with no
query under it, or a name the code asks for that the file lacks raises QueryFileError naming the file.

The file is read on first use, not at import.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

import psycopg

from components.errors import SourceError
from components.sql.templates import OPERATOR_BACKFILL_FILE, OPERATOR_STATUS_FILE, load

__all__ = [
    "BACKFILL_FILE",
    "STATUS_FILE",
    "QueryFileError",
    "backfill_query",
    "one_row",
    "query",
    "split_queries",
    "status_queries",
]

#: under sql/
STATUS_FILE = OPERATOR_STATUS_FILE
BACKFILL_FILE = OPERATOR_BACKFILL_FILE
_NAME_LINE = "-- name:"

Row = TypeVar("Row")


class QueryFileError(SourceError):
    """A file of named queries under sql/ lacks a name the code asks for, or repeats one."""


def split_queries(text: str, file: str) -> dict[str, str]:
    """The queries of `text` (the contents of sql/`file`) by their `-- name:`, in file order."""
    pieces: dict[str, list[str]] = {}
    current: list[str] | None = None  # the text before the first name (the file's header) belongs to none
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(_NAME_LINE):
            name = line[len(_NAME_LINE) :].strip()
            if not name.isidentifier():
                raise QueryFileError(f"sql/{file} line {number}: `{line.strip()}` names no query")
            if name in pieces:
                raise QueryFileError(f"sql/{file} line {number}: the query name {name} is used twice")
            current = pieces[name] = []
        elif current is not None:
            current.append(line)
    queries = {}
    for name, lines in pieces.items():
        while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
            del lines[0]  # the blank and comment lines between the name and the query
        sql = "\n".join(lines).strip().removesuffix(";").rstrip()
        if not sql:
            raise QueryFileError(f"sql/{file}: the query {name} has no SQL under its name")
        queries[name] = sql
    if not queries:
        raise QueryFileError(f"sql/{file}: no `{_NAME_LINE} <query_name>` line, so no query")
    return queries


@functools.cache
def _queries_of(file: str) -> Mapping[str, str]:
    return MappingProxyType(split_queries(load(file), file))


def status_queries() -> Mapping[str, str]:
    """The queries of sql/operator_status.sql by name (read once)."""
    return _queries_of(STATUS_FILE)


def _named(file: str, name: str) -> str:
    queries = _queries_of(file)
    if name not in queries:
        raise QueryFileError(f"sql/{file} has no query named {name} (it has: {', '.join(queries)})")
    return queries[name]


def query(name: str) -> str:
    """The query `name` of sql/operator_status.sql."""
    return _named(STATUS_FILE, name)


def backfill_query(name: str) -> str:
    """The query `name` of sql/operator_backfill.sql, as written (its `{slot}`s not filled in)."""
    return _named(BACKFILL_FILE, name)


def one_row(cursor: psycopg.Cursor[Row]) -> Row:
    """The row of a query that always returns exactly one (a `select` without `from`, an aggregate, a
    function's result): `fetchone()` says None for a query that returned none, which these never do."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("a query that always returns a row returned none")
    return row

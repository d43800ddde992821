"""The single values of a `bubble-sync:mappings` entry, checked from the config alone: a table name
(`parse_table`), a column name, a `where` condition as PostgreSQL's parser reads it (`where_problem`), a value
a delete sets (`json_problem`); and how problems name a value's path (`key_path`) and show it (`value_kind`).

components/mapping_config.py applies them to each entry; components/mapping_check.py to what the database
holds. Pure Python: nothing happens at import but one parse of a fixed statement.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping as MappingType
from typing import Any

import pglast

__all__ = ["identifier_problem", "json_problem", "key_path", "parse_table", "value_kind", "where_problem"]

# Longer identifiers are cut to this many bytes by PostgreSQL, which would then name another object.
_IDENTIFIER_BYTES = 63
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A key that `pulumi config set --path` can write after a dot; others go in ["..."].
_PATH_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_table(text: str) -> tuple[str, str] | str:
    """(schema, table) of `schema.table` or `table` (schema public), each part as PostgreSQL names it, without
    quotes; or why the text cannot name a table."""
    parts = text.split(".")
    if len(parts) > 2:
        return (
            f"must be schema.table or table, got {text!r} ({len(parts)} parts; names are written without "
            f"quotes and cannot contain a dot)"
        )
    for part in parts:
        reason = identifier_problem(part)
        if reason:
            return f"{reason}, got {text!r}"
    return (parts[0], parts[1]) if len(parts) == 2 else ("public", parts[0])


_WHERE_PREFIX = "SELECT 1 FROM t WHERE ("
_WHERE_SHAPE = pglast.parse_sql("SELECT 1 FROM t")[0].stmt


def where_problem(where: str) -> str | None:
    """Why `where` is not one SQL condition, as PostgreSQL's parser reads it; None when it is.

    The trigger runs it as `select (<where>) is true from ...` (bubble_sync.row_matches), on one line. So it
    must parse as the condition of `SELECT 1 FROM t WHERE (<where>)` and leave that statement as it is (text
    that closes the parenthesis and goes on, `true) union select (1` or `1; drop table x`, is refused), never
    close a parenthesis it did not open, and hold no `--` comment (which would swallow what follows it)."""
    try:
        tokens = pglast.parser.scan(where)
    except pglast.parser.ParseError:
        tokens = []  # an unterminated literal or comment: the parse below says so
    depth = 0
    for token in tokens:
        if token.name == "SQL_COMMENT":
            return (
                "has a -- comment, which would swallow the rest of the statement it is put in: use /* ... */"
            )
        depth += {"ASCII_40": 1, "ASCII_41": -1}.get(token.name, 0)
        if depth < 0:
            return "must be one condition, as in a WHERE clause: it closes a parenthesis it did not open"
    sql = f"{_WHERE_PREFIX}{where})"
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        message = str(exc.args[0])
        location = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(location, int) and len(_WHERE_PREFIX) <= location < len(sql) - 1:
            message += f" (at character {location - len(_WHERE_PREFIX) + 1})"
        elif location == len(sql) - 1:  # at the parenthesis this function added
            message = message.replace('at or near ")"', "at the end of the condition")
        return f"does not parse as a SQL condition: {message}"
    if len(statements) == 1:
        statement = statements[0].stmt
        if isinstance(statement, pglast.ast.SelectStmt) and statement.whereClause is not None:
            # Without its condition the statement must be the bare SELECT: nothing was appended to it.
            statement.whereClause = None
            if statement == _WHERE_SHAPE:
                return None
    return "must be one condition, as in a WHERE clause, and nothing after it"


def key_path(base: str, key: str) -> str:
    """The path of `key` inside `base`, as problems name it: `base.key`, or `base["key"]` for a key that
    `pulumi config set --path` cannot write after a dot."""
    return f"{base}.{key}" if _PATH_WORD.match(key) else f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def identifier_problem(name: str) -> str | None:
    """Why `name` cannot be a table, schema or column name written without quotes; None when it can."""
    if name == "":
        return "has an empty name"
    if '"' in name:
        return 'has a double quote: write names without quotes (public.Listings, not public."Listings")'
    if ":" in name or _CONTROL.search(name):
        return "has a colon or a control character"
    if name != name.strip():
        return "has a space at the start or end of a name"
    if len(name.encode()) > _IDENTIFIER_BYTES:
        return f"has a name longer than PostgreSQL's {_IDENTIFIER_BYTES} bytes"
    return None


def json_problem(value: object, depth: int = 0) -> str | None:
    """Why `value` cannot be sent as JSON to Bubble; None when it can."""
    if depth > 20:
        return "is nested too deeply"
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number, got {value!r}"
    if isinstance(value, list):
        return next((r for r in (json_problem(v, depth + 1) for v in value) if r), None)
    if isinstance(value, MappingType):
        if not all(isinstance(k, str) for k in value):
            return "has an object key that is not a string"
        return next((r for r in (json_problem(v, depth + 1) for v in value.values()) if r), None)
    return f"must be a JSON value (string, number, boolean, null, list, object), got {value_kind(value)}"


def value_kind(value: Any) -> str:
    """A value as a message shows it: short, and its type when that is the point."""
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, MappingType):
        return "an object"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

"""SQL read by PostgreSQL's own parser (libpg_query, through pglast), for the few things this project needs to
know about a statement without running it: where each statement starts and ends, what a `create function`
defines, and what a `grant`/`revoke` on a function says.

Nothing here talks to a database; a statement that does not parse raises `SqlSyntaxError` with the parser's
own message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.enums import FunctionParameterMode, ObjectType, RoleSpecType

from components.errors import SourceError

__all__ = [
    "FunctionGrant",
    "SqlSyntaxError",
    "Statement",
    "function_grant",
    "identity_args",
    "identity_params",
    "parse",
    "qualified_name",
    "type_name",
]


class SqlSyntaxError(SourceError):
    """PostgreSQL's parser refused the text."""


@dataclass(frozen=True)
class Statement:
    """One statement: its parse tree and its text, from its first keyword to its last character (without
    the comments before it and the `;` after it)."""

    node: Any
    text: str


def parse(sql: str) -> list[Statement]:
    """The statements in `sql`, in order."""
    try:
        raws = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise SqlSyntaxError(str(exc)) from None
    # pglast gives the positions in characters (libpg_query's are in bytes); a length of 0 means "to the end".
    statements = []
    for raw in raws:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(sql)
        statements.append(Statement(raw.stmt, sql[start:end].strip()))
    return statements


def qualified_name(names: Sequence[Any] | None) -> tuple[str | None, str]:
    """(schema or None, name) of a parsed name list such as a function's `funcname` (pglast types every
    node field as optional; a name the parser produced always has its list)."""
    assert names is not None
    parts = [n.sval for n in names]
    return (parts[0], parts[-1]) if len(parts) > 1 else (None, parts[0])


# How pg_catalog.format_type() spells the types the parser gives internal names (`integer` is `int4`).
_FORMAT_TYPE = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "varchar": "character varying",
    "bpchar": "character",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timetz": "time with time zone",
    "time": "time without time zone",
}


def type_name(node: ast.TypeName | None) -> str:
    """A parsed type as format_type() prints it (without a typmod): `integer`, `text[]`, `timestamp with
    time zone`. Types outside pg_catalog keep their schema. (Optional as pglast types a parameter's or an
    argument's type; the parser always gives one.)"""
    assert node is not None
    schema, name = qualified_name(node.names)
    spelled = _FORMAT_TYPE.get(name, name) if schema in (None, "pg_catalog") else f"{schema}.{name}"
    return spelled + "[]" * len(node.arrayBounds or ())


_IDENTITY_MODES: dict[FunctionParameterMode | None, str] = {
    FunctionParameterMode.FUNC_PARAM_DEFAULT: "",
    FunctionParameterMode.FUNC_PARAM_IN: "",
    FunctionParameterMode.FUNC_PARAM_INOUT: "INOUT ",
    FunctionParameterMode.FUNC_PARAM_VARIADIC: "VARIADIC ",
}


def identity_params(node: ast.CreateFunctionStmt) -> list[ast.FunctionParameter]:
    """The parameters that identify the function (OUT and TABLE columns do not)."""
    return [param for param in node.parameters or () if param.mode in _IDENTITY_MODES]


def identity_args(node: ast.CreateFunctionStmt) -> str:
    """The arguments that identify the function, as pg_get_function_identity_arguments() prints them:
    `p_action text, p_now timestamp with time zone`."""
    return ", ".join(
        f"{_IDENTITY_MODES[p.mode]}{p.name + ' ' if p.name else ''}{type_name(p.argType)}"
        for p in identity_params(node)
    )


@dataclass(frozen=True)
class FunctionGrant:
    """A `grant execute` or `revoke all|execute` on one function."""

    grant: bool
    schema: str | None
    name: str
    arg_types: tuple[str, ...]
    roles: tuple[str, ...]


def function_grant(node: Any) -> list[FunctionGrant]:
    """The functions a GRANT/REVOKE statement names (one entry each); [] for any other statement or for
    privileges other than EXECUTE."""
    if not isinstance(node, ast.GrantStmt) or node.objtype != ObjectType.OBJECT_FUNCTION:
        return []
    privileges = [p.priv_name for p in node.privileges or ()]
    if privileges and privileges != ["execute"]:
        return []
    assert node.grantees is not None and node.objects is not None and node.is_grant is not None  # always set
    roles = tuple(
        "public" if role.roletype == RoleSpecType.ROLESPEC_PUBLIC else role.rolename for role in node.grantees
    )
    grants = []
    for target in node.objects:
        schema, name = qualified_name(target.objname)
        types = tuple(type_name(t) for t in target.objargs or ())
        grants.append(FunctionGrant(node.is_grant, schema, name, types, roles))
    return grants

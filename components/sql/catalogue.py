"""What the files under `sql/` define, read from the files themselves by PostgreSQL's own parser: every
function, with the arguments that identify it, the statement that creates it and the roles its file grants
EXECUTE to, in the order the files are applied (`templates.QUEUE_FILES`, then each file top to bottom).

The files are the only place a function's signature and grants are written: the providers, the setup script
and the tests take them from here. A file that breaks the conventions the providers rely on fails here,
naming the file and the function: every function is `create or replace`d with a schema-qualified name, is
followed by `revoke all ... from public, anon, authenticated, service_role` and then the grants it needs, and
every grant or revoke names a function defined in the same file.

Pure Python: nothing is read until `functions()` is first called.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from pglast import ast

from components.errors import SourceError
from components.sql.params import DEFAULT_PARAMS
from components.sql.parser import (
    function_grant,
    identity_args,
    identity_params,
    parse,
    qualified_name,
    type_name,
)
from components.sql.templates import QUEUE_FILES, load, render

__all__ = ["REVOKED_FROM", "CatalogueError", "FunctionSpec", "functions", "split_statements"]

#: every function's EXECUTE is first revoked from these (Supabase's default privileges grant the API roles it)
REVOKED_FROM = ("public", "anon", "authenticated", "service_role")


class CatalogueError(SourceError):
    """A file under sql/ does not follow the conventions above."""


@dataclass(frozen=True)
class FunctionSpec:
    """One function of `file`, as its `create or replace function` statement and its grants declare it."""

    schema: str
    name: str
    identity_args: str  # exactly as pg_get_function_identity_arguments(oid) prints them
    arg_types: tuple[str, ...]
    file: str
    grant_execute_to: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        """`schema.name(identity args)`, as DDL takes it: `grant execute on function <signature> to ...`."""
        return f"{self.schema}.{self.name}({self.identity_args})"

    @property
    def regprocedure(self) -> str:
        """`schema.name(types)`, as `to_regprocedure()` and `'...'::regprocedure` take it (no names)."""
        return f"{self.schema}.{self.name}({', '.join(self.arg_types)})"

    def statement(self, params: Mapping[str, object]) -> str:
        """The `create or replace function` statement for this function, rendered with `params` (from its
        first keyword to its closing quote: the comments above it and the `;` are not part of it)."""
        found = [
            text
            for name, text in _function_statements(render(load(self.file), params))
            if name == (self.schema, self.name)
        ]
        if len(found) != 1:
            raise CatalogueError(f"sql/{self.file} defines {self.schema}.{self.name} {len(found)} times")
        return found[0]


@functools.lru_cache(maxsize=64)
def _function_statements(script: str) -> tuple[tuple[tuple[str | None, str], str], ...]:
    """Each `create function` statement of a rendered file with its qualified name. Cached: a program run asks
    for each of the catalogue's functions, many to a file, and parsing a file is what costs."""
    return tuple(
        (qualified_name(s.node.funcname), s.text)
        for s in parse(script)
        if isinstance(s.node, ast.CreateFunctionStmt)
    )


@functools.cache
def functions() -> tuple[FunctionSpec, ...]:
    """Every function the queue layer defines, in the order it is applied."""
    return tuple(spec for file in QUEUE_FILES for spec in _functions_in(file))


def split_statements(sql: str) -> list[str]:
    """The statements of `sql`, each without the comments before it and its `;`."""
    return [statement.text for statement in parse(sql)]


def _functions_in(file: str) -> list[FunctionSpec]:
    statements = parse(render(load(file), DEFAULT_PARAMS))
    grants = [grant for statement in statements for grant in function_grant(statement.node)]
    specs = []
    for statement in statements:
        node = statement.node
        if not isinstance(node, ast.CreateFunctionStmt):
            continue
        schema, name = qualified_name(node.funcname)
        if schema is None or not node.replace:
            raise CatalogueError(
                f"sql/{file}: {name} must be created with `create or replace function <schema>.{name}(...)`"
            )
        arg_types = tuple(type_name(p.argType) for p in identity_params(node))
        label = f"sql/{file}: {schema}.{name}({', '.join(arg_types)})"
        own = [g for g in grants if (g.schema, g.name, g.arg_types) == (schema, name, arg_types)]
        revokes = [g.roles for g in own if not g.grant]
        if revokes != [REVOKED_FROM]:
            raise CatalogueError(
                f"{label} needs exactly one `revoke all on function ... from {', '.join(REVOKED_FROM)}` "
                f"(found {revokes})"
            )
        specs.append(
            FunctionSpec(
                schema=schema,
                name=name,
                identity_args=identity_args(node),
                arg_types=arg_types,
                file=file,
                grant_execute_to=tuple(role for g in own if g.grant for role in g.roles),
            )
        )
    defined = {(s.schema, s.name, s.arg_types) for s in specs}
    stray = [g for g in grants if (g.schema, g.name, g.arg_types) not in defined]
    if stray:
        g = stray[0]
        raise CatalogueError(
            f"sql/{file}: a grant or revoke names {g.schema}.{g.name}({', '.join(g.arg_types)}), "
            "which the file does not define with those argument types"
        )
    return specs

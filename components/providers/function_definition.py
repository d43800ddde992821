"""What a `create or replace function` statement will leave in `pg_proc`, read from its text by PostgreSQL's
own parser (components/sql/parser.py).

The live function's `prosrc` is the body's text, `proconfig` follows from the `set` clauses, and `prosecdef`
and the language from their clauses. The SqlFunction provider compares these with the live catalog to detect
drift, without asking the database how it would have parsed the statement. What the comparison cannot use
(`set x from current`, `set x = default`, several statements, a name without its schema) is rejected with a
message, and the provider double-checks every result against the catalog after create.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pglast import ast
from pglast.enums import VariableSetKind

from components.errors import SourceError
from components.sql.parser import SqlSyntaxError, parse, qualified_name

__all__ = [
    "DefinitionError",
    "FunctionDefinition",
    "canonical_config",
    "parse_function_definition",
]

# Settings whose values PostgreSQL stores as a list of (quoted when needed) identifiers.
_LIST_SETTINGS = frozenset(
    {
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "shared_preload_libraries",
        "local_preload_libraries",
    }
)
_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")


class DefinitionError(SourceError):
    """The definition cannot be compared with the catalog (see the module docstring)."""


@dataclass(frozen=True)
class FunctionDefinition:
    """What a definition declares, in the form the catalog shows it."""

    schema: str
    name: str
    language: str
    security_definer: bool
    config: list[str]  # canonical `name=value` entries, sorted (see canonical_config)
    body: str


def parse_function_definition(definition: str) -> FunctionDefinition:
    """Reads one `create or replace function schema.name(...) ... as $fn$ ... $fn$` statement."""
    try:
        statements = parse(definition)
    except SqlSyntaxError as exc:
        raise DefinitionError(f"PostgreSQL's parser refuses it: {exc}") from None
    if len(statements) != 1:
        raise DefinitionError(f"a definition must be a single statement, not {len(statements)}")
    node = statements[0].node
    if not isinstance(node, ast.CreateFunctionStmt) or node.is_procedure or not node.replace:
        raise DefinitionError("a definition must be a `create or replace function` statement")
    schema, name = qualified_name(node.funcname)
    if schema is None:
        raise DefinitionError(f"the function name must be schema-qualified (got {name!r})")

    language: str | None = None
    security_definer = False
    body: str | None = None
    config = []
    for option in node.options or ():
        if option.defname == "language":
            language = option.arg.sval.lower()
        elif option.defname == "security":
            security_definer = bool(option.arg.boolval)
        elif option.defname == "set":
            config.append(_setting(option.arg))
        elif option.defname == "as":
            body = option.arg[0].sval
    if language is None:
        raise DefinitionError("a definition must name its `language`")
    if body is None:
        raise DefinitionError("a definition must give its body as a string (`as $fn$ ... $fn$`)")
    return FunctionDefinition(
        schema=schema,
        name=name,
        language=language,
        security_definer=security_definer,
        config=sorted(config),
        body=body,
    )


def canonical_config(proconfig: Iterable[str] | None) -> list[str]:
    """`pg_proc.proconfig` entries in the canonical form `parse_function_definition` produces: setting
    names lower-cased (the catalog keeps e.g. `DateStyle`), list settings re-quoted one way, sorted."""
    entries = []
    for entry in proconfig or ():
        setting, _, value = entry.partition("=")
        setting = setting.lower()
        if setting in _LIST_SETTINGS:
            entries.append(f"{setting}={_render_list(_split_list(value))}")
        else:
            entries.append(f"{setting}={value}")
    return sorted(entries)


def _setting(clause: ast.VariableSetStmt) -> str:
    """A `set name = value, ...` clause as a canonical `name=value` entry."""
    assert clause.name is not None  # a `set` clause always names its setting
    setting = clause.name.lower()
    if clause.kind == VariableSetKind.VAR_SET_CURRENT:
        raise DefinitionError(f"`set {setting} from current` is not supported; give the value")
    if clause.kind != VariableSetKind.VAR_SET_VALUE:
        raise DefinitionError(f"`set {setting} = default` is not supported; leave the setting out")
    values = [_constant(arg) for arg in clause.args or ()]
    if setting in _LIST_SETTINGS:
        return f"{setting}={_render_list(values)}"
    return f"{setting}={', '.join(values)}"


def _constant(node: ast.A_Const) -> str:
    """A setting's value as text: identifiers and strings alike (the parser makes both string constants)."""
    value = node.val
    if isinstance(value, ast.String):
        assert value.sval is not None  # the parser's string constants always have their text ('' too)
        return value.sval
    if isinstance(value, ast.Integer):
        return str(value.ival)
    if isinstance(value, ast.Float):
        assert value.fval is not None
        return value.fval
    raise DefinitionError(f"cannot read the setting value {value!r}")


def _render_list(items: list[str]) -> str:
    return ", ".join(item if _PLAIN_IDENTIFIER.fullmatch(item) else _quote_ident(item) for item in items)


def _quote_ident(item: str) -> str:
    return '"' + item.replace('"', '""') + '"'


def _split_list(value: str) -> list[str]:
    """`"public, x", "Foo", bar` -> ['public, x', 'Foo', 'bar'] (the catalog's list-setting format)."""
    items: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            j, chars = i + 1, []
            while j < n:
                if value[j] == '"':
                    if j + 1 < n and value[j + 1] == '"':
                        chars.append('"')
                        j += 2
                        continue
                    break
                chars.append(value[j])
                j += 1
            items.append("".join(chars))
            i = j + 1
        else:
            j = value.find(",", i)
            j = n if j < 0 else j
            items.append(value[i:j].strip())
            i = j
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == ",":
            i += 1
    return items

"""What a `create or replace function` statement will leave in `pg_proc`, read from its text.

Our functions follow one convention: the body is written between `$fn$` dollar quotes, and settings are
given with `set <name> = <value>` clauses (always `set search_path = ''`). Given that, the live
function's `prosrc` is exactly the text between the quotes, `proconfig` follows from the `set` clauses,
and `prosecdef` and the language from their clauses. The SqlFunction provider compares these with the
live catalog to detect drift, without asking the database how it would have parsed the statement.

This is a small tokenizer, not a SQL parser: it understands comments, string literals, quoted
identifiers, dollar quotes and parentheses, and looks at clauses outside parentheses only. What it does
not understand (`set x from current`, several statements, other dollar-quote tags around the body) is
rejected with a message, and the provider double-checks every result against the catalog after create.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from components.errors import SourceError

__all__ = [
    "BODY_TAG",
    "DefinitionError",
    "FunctionDefinition",
    "canonical_config",
    "parse_function_definition",
]

BODY_TAG = "$fn$"

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
    """The definition does not follow the conventions this module relies on."""


@dataclass(frozen=True)
class FunctionDefinition:
    """What a definition declares, in the form the catalog shows it."""

    schema: str
    name: str
    language: str
    security_definer: bool
    config: list[str]  # canonical `name=value` entries, sorted (see canonical_config)
    body: str


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, qident, string, dollar, number, punct
    text: str  # identifiers lower-cased unless quoted; strings and dollar quotes: their content
    tag: str = ""  # dollar quotes: the tag including the dollars, e.g. "$fn$"


def parse_function_definition(definition: str) -> FunctionDefinition:
    """Reads one `create or replace function schema.name(...) ... as $fn$ ... $fn$;` statement."""
    tokens = list(_tokenize(definition))
    words = [t.text if t.kind == "ident" else None for t in tokens[:5]]
    if words[:4] != ["create", "or", "replace", "function"]:
        raise DefinitionError("a definition must start with `create or replace function`")

    schema, name, pos = _qualified_name(tokens, 4)
    if schema is None:
        raise DefinitionError(f"the function name must be schema-qualified (got {name!r})")

    bodies = [t for t in tokens if t.kind == "dollar" and t.tag == BODY_TAG]
    if len(bodies) != 1:
        raise DefinitionError(
            f"a definition must hold its body in exactly one {BODY_TAG} ... {BODY_TAG} quote"
        )
    other_dollars = [t.tag for t in tokens if t.kind == "dollar" and t.tag != BODY_TAG]
    if other_dollars:
        raise DefinitionError(
            f"only {BODY_TAG} may be used as a dollar quote outside the body: {other_dollars[0]}"
        )

    semicolons = [i for i, t in enumerate(tokens) if t.kind == "punct" and t.text == ";"]
    if semicolons and semicolons[0] != len(tokens) - 1:
        raise DefinitionError("a definition must be a single statement")

    language: str | None = None
    security_definer = False
    settings: dict[str, list[_Token]] = {}
    depth = 0
    i = pos
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
        elif depth == 0 and tok.kind == "ident":
            if tok.text == "language":
                i += 1
                if i >= len(tokens) or tokens[i].kind not in ("ident", "qident", "string"):
                    raise DefinitionError("`language` must be followed by a language name")
                language = tokens[i].text.lower()
            elif tok.text == "security" and _word(tokens, i + 1) in ("definer", "invoker"):
                security_definer = _word(tokens, i + 1) == "definer"
                i += 1
            elif tok.text == "set":
                setting, values, i = _set_clause(tokens, i + 1)
                settings[setting] = values
                continue
        i += 1

    if language is None:
        raise DefinitionError("a definition must name its `language`")
    config = sorted(_render_setting(name_, values) for name_, values in settings.items())
    return FunctionDefinition(
        schema=schema,
        name=name,
        language=language,
        security_definer=security_definer,
        config=config,
        body=bodies[0].text,
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


# -- clauses ---------------------------------------------------------------------------------------------


def _qualified_name(tokens: list[_Token], pos: int) -> tuple[str | None, str, int]:
    if pos >= len(tokens) or tokens[pos].kind not in ("ident", "qident"):
        raise DefinitionError("expected a function name after `create or replace function`")
    first = tokens[pos].text
    if (
        _punct(tokens, pos + 1) == "."
        and pos + 2 < len(tokens)
        and tokens[pos + 2].kind in ("ident", "qident")
    ):
        return first, tokens[pos + 2].text, pos + 3
    return None, first, pos + 1


def _set_clause(tokens: list[_Token], pos: int) -> tuple[str, list[_Token], int]:
    """`set name = v1, v2` / `set name to v1` (after the `set`); returns the name, values, next position."""
    parts = []
    while pos < len(tokens) and tokens[pos].kind in ("ident", "qident"):
        parts.append(tokens[pos].text)
        pos += 1
        if _punct(tokens, pos) != ".":
            break
        pos += 1
    if not parts:
        raise DefinitionError("`set` must be followed by a setting name")
    setting = ".".join(parts).lower()
    if _word(tokens, pos) == "from":
        raise DefinitionError(f"`set {setting} from current` is not supported; give the value")
    if not (_punct(tokens, pos) == "=" or _word(tokens, pos) == "to"):
        raise DefinitionError(f"`set {setting}` must be followed by `=` or `to` and a value")
    pos += 1
    values = []
    while True:
        if pos >= len(tokens) or tokens[pos].kind not in ("ident", "qident", "string", "number"):
            raise DefinitionError(f"`set {setting}` needs a value")
        values.append(tokens[pos])
        pos += 1
        if _punct(tokens, pos) != ",":
            return setting, values, pos
        pos += 1


def _render_setting(setting: str, values: list[_Token]) -> str:
    if len(values) == 1 and values[0].kind == "ident" and values[0].text == "default":
        raise DefinitionError(f"`set {setting} = default` is not supported; leave the setting out")
    if setting in _LIST_SETTINGS:
        return f"{setting}={_render_list([v.text for v in values])}"
    return f"{setting}={', '.join(v.text for v in values)}"


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


def _word(tokens: list[_Token], pos: int) -> str | None:
    return tokens[pos].text if pos < len(tokens) and tokens[pos].kind == "ident" else None


def _punct(tokens: list[_Token], pos: int) -> str | None:
    return tokens[pos].text if pos < len(tokens) and tokens[pos].kind == "punct" else None


# -- tokenizer -------------------------------------------------------------------------------------------

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENT = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")


def _tokenize(sql: str) -> Iterator[_Token]:
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == "'":
            text, i = _quoted(sql, i, "'")
            yield _Token("string", text)
        elif c == '"':
            text, i = _quoted(sql, i, '"')
            yield _Token("qident", text)
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)):
            tag = m.group()
            end = sql.find(tag, m.end())
            if end < 0:
                raise DefinitionError(f"unterminated dollar quote {tag}")
            yield _Token("dollar", sql[m.end() : end], tag)
            i = end + len(tag)
        elif m := _IDENT.match(sql, i):
            yield _Token("ident", m.group().lower())
            i = m.end()
        elif m := _NUMBER.match(sql, i):
            yield _Token("number", m.group())
            i = m.end()
        else:
            yield _Token("punct", c)
            i += 1


def _quoted(sql: str, start: int, quote: str) -> tuple[str, int]:
    """A '...' string or "..." identifier starting at `start`; a doubled quote stands for itself."""
    chars = []
    i = start + 1
    while i < len(sql):
        if sql[i] == quote:
            if sql.startswith(quote * 2, i):
                chars.append(quote)
                i += 2
                continue
            return "".join(chars), i + 1
        chars.append(sql[i])
        i += 1
    what = "string" if quote == "'" else "quoted identifier"
    raise DefinitionError(f"unterminated {what}")


def _skip_block_comment(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise DefinitionError("unterminated /* comment")

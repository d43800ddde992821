"""components.sql.catalogue: what sql/ defines, read by PostgreSQL's own parser (pglast). No database here;
tests/test_queue_security.py checks the catalogue against a live one (signatures, grants, search_path)."""

from __future__ import annotations

import re

import pytest

from components.sql import catalogue as sql_catalogue
from components.sql.catalogue import CatalogueError, FunctionSpec, functions, split_statements
from components.sql.params import DEFAULT_PARAMS
from components.sql.parser import SqlSyntaxError
from components.sql.templates import QUEUE_FILES, load, render

# -- splitting -----------------------------------------------------------------------------------------------


def test_split_cuts_where_postgresql_does() -> None:
    sql = """
    -- a header; with a semicolon
    select 'a;b', E'it\\'s;', "odd;name" from t; -- trailing; comment
    /* block; /* nested; */ still comment; */ select 2;
    create function a() returns void language plpgsql as $fn$ begin perform $$x;y$$; end $fn$;
    select $1; select a$b$c from t
    """
    assert split_statements(sql) == [
        "select 'a;b', E'it\\'s;', \"odd;name\" from t",
        "select 2",
        "create function a() returns void language plpgsql as $fn$ begin perform $$x;y$$; end $fn$",
        "select $1",
        "select a$b$c from t",
    ]


def test_split_counts_characters_not_bytes() -> None:
    # The parser reports byte offsets; text before a statement may hold characters of several bytes.
    assert split_statements("-- naïve … ≤ 😀\nselect 'é'; select 2") == ["select 'é'", "select 2"]


@pytest.mark.parametrize("sql", ["select $x$ open", "select 'open", "select /* open", "select from where"])
def test_split_names_what_the_parser_refuses(sql: str) -> None:
    with pytest.raises(SqlSyntaxError):
        split_statements(sql)


# -- the functions of sql/ -----------------------------------------------------------------------------------


def test_functions_come_in_the_order_the_files_are_applied() -> None:
    specs = functions()
    assert [QUEUE_FILES.index(s.file) for s in specs] == sorted(QUEUE_FILES.index(s.file) for s in specs)
    assert len({(s.schema, s.name) for s in specs}) == len(specs)
    # each function before its first caller in the same file: is_due before claim, backoff before fail
    names = [s.name for s in specs]
    assert names.index("is_due") < names.index("claim") and names.index("backoff") < names.index("fail")


def test_signature_and_regprocedure() -> None:
    claim = next(f for f in functions() if f.name == "claim")
    assert claim.signature == (
        "bubble_sync.claim(p_action text, p_limit integer, p_lease_seconds integer,"
        " p_now timestamp with time zone)"
    )
    assert claim.regprocedure == "bubble_sync.claim(text, integer, integer, timestamp with time zone)"
    requeue = next(f for f in functions() if f.name == "requeue")
    assert requeue.regprocedure == "bubble_sync.requeue(text[], text, timestamp with time zone)"
    processor = next(f for f in functions() if f.name == "invoke_bubble_sync_processor")
    assert processor.signature == processor.regprocedure == "public.invoke_bubble_sync_processor()"
    assert (claim.grant_execute_to, processor.grant_execute_to) == (("service_role",), ())


@pytest.mark.parametrize("spec", functions(), ids=lambda f: f"{f.schema}.{f.name}")
def test_function_statements_follow_the_house_style(spec: FunctionSpec) -> None:
    statement = spec.statement(DEFAULT_PARAMS)
    assert statement.startswith(f"create or replace function {spec.schema}.{spec.name}(")
    head, body = re.split(r"\bas \$fn\$", statement, maxsplit=1)
    # what the function does, in a comment right above it in its file
    rendered = render(load(spec.file), DEFAULT_PARAMS)
    above = rendered[: rendered.index(statement)].rstrip("\n").rsplit("\n", 1)[-1]
    assert above.startswith("-- "), above
    assert re.search(r"\bset search_path = ''", head)
    # every state-changing verb takes the clock as a parameter
    if spec.name in {"enqueue", "claim", "complete", "fail", "reclaim", "purge", "requeue"}:
        assert re.search(r"p_now\s+timestamptz default null", head)
        assert "coalesce(p_now, clock_timestamp())" in body


# -- what the catalogue refuses ------------------------------------------------------------------------------

_FUNCTION = "create or replace function bubble_sync.f(p_n integer) returns integer language sql\n"
_FUNCTION += "set search_path = '' as $fn$ select p_n $fn$;\n"
_REVOKE = "revoke all on function bubble_sync.f(integer) from public, anon, authenticated, service_role;\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_FUNCTION, "needs exactly one `revoke all"),
        (_FUNCTION + _REVOKE + _REVOKE, "needs exactly one `revoke all"),
        (_FUNCTION + _REVOKE.replace(", service_role", ""), "needs exactly one `revoke all"),
        (_FUNCTION + _REVOKE + "grant execute on function bubble_sync.f(bigint) to service_role;", "bigint"),
        (_FUNCTION.replace("or replace ", "") + _REVOKE, "create or replace function"),
        (_FUNCTION.replace("bubble_sync.f(", "f(") + _REVOKE, "create or replace function <schema>.f"),
    ],
    ids=["no revoke", "two revokes", "revoke misses a role", "grant on another signature", "no or replace",
         "no schema"],
)  # fmt: skip
def test_a_file_breaking_the_conventions_is_named(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setattr(sql_catalogue, "load", lambda _file: text)
    with pytest.raises(CatalogueError, match=re.escape(message)) as error:
        sql_catalogue._functions_in("functions/lease.sql")
    assert "sql/functions/lease.sql" in str(error.value)


def test_a_well_formed_file_gives_its_function_and_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    grant = "grant execute on function bubble_sync.f(int4) to service_role, authenticated;"
    monkeypatch.setattr(sql_catalogue, "load", lambda _file: _FUNCTION + _REVOKE + grant)
    (spec,) = sql_catalogue._functions_in("functions/lease.sql")
    assert (spec.signature, spec.grant_execute_to) == (
        "bubble_sync.f(p_n integer)",
        ("service_role", "authenticated"),
    )

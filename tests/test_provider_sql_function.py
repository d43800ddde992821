"""SqlFunction: the definition parser, and the provider's lifecycle against real PostgreSQL, connected as
the non-superuser `postgres` as on Supabase (where default privileges hand EXECUTE to the API roles)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.output import Unknown

from components.providers import ProviderError, SqlFunctionProvider
from components.providers.function_definition import (
    DefinitionError,
    canonical_config,
    parse_function_definition,
)
from tests.conftest import Database


@pytest.fixture
def db(module_db: Database) -> Iterator[Database]:
    """This module's database, shared because a fresh one per test costs about 0.6 s; cleaned after
    each test (the functions the tests create)."""
    yield module_db
    with module_db.connect_admin() as conn:
        conn.execute("drop function if exists public.bs_probe(integer), public.bs_cfg()")


DEFINITION = """
create or replace function public.bs_probe(p_limit integer default 10)
returns integer
language plpgsql
security definer
set search_path = ''
as $fn$
begin
  -- a body may hold $$ and 'quotes' freely
  return p_limit + 1;
end
$fn$;
"""
SIGNATURE = "public.bs_probe(integer)"


def inputs(**overrides: Any) -> dict[str, Any]:
    return {
        "schema": "public",
        "name": "bs_probe",
        "identity_args": "p_limit integer",
        "definition": DEFINITION,
        "execute_grants": ["postgres", "service_role"],
        **overrides,
    }


def configured(dsn: str) -> SqlFunctionProvider:
    provider = SqlFunctionProvider()
    provider.configure(ConfigureRequest(Config({"bubble-sync:databaseUrl": dsn}, "bubble-sync")))
    return provider


def executors(db: Database) -> set[str]:
    """Who may execute public.bs_probe besides its owner ('public' when PUBLIC holds EXECUTE)."""
    with db.connect() as conn:
        roles = conn.execute(
            "select r from unnest(array['anon', 'authenticated', 'service_role']) r"
            " where has_function_privilege(r, %s, 'execute')",
            (SIGNATURE,),
        ).fetchall()
        (public,) = conn.execute(
            "select exists (select from pg_proc p,"
            " aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
            " where p.oid = %s::regprocedure and a.grantee = 0)",
            (SIGNATURE,),
        ).fetchone()
    return {r for (r,) in roles} | ({"public"} if public else set())


def refresh_diff(provider: SqlFunctionProvider, id_: str, outs: dict[str, Any], news: dict[str, Any]):
    read = provider.read(id_, outs)
    return read, provider.diff(read.id, read.outs, news)


# -- the parser ------------------------------------------------------------------------------------------


def test_parser_reads_body_settings_security_and_language() -> None:
    parsed = parse_function_definition(DEFINITION)
    assert (parsed.schema, parsed.name, parsed.language, parsed.security_definer) == (
        "public",
        "bs_probe",
        "plpgsql",
        True,
    )
    assert parsed.config == ['search_path=""']
    assert parsed.body.startswith("\nbegin\n  -- a body may hold $$") and parsed.body.endswith("end\n")


def test_parser_ignores_clauses_inside_comments_strings_and_parentheses() -> None:
    parsed = parse_function_definition(
        """create or replace function "Bs"."Odd"(p text default 'set search_path = public security definer')
        returns table (language text)  -- security definer
        /* set statement_timeout = '1s' /* nested */ still a comment */
        language SQL
        set search_path to pg_catalog, "My Schema", ''
        set statement_timeout = '5s'
        as $fn$ select 'x' $fn$"""
    )
    assert (parsed.schema, parsed.name, parsed.language, parsed.security_definer) == (
        "Bs",
        "Odd",
        "sql",
        False,
    )
    assert parsed.config == ['search_path=pg_catalog, "My Schema", ""', "statement_timeout=5s"]
    assert parsed.body == " select 'x' "


def test_the_body_is_the_same_whatever_quotes_hold_it() -> None:
    """PostgreSQL's parser reads the body, so prosrc is what it says, in $fn$, $$ or '' quotes alike."""
    quoted = ("$fn$ select 'it''s' $fn$", "$$ select 'it''s' $$", "' select ''it''''s'' '")
    head = "create or replace function public.f() returns text language sql as "
    assert {parse_function_definition(head + q).body for q in quoted} == {" select 'it''s' "}


def test_canonical_config_matches_what_the_catalog_stores(db: Database) -> None:
    definition = """create or replace function public.bs_cfg() returns int language sql
        set search_path = 'public, x', "Foo", Bar, 'user', pg_temp set DateStyle = 'ISO, MDY'
        set jit = off set lock_timeout = 1000 as $fn$ select 1 $fn$"""
    with db.connect() as conn:
        conn.execute(definition)
        (proconfig,) = conn.execute("select proconfig from pg_proc where proname = 'bs_cfg'").fetchone()
    assert canonical_config(proconfig) == parse_function_definition(definition).config


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("create function public.f() returns int language sql set search_path = '' as $fn$ select 1 $fn$",
         "create or replace function"),
        ("create or replace function f() returns int language sql as $fn$ select 1 $fn$", "schema-qualified"),
        ("create or replace function public.f() returns int language sql set jit = default as $$ select 1 $$",
         "default"),
        ("create or replace procedure public.f() language sql as $$ select 1 $$",
         "create or replace function"),
        ("create or replace function public.f() returns int as $fn$ select 1 $fn$", "language"),
        ("create or replace function public.f() returns int language sql set search_path from current"
         " as $fn$ select 1 $fn$", "from current"),
        ("create or replace function public.f() returns int language sql as $fn$ select 1 $fn$; select 2",
         "single statement"),
        ("create or replace function public.f() returns int language sql as $fn$ select 1", "unterminated"),
    ],
)  # fmt: skip
def test_parser_rejects_what_it_cannot_read(definition: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message.replace("$", r"\$")):
        parse_function_definition(definition)


# -- check and diff (no database) ----------------------------------------------------------------------


def test_check_requires_a_pinned_search_path_and_matching_names() -> None:
    provider = SqlFunctionProvider()
    no_path = DEFINITION.replace("set search_path = ''\n", "")
    reasons = [f.reason for f in provider.check({}, inputs(definition=no_path)).failures]
    assert any("search path" in r for r in reasons)
    reasons = [f.reason for f in provider.check({}, inputs(name="other")).failures]
    assert reasons == ["the definition creates name 'bs_probe', not 'other'"]
    assert provider.check({}, inputs()).failures == []
    assert provider.check({}, inputs(definition=Unknown(), execute_grants=Unknown())).failures == []


def test_diff_with_unknown_values_reports_changes() -> None:
    provider = SqlFunctionProvider()
    olds = inputs()
    assert provider.diff("x", olds, inputs(definition=Unknown())).changes is True
    assert provider.diff("x", olds, inputs(execute_grants=["postgres", Unknown()])).changes is True
    result = provider.diff("x", olds, inputs(identity_args=Unknown()))
    assert (result.changes, result.replaces, result.delete_before_replace) == (True, ["identity_args"], True)


def test_identity_changes_replace_delete_first() -> None:
    provider = SqlFunctionProvider()
    result = provider.diff("x", inputs(), inputs(name="bs_probe2", schema="extensions"))
    assert result.changes is True
    assert sorted(result.replaces) == ["name", "schema"]
    assert result.delete_before_replace is True


# -- lifecycle against PostgreSQL ------------------------------------------------------------------------


def test_create_read_no_diff_and_execute_only_for_the_listed_roles(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    assert created.id == "public.bs_probe(p_limit integer)"
    assert created.outs["config"] == ['search_path=""'] and created.outs["security_definer"] is True
    assert created.outs["owner"] == "postgres"

    read, diff = refresh_diff(provider, created.id, created.outs, inputs())
    assert read.id == created.id
    assert {k: read.outs[k] for k in inputs()} == inputs()
    assert diff.changes is False

    # Supabase's default privileges had granted EXECUTE to anon and authenticated: revoked.
    assert executors(db) == {"service_role"}
    with db.connect_as("anon") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select public.bs_probe(1)")
    with db.connect_as("service_role") as conn:
        assert conn.execute("select public.bs_probe(1)").fetchone() == (2,)


DRIFT = {
    "body edited": (
        DEFINITION.replace("return p_limit + 1;", "return p_limit + 2;"),
        "body",
    ),
    "search_path changed": (f"alter function {SIGNATURE} set search_path = public", "config"),
    "search_path reset": (f"alter function {SIGNATURE} reset search_path", "config"),
    "security definer flipped": (f"alter function {SIGNATURE} security invoker", "security_definer"),
    "execute granted to anon": (f"grant execute on function {SIGNATURE} to anon", "execute_grants"),
    "execute granted to public": (f"grant execute on function {SIGNATURE} to public", "execute_grants"),
    "execute revoked from service_role": (f"revoke execute on function {SIGNATURE} from service_role", None),
}


@pytest.mark.parametrize("case", DRIFT, ids=list(DRIFT))
def test_drift_is_detected_and_repaired(db: Database, case: str) -> None:
    sql, field = DRIFT[case]
    provider = configured(db.dsn)
    created = provider.create(inputs())
    with db.connect() as conn:  # behind the provider's back, as postgres
        conn.execute(sql)

    read, diff = refresh_diff(provider, created.id, created.outs, inputs())
    assert read.id == created.id
    assert diff.changes is True, case
    assert diff.replaces == []
    if field is not None:
        assert read.outs[field] != created.outs[field]

    updated = provider.update(created.id, read.outs, inputs())
    read, diff = refresh_diff(provider, created.id, updated.outs, inputs())
    assert diff.changes is False, case
    assert read.outs["body"] == parse_function_definition(DEFINITION).body
    assert read.outs["config"] == ['search_path=""'] and read.outs["security_definer"] is True
    assert executors(db) == {"service_role"}


def test_dropped_function_reads_as_gone_and_create_restores_it(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    with db.connect() as conn:
        conn.execute(f"drop function {SIGNATURE}")
    read = provider.read(created.id, created.outs)
    assert (read.id, read.outs) == ("", {})

    recreated = provider.create(inputs())  # what `up` does after a refresh dropped it from the state
    assert (
        provider.diff(recreated.id, provider.read(recreated.id, recreated.outs).outs, inputs()).changes
        is False
    )


def test_create_adopts_an_existing_function(db: Database) -> None:
    with db.connect() as conn:  # as the seed's SQL would have left it: old body, default privileges
        conn.execute(
            "create function public.bs_probe(p_limit integer default 10) returns integer language sql"
            " as $$ select 0 $$"
        )
    assert "anon" in executors(db)
    provider = configured(db.dsn)
    created = provider.create(inputs())
    read, diff = refresh_diff(provider, created.id, created.outs, inputs())
    assert diff.changes is False
    assert read.outs["language"] == "plpgsql"
    assert executors(db) == {"service_role"}


def test_program_changes_are_applied_by_update(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    # A different return type cannot be changed by `create or replace`: update drops and re-creates.
    new_definition = DEFINITION.replace("returns integer", "returns bigint").replace("+ 1", "+ 100")
    news = inputs(definition=new_definition, execute_grants=["postgres"])
    diff = provider.diff(created.id, created.outs, news)
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(created.id, created.outs, news)
    assert provider.diff(created.id, provider.read(created.id, updated.outs).outs, news).changes is False
    assert executors(db) == set()
    with db.connect() as conn:
        assert conn.execute("select public.bs_probe(1)").fetchone() == (101,)


def test_wrong_identity_args_fail_clearly_and_leave_nothing(db: Database) -> None:
    provider = configured(db.dsn)
    with pytest.raises(ProviderError, match=r"shows \['p_limit integer'\]"):
        provider.create(inputs(identity_args="integer"))
    with db.connect() as conn:
        assert conn.execute("select to_regprocedure(%s)", (SIGNATURE,)).fetchone() == (None,)


def test_sql_errors_name_the_function_and_the_sqlstate(db: Database) -> None:
    provider = configured(db.dsn)
    broken = DEFINITION.replace("return p_limit + 1;", "return p_limit +;")
    with pytest.raises(ProviderError) as excinfo:
        provider.create(inputs(definition=broken))
    message = str(excinfo.value)
    assert message.startswith("function public.bs_probe(p_limit integer): create or replace failed:")
    assert "SQLSTATE 42601" in message


def test_delete_is_idempotent(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)
    with db.connect() as conn:
        assert conn.execute("select to_regprocedure(%s)", (SIGNATURE,)).fetchone() == (None,)

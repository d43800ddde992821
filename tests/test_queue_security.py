"""The queue layer against Supabase's defaults (everything in `public` granted to the API roles): anon and
authenticated can neither reach the queue nor run our functions; every function pins search_path; the
grants are those components.sql.templates.FUNCTIONS declares; and the Supabase linter's security checks
(supabase/splinter) find nothing in our objects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from components.sql.catalogue import FunctionSpec, functions
from tests.conftest import Database

API_ROLES = ["anon", "authenticated"]
OUR_SCHEMAS = ("public", "bubble_sync")


@pytest.fixture
def admin(shared_queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(shared_queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute("select bubble_sync.enqueue('profiles', '1', 'INSERT', '{\"email\": \"a@example.com\"}')")
        yield c


@pytest.mark.parametrize("role", API_ROLES)
@pytest.mark.parametrize(
    "statement",
    [
        "select * from public.sync_queue",
        "insert into public.sync_queue (table_name, record_id, operation) values ('t', '2', 'INSERT')",
        "update public.sync_queue set status = 'completed'",
        "delete from public.sync_queue",
        "truncate public.sync_queue",
        "select nextval(pg_get_serial_sequence('public.sync_queue', 'id'))",
    ],
)
def test_api_roles_cannot_touch_the_queue(
    shared_queue_db: Database, admin: Any, role: str, statement: str
) -> None:
    with shared_queue_db.connect_as(role) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute(statement)


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_cannot_use_the_private_schema(shared_queue_db: Database, admin: Any, role: str) -> None:
    with shared_queue_db.connect_as(role) as c:
        assert c.execute("select has_schema_privilege('bubble_sync', 'usage')").fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema bubble_sync"):
            c.execute("select * from bubble_sync.dispatch_state")


@pytest.mark.parametrize("role", API_ROLES)
@pytest.mark.parametrize("spec", functions(), ids=lambda f: f.name)
def test_api_roles_cannot_execute_our_functions(
    shared_queue_db: Database, admin: psycopg.Connection[Any], role: str, spec: FunctionSpec
) -> None:
    privilege = admin.execute(
        "select has_function_privilege(%s, %s, 'execute') as ok", (role, spec.regprocedure)
    )
    assert privilege.fetchone() == {"ok": False}
    # and calling it fails: bubble_sync.* already at the schema, the public ones at the function
    arguments = ", ".join("null" for _ in spec.identity_args.split(", ")) if spec.identity_args else ""
    with shared_queue_db.connect_as(role) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute(f"select {spec.schema}.{spec.name}({arguments})")


def test_nobody_but_the_owner_has_privileges_we_did_not_declare(admin: psycopg.Connection[Any]) -> None:
    rows = admin.execute(
        """
        select n.nspname as schema, p.proname as name, pg_get_function_identity_arguments(p.oid) as args,
               pg_get_userbyid(p.proowner) as owner,
               coalesce(array_agg(pg_get_userbyid(a.grantee)::text order by 1)
                          filter (where a.privilege_type = 'EXECUTE' and a.grantee not in (0, p.proowner)),
                        '{}') as executors,
               coalesce(bool_or(a.grantee = 0 and a.privilege_type = 'EXECUTE'), false) as public_executes
          from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
          left join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a on true
         where n.nspname = 'bubble_sync' or p.proname like 'invoke_bubble_sync_%'
         group by 1, 2, 3, 4
        """
    ).fetchall()
    actual = {
        (r["schema"], r["name"], r["args"]): (r["owner"], tuple(r["executors"]), r["public_executes"])
        for r in rows
    }
    expected = {
        (f.schema, f.name, f.identity_args): ("postgres", f.grant_execute_to, False) for f in functions()
    }
    assert actual == expected
    for spec in functions():  # the providers look functions up by these
        assert admin.execute(
            "select to_regprocedure(%s) is not null as ok", (spec.regprocedure,)
        ).fetchone() == {"ok": True}


def test_every_function_pins_an_empty_search_path(admin: psycopg.Connection[Any]) -> None:
    rows = admin.execute(
        "select p.oid::regprocedure::text as fn, p.proconfig"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'bubble_sync'"
        " or p.proname in ('invoke_bubble_sync_processor', 'invoke_bubble_sync_retry')"
    ).fetchall()
    assert len(rows) == len(functions())
    assert {r["fn"]: r["proconfig"] for r in rows} == {r["fn"]: ['search_path=""'] for r in rows}


def test_only_the_functions_that_must_are_security_definer(admin: psycopg.Connection[Any]) -> None:
    rows = admin.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where (n.nspname = 'bubble_sync' or p.proname like 'invoke_bubble_sync_%')"
        " and p.prosecdef order by 1"
    ).fetchall()
    # the cron entry points (Vault, pg_net) and the three triggers (whoever inserts needs no access to either)
    assert [r["proname"] for r in rows] == [
        "dispatch_wake", "enqueue_change", "enqueue_mapped", "invoke_bubble_sync_processor",
        "invoke_bubble_sync_retry",
    ]  # fmt: skip


def test_queue_has_rls_on_and_no_policy(admin: psycopg.Connection[Any]) -> None:
    row = admin.execute(
        "select c.relrowsecurity, (select count(*) from pg_policy p where p.polrelid = c.oid) as policies"
        " from pg_class c where c.oid = 'public.sync_queue'::regclass"
    ).fetchone()
    assert row == {"relrowsecurity": True, "policies": 0}


def test_service_role_can_run_a_worker(shared_queue_db: Database, admin: psycopg.Connection[Any]) -> None:
    with shared_queue_db.connect_as("service_role") as c:
        ((token,),) = c.execute(
            "select lease_token from bubble_sync.claim('process_queue_data_api')"
        ).fetchall()
        assert c.execute("select bubble_sync.complete(%s, 'b1')", (token,)).fetchone() == (True,)
        c.execute("select bubble_sync.enqueue('profiles', '2', 'UPDATE', '{}')")
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege
        ):  # but it does not get to call the cron entry points
            c.execute("select public.invoke_bubble_sync_processor()")


@pytest.mark.parametrize("role", API_ROLES)
def test_a_signup_by_an_api_role_still_enqueues(queue_db: Database, role: str) -> None:
    # the user's table is open to the API roles (Supabase's default); the queue is not, yet the trigger works
    admin = psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row)
    admin.execute("create table public.profiles (id uuid primary key default gen_random_uuid(), email text)")
    admin.execute(
        "create trigger bubble_sync_enqueue after insert on public.profiles"
        " for each row execute function bubble_sync.enqueue_change('id', 'email')"
    )
    with queue_db.connect_as(role) as c:
        c.execute("insert into public.profiles (email) values ('new@example.com')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("select count(*) from public.sync_queue")
    with admin:
        rows = admin.execute("select table_name, payload from public.sync_queue").fetchall()
    assert rows == [{"table_name": "profiles", "payload": {"email": "new@example.com"}}]


def test_the_dispatch_state_is_not_exposed(admin: psycopg.Connection[Any]) -> None:
    rows = admin.execute(
        "select grantee, privilege_type from information_schema.role_table_grants"
        " where table_schema = 'bubble_sync' and grantee in ('anon', 'authenticated', 'PUBLIC')"
    ).fetchall()
    assert rows == []


# -- the Supabase linter (supabase/splinter lints, restricted to our objects) --------------------------------


def test_linter_function_search_path_mutable(admin: psycopg.Connection[Any]) -> None:
    # lint 0011: functions without a search_path setting
    rows = admin.execute(
        """
        select p.proname from pg_proc p join pg_namespace n on p.pronamespace = n.oid
         where n.nspname = any(%s)
           and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%%')
        """,
        (list(OUR_SCHEMAS),),
    ).fetchall()
    assert rows == []


@pytest.mark.parametrize("role", API_ROLES)
def test_linter_security_definer_function_executable(admin: psycopg.Connection[Any], role: str) -> None:
    # lints 0028/0029: SECURITY DEFINER functions the API roles may execute
    rows = admin.execute(
        "select p.proname from pg_proc p join pg_namespace n on p.pronamespace = n.oid"
        " where p.prosecdef and has_function_privilege(%s, p.oid, 'EXECUTE') and n.nspname = any(%s)",
        (role, list(OUR_SCHEMAS)),
    ).fetchall()
    assert rows == []


def test_linter_rls_disabled_and_security_definer_views(admin: psycopg.Connection[Any]) -> None:
    # lint 0013 (tables in public without RLS) and 0010 (views in public that are not security_invoker)
    tables = admin.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'"
        " and not relrowsecurity"
    ).fetchall()
    views = admin.execute(
        "select relname from pg_class"
        " where relnamespace = any(array['public', 'bubble_sync']::regnamespace[]) and relkind in ('v', 'm')"
    ).fetchall()
    assert tables == [] and views == []


def test_linter_duplicate_index(admin: psycopg.Connection[Any]) -> None:
    # lint 0009: identical index definitions on one table
    rows = admin.execute(
        "select tablename, array_agg(indexname) from pg_indexes where schemaname = any(%s)"
        " group by tablename, replace(indexdef, indexname, '') having count(*) > 1",
        (list(OUR_SCHEMAS),),
    ).fetchall()
    assert rows == []

"""The local cluster must reproduce the Supabase defaults that our security depends on."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Database


def test_postgres_is_not_a_superuser_but_owns_the_database(db: Database) -> None:
    with db.connect() as conn:
        row = conn.execute(
            "select r.rolsuper, r.rolbypassrls, pg_get_userbyid(d.datdba) from pg_roles r, pg_database d"
            " where r.rolname = current_user and d.datname = current_database()"
        ).fetchone()
    assert row == (False, True, "postgres")


def test_api_roles_exist_with_supabase_attributes(db: Database) -> None:
    with db.connect() as conn:
        rows = conn.execute(
            "select rolname, rolcanlogin, rolbypassrls from pg_roles"
            " where rolname in ('anon','authenticated','service_role','authenticator')"
        ).fetchall()
    roles = {name: (login, bypass) for name, login, bypass in rows}
    assert roles == {
        "anon": (False, False),
        "authenticated": (False, False),
        "service_role": (False, True),
        "authenticator": (True, False),
    }


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_new_public_table_is_open_to_api_roles_by_default(db: Database, role: str) -> None:
    # The default Supabase is exposed: this is why our queue needs RLS and REVOKEs.
    with db.connect() as conn:
        conn.execute("create table public.signup_probe (id int)")
    with db.connect_as(role) as conn:
        conn.execute("insert into public.signup_probe values (1)")
        assert conn.execute("select count(*) from public.signup_probe").fetchone() == (1,)
        privs = conn.execute(
            "select array_agg(privilege_type::text order by privilege_type)"
            " from information_schema.role_table_grants where table_name = 'signup_probe' and grantee = %s",
            (role,),
        ).fetchone()
    assert privs is not None
    assert set(privs[0]) >= {"DELETE", "INSERT", "SELECT", "TRUNCATE", "UPDATE", "REFERENCES", "TRIGGER"}


def test_new_public_function_is_executable_by_anon_by_default(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("create function public.probe() returns int language sql as 'select 42'")
    with db.connect_as("anon") as conn:
        assert conn.execute("select public.probe()").fetchone() == (42,)


def test_postgres_cannot_write_cron_job_directly(cron_db: Database) -> None:
    with cron_db.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(
            "insert into cron.job (schedule, command, jobname) values ('* * * * *', 'select 1', 'x')"
        )


def test_extensions_schema_and_extensions_present(db: Database) -> None:
    with db.connect() as conn:
        rows = dict(
            conn.execute("select extname, extnamespace::regnamespace::text from pg_extension").fetchall()
        )
    assert rows["pgcrypto"] == "extensions"
    assert rows["supabase_vault"] == "vault"

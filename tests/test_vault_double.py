"""The Vault double must behave like supabase_vault 0.3.1 where our code touches it."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Database


def test_create_secret_returns_id_and_stores_ciphertext_only(db: Database) -> None:
    with db.connect() as conn:
        (secret_id,) = conn.execute(
            "select vault.create_secret('super-secret-value', 'service_role_key')"
        ).fetchone()
        stored = conn.execute("select secret from vault.secrets where id = %s", (secret_id,)).fetchone()
        decrypted = conn.execute(
            "select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key'"
        ).fetchone()
    assert stored is not None and "super-secret-value" not in stored[0]
    assert decrypted == ("super-secret-value",)


def test_duplicate_name_is_a_unique_violation(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("select vault.create_secret('a', 'supabase_url')")
        with pytest.raises(psycopg.errors.UniqueViolation) as excinfo:
            conn.execute("select vault.create_secret('b', 'supabase_url')")
    assert excinfo.value.sqlstate == "23505"


def test_update_secret_changes_value_and_keeps_name(db: Database) -> None:
    with db.connect() as conn:
        (secret_id,) = conn.execute("select vault.create_secret('old', 'supabase_url', 'the url')").fetchone()
        conn.execute("select vault.update_secret(%s, 'new')", (secret_id,))
        row = conn.execute(
            "select name, description, decrypted_secret, updated_at >= created_at"
            " from vault.decrypted_secrets where id = %s",
            (secret_id,),
        ).fetchone()
    assert row == ("supabase_url", "the url", "new", True)


def test_update_secret_with_null_value_keeps_the_secret(db: Database) -> None:
    with db.connect() as conn:
        (secret_id,) = conn.execute("select vault.create_secret('keep-me', 'k')").fetchone()
        conn.execute("select vault.update_secret(%s, null, 'renamed')", (secret_id,))
        row = conn.execute("select name, decrypted_secret from vault.decrypted_secrets").fetchone()
    assert row == ("renamed", "keep-me")


def test_update_secret_on_unknown_id_does_nothing(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("select vault.update_secret(gen_random_uuid(), 'x')")
        assert conn.execute("select count(*) from vault.secrets").fetchone() == (0,)


def test_postgres_cannot_insert_into_secrets_directly(db: Database) -> None:
    # As on Supabase: postgres has select and delete only; writes go through the functions.
    with db.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("insert into vault.secrets (secret, name) values ('x', 'y')")


def test_service_role_can_use_vault(db: Database) -> None:
    with db.connect_as("service_role") as conn:
        conn.execute("select vault.create_secret('v', 'from_service_role')")
        row = conn.execute("select decrypted_secret from vault.decrypted_secrets").fetchone()
    assert row == ("v",)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_read_or_create_secrets(db: Database, role: str) -> None:
    with db.connect() as conn:
        conn.execute("select vault.create_secret('v', 'service_role_key')")
    with db.connect_as(role) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select decrypted_secret from vault.decrypted_secrets")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select vault.create_secret('x', 'y')")


def test_root_key_is_not_readable_by_postgres(db: Database) -> None:
    with db.connect() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select key from vault._root_key")

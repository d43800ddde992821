"""VaultSecret against the Vault double, as `postgres` (select/delete on the tables, the two functions)."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.output import Unknown

from components.providers import ProviderError, VaultSecretProvider
from tests.conftest import Database


@pytest.fixture
def db(module_db: Database) -> Iterator[Database]:
    """This module's database, shared because a fresh one per test costs about 0.6 s; cleaned after
    each test (the secrets and the failure-injecting trigger)."""
    yield module_db
    with module_db.connect_admin() as conn:
        conn.execute("drop trigger if exists reject on vault.secrets")
        conn.execute("drop function if exists vault.reject()")
        conn.execute("delete from vault.secrets")


VALUE = "https://abcdefghijklmnopqrst.supabase.co"


def inputs(**overrides: Any) -> dict[str, Any]:
    return {"name": "supabase_url", "value": VALUE, "description": "bubble-sync: project URL", **overrides}


def configured(dsn: str) -> VaultSecretProvider:
    provider = VaultSecretProvider()
    provider.configure(ConfigureRequest(Config({"bubble-sync:databaseUrl": dsn}, "bubble-sync")))
    return provider


def live(db: Database, name: str = "supabase_url") -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "select id::text, decrypted_secret, description from vault.decrypted_secrets where name = %s",
            (name,),
        ).fetchall()


def test_create_read_no_diff(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    assert live(db) == [(created.id, VALUE, "bubble-sync: project URL")]
    assert created.outs == {**inputs(), "adopted": False}

    read = provider.read(created.id, created.outs)
    assert (read.id, read.outs) == (created.id, {**inputs(), "adopted": False})
    assert provider.diff(read.id, read.outs, inputs()).changes is False


def test_value_changed_by_hand_is_detected_and_repaired(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    with db.connect() as conn:
        conn.execute("select vault.update_secret(%s, 'https://evil.example')", (created.id,))

    read = provider.read(created.id, created.outs)
    assert read.outs["value"] == "https://evil.example"
    diff = provider.diff(read.id, read.outs, inputs())
    assert (diff.changes, diff.replaces) == (True, [])

    provider.update(read.id, read.outs, inputs())
    read = provider.read(read.id, read.outs)
    assert provider.diff(read.id, read.outs, inputs()).changes is False
    assert live(db) == [(created.id, VALUE, "bubble-sync: project URL")]  # same secret, updated in place


def test_description_changed_by_hand_is_detected_and_repaired(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    with db.connect() as conn:
        conn.execute("select vault.update_secret(%s, new_description := 'edited')", (created.id,))
    read = provider.read(created.id, created.outs)
    assert provider.diff(read.id, read.outs, inputs()).changes is True
    provider.update(read.id, read.outs, inputs())
    assert live(db) == [(created.id, VALUE, "bubble-sync: project URL")]


def test_deleted_secret_reads_as_gone_and_create_restores_it(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    with db.connect() as conn:
        conn.execute("delete from vault.secrets where name = 'supabase_url'")
    read = provider.read(created.id, created.outs)
    assert (read.id, read.outs) == ("", {})

    recreated = provider.create(inputs())
    assert recreated.id != created.id
    assert live(db) == [(recreated.id, VALUE, "bubble-sync: project URL")]


def test_update_restores_a_secret_deleted_since_the_last_refresh(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    with db.connect() as conn:
        conn.execute("delete from vault.secrets")
    provider.update(created.id, created.outs, inputs(value="v2"))
    assert [row[1] for row in live(db)] == ["v2"]


def test_create_adopts_an_existing_secret_of_the_same_name(db: Database) -> None:
    with db.connect() as conn:  # the seed's `select vault.create_secret(...)` ran before
        (existing,) = conn.execute("select vault.create_secret('old-url', 'supabase_url')::text").fetchone()
    provider = configured(db.dsn)
    created = provider.create(inputs())
    assert created.id == existing
    assert created.outs["adopted"] is True
    assert live(db) == [(existing, VALUE, "bubble-sync: project URL")]
    read = provider.read(created.id, created.outs)
    assert read.outs["adopted"] is True
    assert provider.diff(created.id, read.outs, inputs()).changes is False
    # destroy leaves a secret the stack did not create: other jobs of the user's may read it
    provider.delete(created.id, read.outs)
    assert live(db) == [(existing, VALUE, "bubble-sync: project URL")]


def test_delete_is_idempotent_and_only_touches_its_name(db: Database) -> None:
    provider = configured(db.dsn)
    created = provider.create(inputs())
    other = provider.create(inputs(name="service_role_key", value="sb_secret_x"))
    assert created.outs["adopted"] is False
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)
    assert live(db) == []
    assert [row[0] for row in live(db, "service_role_key")] == [other.id]


def test_diff_unknowns_and_renames() -> None:
    provider = VaultSecretProvider()
    assert provider.diff("id", inputs(), inputs(value=Unknown())).changes is True
    no_description = {k: v for k, v in inputs(description="").items() if k != "description"}
    assert provider.diff("id", inputs(description=""), no_description).changes is False
    rename = provider.diff("id", inputs(), inputs(name="project_url"))
    assert (rename.changes, rename.replaces, rename.delete_before_replace) == (True, ["name"], False)


def test_the_value_never_appears_in_errors(db: Database) -> None:
    secret = "sb_secret_do-not-leak-0123456789"
    # Make Vault fail with the plain value in the server's message: the double inserts the plain text
    # before encrypting it, so a trigger sees it (a stand-in for any error that echoes data).
    with db.connect_admin() as conn:
        conn.execute(
            "create function vault.reject() returns trigger language plpgsql as"
            " $$ begin raise exception 'rejected value %', new.secret; end $$"
        )
        conn.execute(
            "create trigger reject before insert on vault.secrets"
            " for each row execute function vault.reject()"
        )
    provider = configured(db.dsn)
    with pytest.raises(ProviderError) as excinfo:
        provider.create(inputs(name="service_role_key", value=secret))
    rendered = "".join(traceback.format_exception(excinfo.value))
    assert secret not in rendered
    assert (
        "Vault secret 'service_role_key': store failed: rejected value [redacted] (SQLSTATE P0001)"
        in rendered
    )

    # and check failures describe a bad value without echoing it
    failures = VaultSecretProvider().check({}, inputs(value=""))
    assert [f.property for f in failures.failures] == ["value"]

"""SqlObject with a trigger, the kind of object it is for (the immediate-dispatch trigger)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.output import Unknown

from components.providers import ProviderError, SqlObjectProvider
from components.sql.plan import ExtensionUnit
from tests.conftest import Database


@pytest.fixture
def db(module_db: Database) -> Iterator[Database]:
    """This module's database, shared because a fresh one per test costs about 0.6 s; cleaned after
    each test (the table and the trigger function)."""
    yield module_db
    with module_db.connect_admin() as conn:
        conn.execute(
            "drop table if exists public.signups cascade; drop function if exists public.note_signup()"
        )


SETUP = """
create table public.signups (id bigint generated always as identity, email text);
create function public.note_signup() returns trigger language plpgsql set search_path = ''
as $fn$ begin return new; end $fn$;
"""
TRIGGER = (
    "create or replace trigger note_signup after insert on public.signups"
    " for each row execute function public.note_signup()"
)
# tgenabled 'O' = enabled; pg_get_triggerdef shows the definition as PostgreSQL prints it
PROBE = (
    "select t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid) from pg_trigger t"
    " where t.tgname = 'note_signup' and t.tgrelid = to_regclass('public.signups')"
)
EXPECTED = (
    "O CREATE TRIGGER note_signup AFTER INSERT ON public.signups FOR EACH ROW EXECUTE FUNCTION note_signup()"
)


def inputs(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "trigger note_signup on public.signups",
        "apply_sql": TRIGGER,
        "drop_sql": "drop trigger if exists note_signup on public.signups",
        "probe_sql": PROBE,
        "expected": EXPECTED,
        **overrides,
    }


@pytest.fixture
def provider(db: Database) -> SqlObjectProvider:
    with db.connect() as conn:
        conn.execute(SETUP)
    p = SqlObjectProvider()
    p.configure(ConfigureRequest(Config({"bubble-sync:databaseUrl": db.dsn}, "bubble-sync")))
    return p


def probe(db: Database) -> str | None:
    with db.connect() as conn:
        row = conn.execute(PROBE).fetchone()
    return None if row is None else row[0]


def test_create_read_no_diff(db: Database, provider: SqlObjectProvider) -> None:
    created = provider.create(inputs())
    assert created.id == "trigger note_signup on public.signups"
    assert probe(db) == EXPECTED
    read = provider.read(created.id, created.outs)
    assert (read.id, read.outs) == (created.id, inputs())
    assert provider.diff(read.id, read.outs, inputs()).changes is False


@pytest.mark.parametrize(
    "drift",
    [
        "create or replace trigger note_signup before insert on public.signups"
        " for each row execute function public.note_signup()",
        "alter table public.signups disable trigger note_signup",
    ],
    ids=["redefined", "disabled"],
)
def test_drift_is_detected_and_repaired(db: Database, provider: SqlObjectProvider, drift: str) -> None:
    created = provider.create(inputs())
    with db.connect() as conn:
        conn.execute(drift)
    read = provider.read(created.id, created.outs)
    assert read.outs["expected"] != EXPECTED
    diff = provider.diff(read.id, read.outs, inputs())
    assert (diff.changes, diff.replaces) == (True, [])

    updated = provider.update(read.id, read.outs, inputs())
    assert provider.diff(read.id, provider.read(read.id, updated.outs).outs, inputs()).changes is False
    assert probe(db) == EXPECTED  # `create or replace trigger` also re-enables a disabled trigger


def test_dropped_object_reads_as_gone(db: Database, provider: SqlObjectProvider) -> None:
    created = provider.create(inputs())
    with db.connect() as conn:
        conn.execute("drop trigger note_signup on public.signups")
    assert provider.read(created.id, created.outs).id == ""


def test_create_adopts_an_existing_object(db: Database, provider: SqlObjectProvider) -> None:
    with db.connect() as conn:
        conn.execute(TRIGGER.replace("after insert", "before insert"))
    created = provider.create(inputs())
    assert provider.diff(created.id, provider.read(created.id, created.outs).outs, inputs()).changes is False


def test_expected_that_apply_does_not_produce_fails_and_rolls_back(
    db: Database, provider: SqlObjectProvider
) -> None:
    with pytest.raises(ProviderError, match="after apply_sql the probe returns 'O CREATE TRIGGER"):
        provider.create(inputs(expected="O CREATE TRIGGER something else"))
    assert probe(db) is None


def test_delete_is_idempotent_even_when_the_table_is_gone(db: Database, provider: SqlObjectProvider) -> None:
    created = provider.create(inputs())
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)
    assert probe(db) is None
    strict = inputs(drop_sql="drop trigger note_signup on public.signups")
    with db.connect() as conn:
        conn.execute("drop table public.signups")
    provider.delete(created.id, strict)  # 42P01 from the drop: already gone


def test_diff_unknowns_and_renames() -> None:
    provider = SqlObjectProvider()
    assert provider.diff("x", inputs(), inputs(expected=Unknown())).changes is True
    assert provider.diff("x", inputs(), inputs(drop_sql="drop trigger if exists x on t")).changes is True
    rename = provider.diff("x", inputs(), inputs(name="other"))
    assert (rename.changes, rename.replaces, rename.delete_before_replace) == (True, ["name"], True)
    failures = provider.check({}, inputs(probe_sql=""))
    assert [f.property for f in failures.failures] == ["probe_sql"]


# -- an extension enabled in the dashboard (manageExtensions false) ------------------------------------------


def requirement(extension: str) -> dict[str, Any]:
    unit = ExtensionUnit(extension, "extensions", managed=False).requirement
    return {k: getattr(unit, k) for k in ("name", "apply_sql", "drop_sql", "probe_sql", "expected")}


def test_a_required_extension_that_is_enabled_is_adopted_and_never_dropped(
    db: Database, provider: SqlObjectProvider
) -> None:
    created = provider.create(requirement("pg_net"))
    read = provider.read(created.id, created.outs)
    assert (read.id, provider.diff(read.id, read.outs, requirement("pg_net")).changes) == (
        "extension pg_net",
        False,
    )
    provider.delete(created.id, created.outs)
    with db.connect() as conn:
        assert conn.execute("select 1 from pg_extension where extname = 'pg_net'").fetchone() == (1,)


def test_a_missing_required_extension_fails_with_what_to_do(
    db: Database, provider: SqlObjectProvider
) -> None:
    with pytest.raises(ProviderError) as err:
        provider.create(requirement("pg_absent"))
    message = str(err.value)
    assert "extension pg_absent is not enabled in this database" in message
    assert "Database > Extensions" in message and "manageExtensions" in message
    # Disabled by hand after `up`: refresh reports it gone, so preview proposes the check (and `up` fails).
    created = provider.create(requirement("pg_net"))
    assert (
        provider.read(created.id, {**created.outs, "probe_sql": requirement("pg_absent")["probe_sql"]}).id
        == ""
    )

"""A mapping's two database objects (components/sql/plan.py, mapping_unit) through the SqlObject provider,
against real PostgreSQL: the trigger is attached as `expected` says, drift (dropped, disabled, changed by
hand, the row edited) is read back and repaired, destroy leaves the table and its rows, a hand-made trigger is
taken over rather than doubled, and a mapping that would break the table's writes is refused before anything
is attached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from pulumi.dynamic import Config, ConfigureRequest

from components.mappings import FieldMap, Mapping, OnDelete
from components.providers import ProviderError, SqlObjectProvider
from components.sql.plan import MappingUnit, SqlObjectUnit, mapping_unit
from tests.conftest import Database

HOSTS = """
create schema "Market";
create table "Market"."Hosts" (
  "Id"        bigint generated always as identity primary key,
  "E-mail"    text not null,
  "order"     int,
  is_test     boolean not null default false
);
"""
HOSTS_MAPPING = Mapping(
    name="hosts", schema="Market", table="Hosts", key="Id", data_type="host", key_field="supabase_id",
    fields=(FieldMap("E-mail", "Email"), FieldMap("order", "Order")),
    where="not is_test and \"E-mail\" <> 'it''s@example.com'", operations=("insert", "update", "delete"),
    on_delete=OnDelete("set", {"Archived": True}),
)  # fmt: skip


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute(HOSTS)
        yield c


@pytest.fixture
def provider(queue_db: Database) -> SqlObjectProvider:
    p = SqlObjectProvider()
    p.configure(ConfigureRequest(Config({"bubble-sync:databaseUrl": queue_db.dsn}, "bubble-sync")))
    return p


def props(unit: SqlObjectUnit) -> dict[str, Any]:
    return {
        "name": unit.name,
        "apply_sql": unit.apply_sql,
        "drop_sql": unit.drop_sql,
        "probe_sql": unit.probe_sql,
        "expected": unit.expected,
    }


def create(provider: SqlObjectProvider, mapping: Mapping = HOSTS_MAPPING) -> MappingUnit:
    unit = mapping_unit(mapping, (mapping,))
    provider.create(props(unit.record))
    provider.create(props(unit.trigger))  # checks the probe returns `expected`
    return unit


def queued(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute("select record_id, operation from public.sync_queue order by queue_order").fetchall()
    return [(r["record_id"], r["operation"]) for r in rows]


def test_the_trigger_is_attached_as_expected_and_queues_changes(
    conn: psycopg.Connection[Any], provider: SqlObjectProvider
) -> None:
    unit = create(provider)
    assert unit.trigger.expected.startswith(
        'O CREATE TRIGGER bubble_sync_hosts AFTER INSERT OR DELETE OR UPDATE ON "Market"."Hosts"'
    )
    conn.execute(
        """insert into "Market"."Hosts" ("E-mail") values ('a@example.com'), ('it''s@example.com')"""
    )
    conn.execute("""insert into "Market"."Hosts" ("E-mail", is_test) values ('t@example.com', true)""")
    assert queued(conn) == [("1", "INSERT")]
    row = conn.execute("select table_name, payload from public.sync_queue").fetchone()
    assert row == {"table_name": "Market.Hosts", "payload": {"E-mail": "a@example.com", "order": None}}
    definition = conn.execute("select definition from bubble_sync.mappings where name = 'hosts'").fetchone()
    assert definition is not None and definition["definition"]["onDelete"] == {
        "action": "set", "fields": {"Archived": True},
    }  # fmt: skip


@pytest.mark.parametrize(
    "drift",
    [
        'drop trigger bubble_sync_hosts on "Market"."Hosts"',
        'alter table "Market"."Hosts" disable trigger bubble_sync_hosts',
        'create or replace trigger bubble_sync_hosts after insert on "Market"."Hosts" for each row'
        ' execute function bubble_sync.enqueue_mapped(\'{"key":"Id","columns":[],"operations":[]}\')',
    ],
    ids=["dropped", "disabled", "changed"],
)
def test_a_trigger_changed_by_hand_is_read_as_drift_and_repaired(
    conn: psycopg.Connection[Any], provider: SqlObjectProvider, drift: str
) -> None:
    unit = create(provider)
    conn.execute(drift)
    read = provider.read(unit.trigger.name, props(unit.trigger))
    if "drop" in drift:
        assert read.id == ""  # gone: refresh drops it from the state and up creates it again
        provider.create(props(unit.trigger))
    else:
        assert read.outs["expected"] != unit.trigger.expected
        assert provider.diff(unit.trigger.name, read.outs, props(unit.trigger)).changes
        provider.update(unit.trigger.name, read.outs, props(unit.trigger))
    assert provider.read(unit.trigger.name, props(unit.trigger)).outs["expected"] == unit.trigger.expected
    conn.execute("""insert into "Market"."Hosts" ("E-mail") values ('a@example.com')""")
    assert queued(conn) == [("1", "INSERT")]


def test_the_mapping_row_edited_by_hand_is_drift(
    conn: psycopg.Connection[Any], provider: SqlObjectProvider
) -> None:
    unit = create(provider)
    conn.execute('update bubble_sync.mappings set definition = definition || \'{"dataType": "x"}\'')
    read = provider.read(unit.record.name, props(unit.record))
    assert read.outs["expected"] != "current" and '"dataType": "x"' in read.outs["expected"]
    provider.update(unit.record.name, read.outs, props(unit.record))
    assert provider.read(unit.record.name, props(unit.record)).outs["expected"] == "current"


def test_destroy_removes_the_trigger_and_the_row_and_keeps_the_table(
    conn: psycopg.Connection[Any], provider: SqlObjectProvider
) -> None:
    unit = create(provider)
    conn.execute("""insert into "Market"."Hosts" ("E-mail") values ('a@example.com')""")
    provider.delete(unit.trigger.name, props(unit.trigger))
    provider.delete(unit.record.name, props(unit.record))
    provider.delete(unit.trigger.name, props(unit.trigger))  # again: already gone is fine
    assert conn.execute('select count(*) as n from "Market"."Hosts"').fetchone() == {"n": 1}
    assert conn.execute("select count(*) as n from bubble_sync.mappings").fetchone() == {"n": 0}
    conn.execute("""insert into "Market"."Hosts" ("E-mail") values ('b@example.com')""")
    assert queued(conn) == [("1", "INSERT")]  # the second insert is no longer queued
    conn.execute('drop table "Market"."Hosts"')
    provider.delete(unit.trigger.name, props(unit.trigger))  # a table dropped first took the trigger along


def test_a_hand_made_trigger_is_taken_over_not_doubled(
    conn: psycopg.Connection[Any], queue_db: Database
) -> None:
    conn.execute(
        'create trigger sync_hosts after insert or update on "Market"."Hosts" for each row'
        " execute function bubble_sync.enqueue_change('Id', 'E-mail')"
    )
    notices: list[str] = []
    unit = mapping_unit(HOSTS_MAPPING, (HOSTS_MAPPING,))
    with psycopg.connect(queue_db.dsn, autocommit=True) as watcher:
        watcher.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        watcher.execute(unit.trigger.apply_sql)
    assert notices == [
        'bubble_sync: mapping hosts takes over trigger sync_hosts on "Market"."Hosts"'
        " (it queued the same changes)"
    ]
    names = conn.execute(
        """select tgname from pg_trigger where tgrelid = '"Market"."Hosts"'::regclass and not tgisinternal"""
    ).fetchall()
    assert [n["tgname"] for n in names] == ["bubble_sync_hosts"]
    conn.execute("""insert into "Market"."Hosts" ("E-mail") values ('a@example.com')""")
    assert queued(conn) == [("1", "INSERT")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"where": "not is_tset"},
            'where not is_tset does not work on "Market"."Hosts": column "is_tset" does not exist',
        ),
        ({"where": '"order" + 1'}, "does not work on"),
        ({"fields": (FieldMap("email", "Email"),)}, 'mapping hosts: "Market"."Hosts" has no column email'),
        ({"key": "id"}, "has no column id"),
    ],
    ids=["unknown column in where", "not a condition", "unknown field column", "unknown key"],
)
def test_a_mapping_that_would_break_the_tables_writes_is_refused_before_anything_is_attached(
    conn: psycopg.Connection[Any], provider: SqlObjectProvider, change: dict[str, Any], message: str
) -> None:
    mapping = Mapping(**{**HOSTS_MAPPING.__dict__, **change})
    unit = mapping_unit(mapping, (mapping,))
    with pytest.raises(ProviderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        provider.create(props(unit.trigger))
    assert conn.execute(
        "select count(*) as n from pg_trigger where tgname = 'bubble_sync_hosts'"
    ).fetchone() == {"n": 0}

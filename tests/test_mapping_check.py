"""The mappings against a real database (components/mapping_check.py): tables, keys, columns, the types Bubble
can take, and `where` as PostgreSQL plans it, each problem at its config path; nothing changed, nothing left
behind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from components.mapping_check import check_mappings
from components.mapping_config import parse_mappings
from components.mappings import FieldMap, Mapping, OnDelete
from tests.conftest import Database

SCHEMA = """
create extension if not exists citext;
create type mood as enum ('happy', 'sad');
create domain short_text as varchar(20);
create domain payload as jsonb;
create domain mood_list as mood[];
create table public.profiles (
  id          uuid primary key default gen_random_uuid(),
  email       text not null unique,
  first_name  varchar(40),
  initials    char(3),
  handle      name,
  nick        citext,
  mood        mood,
  short       short_text,
  age         int,
  score       numeric(10, 2),
  ratio       real,
  weight      double precision,
  visits      bigint,
  rank        smallint,
  active      boolean,
  born        date,
  seen        timestamp,
  created_at  timestamptz,
  tags        text[],
  moods       mood_list,
  scores      int[],
  data        jsonb,
  raw         bytea,
  spent       interval,
  wakes_at    time,
  loc         point,
  span        int4range,
  blob        payload,
  datas       jsonb[],
  addr        inet,
  is_test     boolean not null default false
);
create table public.listings (
  id        bigint generated always as identity primary key,
  host_id   uuid,
  host_ids  uuid[],
  code      text unique,
  code2     text,
  code3     text,
  title     text
);
create unique index listings_code2 on public.listings (code2) where code2 is not null;
create unique index listings_code3 on public.listings (lower(code3));
create table public.pairs (a int, b int, title text, primary key (a, b));
create table public.nokey (x int, title text);
create view public.nokey_view as select * from public.nokey;
create schema "Market";
create table "Market"."Listings" ("Id" bigint primary key, "E-mail" text, "order" int, "Is Test" boolean);
"""

SENDABLE = (
    "email first_name initials handle nick mood short age score ratio weight visits rank active born seen "
    "created_at tags moods scores is_test"
).split()
# column -> the type the reason names
REFUSED = {
    "data": "jsonb",
    "raw": "bytea",
    "spent": "interval",
    "wakes_at": "time without time zone",
    "loc": "point",
    "span": "int4range",
    "blob": "jsonb (payload)",
    "datas": "jsonb (jsonb[])",
    "addr": "inet",
}


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection[Any]]:
    with db.connect() as c:
        c.execute(SCHEMA)
        yield c


def mapping(table: str = "profiles", **changes: Any) -> Mapping:
    """A valid mapping of `table` (schema public unless `schema` is given), with `changes`."""
    values: dict[str, Any] = {
        "name": table.lower(),
        "schema": "public",
        "table": table,
        "key": "id",
        "data_type": "thing",
        "key_field": "supabase_id",
        "fields": (FieldMap("title", "Title"),),
        "where": None,
        "operations": ("insert", "update"),
        "on_delete": OnDelete("delete"),
    }
    values.update(changes)
    return Mapping(**values)


def fields(*columns: str, ref: str | None = None) -> tuple[FieldMap, ...]:
    return tuple(FieldMap(c, f"F {c}", ref) for c in columns)


def problems(conn: psycopg.Connection[Any], *mappings: Mapping) -> dict[str, str]:
    return {p.key: p.reason for p in check_mappings(conn, mappings)}


# -- what passes ---------------------------------------------------------------------------------------------


def test_the_docs_example_against_its_tables(conn: psycopg.Connection[Any]) -> None:
    mappings, found = parse_mappings(
        [
            {
                "name": "users",
                "table": "public.profiles",
                "key": "id",
                "dataType": "user",
                "fields": {"email": "email", "first_name": "First Name", "created_at": "Joined"},
                "where": "not is_test",
                "onDelete": "delete",
            },
            {
                "name": "listings",
                "table": "listings",
                "dataType": "listing",
                "fields": {"title": "Title", "host_id": {"field": "Host", "ref": "users"}},
                "onDelete": {"set": {"Archived": True}},
            },
        ],
        "supabase_id",
    )
    assert found == []
    assert check_mappings(conn, mappings) == []


def test_every_sendable_type(conn: psycopg.Connection[Any]) -> None:
    # text types, citext, an enum, a domain, numbers, boolean, date and timestamps, arrays of those
    assert problems(conn, mapping(fields=fields(*SENDABLE))) == {}


@pytest.mark.parametrize("key", ["id", "email"])
def test_a_primary_key_or_a_unique_column_is_a_key(conn: psycopg.Connection[Any], key: str) -> None:
    assert problems(conn, mapping(key=key, fields=fields("age"))) == {}
    assert problems(conn, mapping("listings", key="code")) == {}


def test_quoted_identifiers(conn: psycopg.Connection[Any]) -> None:
    market = mapping(
        "Listings",
        schema="Market",
        key="Id",
        fields=fields("E-mail", "order"),
        where='"Is Test" is not true and "order" > 0 and "E-mail" like \'%@example.com\'',
    )
    assert problems(conn, market) == {}


# -- tables and keys -----------------------------------------------------------------------------------------


def test_a_missing_table_suggests_the_close_one(conn: psycopg.Connection[Any]) -> None:
    assert problems(conn, mapping("Profiles")) == {
        "mappings[0].table": "no table public.Profiles in the database (did you mean public.profiles?)"
    }
    assert problems(conn, mapping("profiles", schema="app")) == {
        "mappings[0].table": "no table app.profiles in the database (did you mean public.profiles?)"
    }
    assert problems(conn, mapping("zzqqxx")) == {
        "mappings[0].table": "no table public.zzqqxx in the database"
    }


def test_a_partitioned_table_with_its_key(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """create table public.events (id bigint, at date, title text, primary key (id, at))
             partition by range (at);
           create table public.events_2026 partition of public.events
             for values from ('2026-01-01') to ('2027-01-01');
           create table public.logs (id bigint primary key, title text) partition by hash (id)"""
    )
    assert problems(conn, mapping("logs")) == {}
    assert '"id" is neither the primary key' in problems(conn, mapping("events"))["mappings[0].key"]


def test_a_view_is_not_a_table(conn: psycopg.Connection[Any]) -> None:
    assert problems(conn, mapping("nokey_view", key="x")) == {
        "mappings[0].table": "public.nokey_view is a view: the stack's row trigger needs a table"
    }


def test_a_missing_key_column(conn: psycopg.Connection[Any]) -> None:
    assert problems(conn, mapping("nokey")) == {"mappings[0].key": 'public.nokey has no column "id"'}
    assert problems(conn, mapping(key="Id", fields=fields("age"))) == {
        "mappings[0].key": 'public.profiles has no column "Id" (did you mean id?)'
    }


@pytest.mark.parametrize(
    ("table", "key", "hint"),
    [
        ("nokey", "x", ""),  # no index at all
        ("pairs", "a", ""),  # one column of a two-column primary key
        ("listings", "code2", '; its primary key is "id"'),  # a partial unique index
        ("listings", "code3", '; its primary key is "id"'),  # unique on an expression of the column
        ("listings", "title", '; its primary key is "id"'),
    ],
)
def test_a_key_must_name_one_row(conn: psycopg.Connection[Any], table: str, key: str, hint: str) -> None:
    found = problems(conn, mapping(table, key=key))
    assert found == {
        "mappings[0].key": f'"{key}" is neither the primary key of public.{table} nor unique on its own (a '
        f"unique constraint or index on that column alone, without a WHERE): one key value must name one "
        f"row{hint}"
    }


# -- columns and their types ---------------------------------------------------------------------------------


def test_missing_columns_each_at_its_path(conn: psycopg.Connection[Any]) -> None:
    found = problems(conn, mapping(fields=fields("email", "firstname", "Age", "e-mail")))
    assert found == {
        "mappings[0].fields.firstname": (
            'public.profiles has no column "firstname" (did you mean first_name?)'
        ),
        "mappings[0].fields.Age": 'public.profiles has no column "Age" (did you mean age?)',
        'mappings[0].fields["e-mail"]': 'public.profiles has no column "e-mail" (did you mean email?)',
    }


@pytest.mark.parametrize("column", sorted(REFUSED))
def test_types_bubble_cannot_take_are_refused(conn: psycopg.Connection[Any], column: str) -> None:
    assert problems(conn, mapping(fields=fields("email", column))) == {
        f"mappings[0].fields.{column}": f"Bubble's Data API has no field type for {REFUSED[column]}; map a "
        f"generated column that casts it"
    }


def test_a_generated_column_that_casts_is_the_way_out(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "alter table public.profiles add column data_text text generated always as (data::text) stored"
    )
    assert problems(conn, mapping(fields=fields("data_text"))) == {}


def test_a_ref_column_holds_one_key(conn: psycopg.Connection[Any]) -> None:
    users = mapping(name="users", fields=fields("email"))
    assert problems(conn, users, mapping("listings", fields=fields("host_id", ref="users"))) == {}
    found = problems(conn, users, mapping("listings", fields=fields("host_ids", ref="users")))
    assert found == {
        "mappings[1].fields.host_ids": "is uuid[], a list: a ref column holds the key of one users record "
        "(map it without ref, as a list field)"
    }
    found = problems(conn, mapping(name="users", fields=fields("data", ref="users")))
    assert "no field type for jsonb" in found["mappings[0].fields.data"]


# -- where ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "not is_test",
        "age > 17 and email like '%@example.com' and mood = 'happy'",
        "r.is_test is not true",  # the trigger's alias for the row
        "exists (select 1 from public.nokey n where n.title = email)",
        "'t'",  # an untyped literal is a boolean here
    ],
)
def test_where_conditions_on_the_table(conn: psycopg.Connection[Any], where: str) -> None:
    assert problems(conn, mapping(fields=fields("email"), where=where)) == {}


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("not is_tst", 'column "is_tst" does not exist'),
        ("age", "argument of WHERE must be type boolean, not type integer"),
        ("email", "argument of WHERE must be type boolean, not type text"),
        ("count(*) > 1", "aggregate functions are not allowed in WHERE"),
        ("profiles.is_test", 'missing FROM-clause entry for table "profiles"'),
        ("age > 'x'", 'invalid input syntax for type integer: "x"'),
        ("nosuch(age)", "function nosuch(integer) does not exist (hint: No function matches"),
    ],
)
def test_where_is_a_boolean_condition_on_the_tables_columns(
    conn: psycopg.Connection[Any], where: str, message: str
) -> None:
    found = problems(conn, mapping(fields=fields("email"), where=where))
    assert list(found) == ["mappings[0].where"]
    reason = found["mappings[0].where"]
    assert reason.startswith("is not a boolean condition on the columns of public.profiles: "), reason
    assert message in reason, reason


@pytest.mark.parametrize(
    "where",
    [
        "true) and false; drop table public.victim; --",
        "true); drop table public.victim; select (1",
        "x; drop",
    ],
)
def test_where_that_is_not_one_condition_is_refused_before_it_reaches_the_database(
    conn: psycopg.Connection[Any], where: str
) -> None:
    # A Mapping made by hand, not through mapping_config: the check parses it first, and sends nothing.
    conn.execute("create table public.victim (x int)")
    reason = problems(conn, mapping(fields=fields("email"), where=where))["mappings[0].where"]
    assert reason.startswith(("must be one condition", "has a -- comment", "does not parse")), reason
    assert conn.execute("select to_regclass('public.victim') is not null").fetchone() == (True,)


def test_the_row_filter_the_check_accepts_is_the_one_the_trigger_evaluates(queue_db: Database) -> None:
    # bubble_sync.row_matches runs the condition with the row's columns under the alias r: what the check
    # refuses (a table-qualified column) fails there too, and is then synced as if it matched.
    with queue_db.connect() as c:
        c.execute("create table public.people (id int primary key, is_test boolean, age int)")
        c.execute("insert into public.people values (1, true, 30)")
        people = mapping("people", fields=fields("age"))
        for where, matches in (("not is_test", False), ("r.age > 20", True)):
            assert problems(c, replace(people, where=where)) == {}
            row = c.execute("select bubble_sync.row_matches(p, %s) from public.people p", (where,)).fetchone()
            assert row == (matches,)
        assert "people" in problems(c, replace(people, where="people.is_test"))["mappings[0].where"]


# -- every problem at once, and nothing changed --------------------------------------------------------------


def test_every_problem_of_every_mapping_at_once(conn: psycopg.Connection[Any]) -> None:
    found = check_mappings(
        conn,
        [
            mapping("nosuch"),
            mapping(key="age", fields=fields("email", "data", "nope"), where="nope"),
            mapping("listings", key="code"),
        ],
    )
    assert [p.key for p in found] == [
        "mappings[0].table",
        "mappings[1].key",
        "mappings[1].fields.data",
        "mappings[1].fields.nope",
        "mappings[1].where",
    ]
    assert str(found[1]).startswith('bubble-sync:mappings[1].key: "age" is neither the primary key')


def test_the_check_changes_nothing_and_keeps_the_callers_transaction(db: Database) -> None:
    with db.connect(autocommit=False) as c:
        c.execute(SCHEMA)
        c.execute("create sequence public.counter")
        c.execute("insert into public.nokey values (1, 'kept')")
        where = "nextval('public.counter') > 0 and x > 0"
        assert problems(c, mapping("nokey", key="x", where=where)) == {
            "mappings[0].key": '"x" is neither the primary key of public.nokey nor unique on its own (a '
            "unique constraint or index on that column alone, without a WHERE): one key value must name one "
            "row"
        }
        assert problems(c, mapping("nosuch"))  # and after a problem the transaction still works
        # the caller's transaction goes on: its own uncommitted row is there, the sequence untouched
        assert c.execute("select title from public.nokey").fetchall() == [("kept",)]
        assert c.execute("select last_value, is_called from public.counter").fetchone() == (1, False)
        assert c.execute("show transaction_read_only").fetchone() == ("off",)
        c.execute("insert into public.nokey values (2, 'writable')")
        c.commit()


def test_on_an_autocommit_connection_the_check_leaves_no_transaction(conn: psycopg.Connection[Any]) -> None:
    problems(conn, mapping(fields=fields("email"), where="nope"))
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.execute("show lock_timeout").fetchone() != ("10s",)

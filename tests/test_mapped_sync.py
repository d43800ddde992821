"""Mappings end to end: the stack's triggers on three tables of real PostgreSQL queue their changes, the
bubble_sync Edge Function served by Deno sends each to its Bubble data type (the Bubble double, with the app's
schema: field types and a relation field checked as Bubble checks them), with renamed fields, the row filter,
a reference to another mapping's record carried as its Bubble id, hard and soft deletes, and a value Bubble
refuses failing its row alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from components.mapping_config import parse_mappings
from components.mappings import Mapping, mappings_json
from components.sql.plan import mapping_unit
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster
from tests import function_support
from tests.conftest import Database, fresh_database
from tests.function_support import Host, empty_queue_and_bubble

BUBBLE_TOKEN = "bubble-mapped-token-8c2e4f1a7d"
LEGACY_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.mapped-test-signature"
SECRET_KEY = "sb_secret_mapped_test_3f9a1c"
PROCESS = "process_queue_data_api"
RETRY = "retry_failed"

TABLES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  email      text not null,
  first_name text,
  is_test    boolean not null default false,
  created_at timestamptz not null default now()
);
create table public.listings (
  id      bigint generated always as identity primary key,
  title   text not null,
  price   numeric,
  -- text in Supabase, a number in the app: what Bubble refuses
  rooms   text,
  host_id uuid references public.profiles (id) on delete set null
);
create table public.messages (
  id   bigint generated always as identity primary key,
  body text not null
);
"""
MAPPINGS = [
    {
        "name": "users", "table": "public.profiles", "dataType": "user", "where": "not is_test",
        "fields": {"email": "email", "first_name": "First Name", "created_at": "Joined"},
    },
    {
        "name": "listings", "table": "public.listings", "dataType": "listing",
        "fields": {
            "title": "Title", "price": "Price", "rooms": "Rooms",
            "host_id": {"field": "Host", "ref": "users"},
        },
        "onDelete": {"set": {"Archived": True}},
    },
    {
        "name": "messages", "table": "public.messages", "dataType": "message",
        "fields": {"body": "Body"}, "operations": ["insert", "update", "delete"],
    },
]  # fmt: skip
# The app's data types as Bubble would check them (the double's schema knob): Price is a number, Host a user.
SCHEMA = {
    "user": {"First Name": "text", "Joined": "date", "supabase_id": "text"},
    "listing": {
        "Title": "text", "Price": "number", "Rooms": "number", "Host": "user", "Archived": "boolean",
        "supabase_id": "text",
    },
    "message": {"Body": "text", "supabase_id": "text"},
}  # fmt: skip


def parsed() -> tuple[Mapping, ...]:
    mappings, problems = parse_mappings(MAPPINGS, "supabase_id")
    assert problems == []
    return mappings


@pytest.fixture(scope="module")
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=BUBBLE_TOKEN, seed=18, schema=SCHEMA) as double:
        yield double


@pytest.fixture(scope="module")
def database(cluster: Cluster, queue_template: str) -> Iterator[Database]:
    with fresh_database(cluster, queue_template) as db:
        yield db


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory, database: Database, bubble: BubbleDouble
) -> Iterator[Host]:
    yield from function_support.start_host(
        tmp_path_factory.mktemp("mapped_host"), database, bubble, bubble_token=BUBBLE_TOKEN,
        service_role_key=LEGACY_KEY, secret_key=SECRET_KEY, http_timeout_ms=2000,
        BUBBLE_SYNC_MAPPINGS=mappings_json(parsed()),
    )  # fmt: skip


@pytest.fixture
def conn(database: Database, bubble: BubbleDouble) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The three tables, fresh, with the mappings' rows and triggers applied as `pulumi up` applies them."""
    with psycopg.connect(database.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute("drop table if exists public.messages, public.listings, public.profiles")
        c.execute(TABLES)
        empty_queue_and_bubble(c, bubble, schema=SCHEMA)
        c.execute("truncate bubble_sync.mappings")
        every = parsed()
        for mapping in every:
            unit = mapping_unit(mapping, every)
            with c.transaction():
                c.execute(unit.record.apply_sql)
                c.execute(unit.trigger.apply_sql)
        yield c


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120, trust_env=False) as c:
        yield c


def run(client: httpx.Client, host: Host, action: str = PROCESS) -> dict[str, Any]:
    response = client.post(
        host.function_url,
        json={"action": action, "wait": True},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def sync(client: httpx.Client, host: Host, conn: psycopg.Connection[Any]) -> None:
    """Runs until no row is pending (rows waiting for a retry stay where they are)."""
    for _ in range(10):
        run(client, host)
        pending = conn.execute(
            "select count(*) as n from public.sync_queue where status = 'pending'"
        ).fetchone()
        if pending["n"] == 0:
            return
    raise AssertionError("rows still pending after 10 runs")


def by_key(bubble: BubbleDouble, data_type: str) -> dict[str, dict[str, Any]]:
    return {thing["supabase_id"]: thing for thing in bubble.records(data_type, env="test")}


def add_profile(conn: psycopg.Connection[Any], email: str, *, is_test: bool = False) -> str:
    row = conn.execute(
        "insert into public.profiles (email, first_name, is_test) values (%s, 'Ada', %s) returning id::text",
        (email, is_test),
    ).fetchone()
    return str(row["id"])


def add_listing(
    conn: psycopg.Connection[Any], title: str, host_id: str | None, rooms: str | None = None
) -> str:
    row = conn.execute(
        "insert into public.listings (title, price, rooms, host_id) values (%s, 120.5, %s, %s)"
        " returning id::text",
        (title, rooms, host_id),
    ).fetchone()
    return str(row["id"])


def test_each_table_reaches_its_type_with_renamed_fields_and_references(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    with conn.transaction():  # the host and its listing in one transaction: the listing waits for its host
        ada = add_profile(conn, "ada@example.com")
        loft = add_listing(conn, "Loft", ada)
    tester = add_profile(conn, "qa@example.com", is_test=True)
    conn.execute("insert into public.messages (body) values ('hello')")
    # one run: the listing, held back while its host is created, is claimed once the host is in Bubble
    summary = run(client, host)
    assert (summary["completed"], summary["claimed"]) == (3, 3), summary

    users = by_key(bubble, "user")
    assert set(users) == {f"profiles:{ada}"}, "the test account is filtered out"
    assert f"profiles:{tester}" not in users
    assert users[f"profiles:{ada}"]["First Name"] == "Ada"
    assert users[f"profiles:{ada}"]["Joined"].endswith("Z")
    listing = by_key(bubble, "listing")[f"listings:{loft}"]
    assert (listing["Title"], listing["Price"]) == ("Loft", 120.5)
    assert listing["Host"] == users[f"profiles:{ada}"]["_id"]
    assert [m["Body"] for m in bubble.records("message", env="test")] == ["hello"]


def test_an_update_modifies_the_linked_thing_without_a_search(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    ada = add_profile(conn, "ada@example.com")
    sync(client, host, conn)
    before = len(bubble.requests())
    conn.execute("update public.profiles set first_name = 'Grace' where id = %s", (ada,))
    sync(client, host, conn)
    assert [r["method"] for r in bubble.requests()[before:]] == ["PATCH"]
    assert by_key(bubble, "user")[f"profiles:{ada}"]["First Name"] == "Grace"


def test_deletes_hard_and_soft_and_of_a_record_bubble_never_had(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    ada = add_profile(conn, "ada@example.com")
    loft = add_listing(conn, "Loft", ada)
    conn.execute("insert into public.messages (body) values ('one'), ('two')")
    sync(client, host, conn)
    conn.execute("delete from public.messages where body = 'one'")
    conn.execute("delete from public.listings where id = %s", (loft,))
    with conn.transaction():  # made and deleted before any run: Bubble never had it
        conn.execute("insert into public.messages (body) values ('fleeting')")
        conn.execute("delete from public.messages where body = 'fleeting'")
    sync(client, host, conn)
    assert [m["Body"] for m in bubble.records("message", env="test")] == ["two"]
    assert by_key(bubble, "listing")[f"listings:{loft}"]["Archived"] is True  # a soft delete
    notes = conn.execute(
        "select error_message from public.sync_queue where operation = 'DELETE' and status = 'completed'"
        " and error_message is not null"
    ).fetchall()
    assert any("never had" in n["error_message"] for n in notes), notes
    assert conn.execute(
        "select count(*) as n from public.sync_queue where status <> 'completed'"
    ).fetchone() == {"n": 0}


def test_a_value_bubble_refuses_fails_its_row_alone_with_bubbles_message(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    ada = add_profile(conn, "ada@example.com")
    bad = add_listing(conn, "Barn", ada, rooms="ten")  # Rooms is a number in the app
    good = add_listing(conn, "Loft", ada)
    sync(client, host, conn)
    row = conn.execute(
        "select status, retry_count >= max_retries as for_good, error_message from public.sync_queue"
        " where table_name = 'listings' and record_id = %s",
        (bad,),
    ).fetchone()
    assert row["status"] == "failed" and row["for_good"], row
    assert "Bubble answered 400" in row["error_message"] and "Rooms" in row["error_message"], row
    assert set(by_key(bubble, "listing")) == {f"listings:{good}"}


def test_a_reference_bubble_never_gets_waits_naming_the_record(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    tester = add_profile(conn, "qa@example.com", is_test=True)  # filtered out: never synced
    shed = add_listing(conn, "Shed", tester)
    sync(client, host, conn)
    row = conn.execute(
        "select status, retry_count, error_message from public.sync_queue where record_id = %s", (shed,)
    ).fetchone()
    assert row["status"] == "failed" and row["retry_count"] == 0, row  # waiting, no attempt used
    assert f"waiting for users record profiles:{tester} to reach Bubble (field Host)" in row["error_message"]
    assert by_key(bubble, "listing") == {}

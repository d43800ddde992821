"""The queue's side of mappings against real PostgreSQL: what the stack's trigger (bubble_sync.enqueue_mapped)
queues for each change of a mapped table, the values as Bubble takes them, deletes in the queue, the links
to Bubble ids that complete keeps and claim hands out, and rows waiting for the records they refer to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.types.json
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from components.mappings import FieldMap, Mapping, OnDelete, from_definition, quote_ident
from tests.conftest import Database
from tests.queue_support import at, claim, complete, enqueue

PROFILES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  email      text not null,
  first_name text,
  is_test    boolean not null default false,
  joined     timestamptz not null default '2026-12-05 09:13:51.123456+00',
  born       date,
  seen_local timestamp,
  tags       text[],
  score      numeric,
  secret     text
);
"""
LISTINGS = """
create table public.listings (
  id      bigint generated always as identity primary key,
  title   text not null,
  host_id uuid references public.profiles (id)
);
"""

USERS = Mapping(
    name="users", schema="public", table="profiles", key="id", data_type="user", key_field="supabase_id",
    fields=(
        FieldMap("email", "email"), FieldMap("first_name", "First Name"), FieldMap("joined", "Joined"),
        FieldMap("born", "Born"), FieldMap("seen_local", "Seen"), FieldMap("tags", "Tags"),
        FieldMap("score", "Score"),
    ),
    where="not is_test", operations=("insert", "update", "delete"), on_delete=OnDelete("delete"),
)  # fmt: skip
LISTINGS_MAPPING = Mapping(
    name="listings", schema="public", table="listings", key="id", data_type="listing",
    key_field="supabase_id",
    fields=(FieldMap("title", "Title"), FieldMap("host_id", "Host", ref="users")),
    where=None, operations=("insert", "update"), on_delete=OnDelete("ignore"),
)  # fmt: skip


def attach(conn: psycopg.Connection[Any], mapping: Mapping, every: tuple[Mapping, ...] = ()) -> None:
    """The mapping's trigger and its row in bubble_sync.mappings, as the stack makes them."""
    conn.execute(
        sql.SQL(
            "create trigger {} after insert or update or delete on {} for each row"
            " execute function bubble_sync.enqueue_mapped({})"
        ).format(
            sql.Identifier(mapping.trigger_name),
            sql.SQL(mapping.qualified_table),
            sql.Literal(mapping.trigger_argument()),
        )
    )
    conn.execute(
        "insert into bubble_sync.mappings (name, table_name, definition) values (%s, %s, %s)",
        (
            mapping.name,
            mapping.queue_table,
            psycopg.types.json.Jsonb(mapping.definition(every or (mapping,))),
        ),
    )


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute(PROFILES)
        c.execute(LISTINGS)
        attach(c, USERS, (USERS, LISTINGS_MAPPING))
        yield c


def queued(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows = conn.execute(
        "select table_name, record_id, operation, payload from public.sync_queue order by queue_order"
    ).fetchall()
    return [(r["table_name"], r["record_id"], r["operation"], r["payload"]) for r in rows]


def add_profile(conn: psycopg.Connection[Any], email: str, **columns: Any) -> str:
    names = ["email", *columns]
    row = conn.execute(
        sql.SQL("insert into public.profiles ({}) values ({}) returning id::text").format(
            sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names))
        ),
        [email, *columns.values()],
    ).fetchone()
    assert row is not None
    return str(row["id"])


# -- what the trigger queues ---------------------------------------------------------------------------------


def test_an_insert_queues_the_mapped_columns_as_bubble_takes_them(conn: psycopg.Connection[Any]) -> None:
    conn.execute("set time zone 'America/New_York'")  # the writer's zone must not show in what Bubble gets
    pid = add_profile(
        conn, "ada@example.com", first_name="Ada", born="1990-02-03", seen_local="2026-01-02 03:04:05.678",
        tags=["a", "b"], score=12.5, secret="hunter2",
    )  # fmt: skip
    ((table, record, operation, payload),) = queued(conn)
    assert (table, record, operation) == ("profiles", pid, "INSERT")
    assert payload == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "joined": "2026-12-05T09:13:51.123Z",
        "born": "1990-02-03T00:00:00.000Z",
        "seen_local": "2026-01-02T03:04:05.678Z",
        "tags": ["a", "b"],
        "score": 12.5,
    }  # the key and unmapped columns (secret, is_test) are not carried


def test_nulls_and_infinite_dates_are_carried_as_null(conn: psycopg.Connection[Any]) -> None:
    add_profile(conn, "n@example.com", born="infinity")
    ((*_, payload),) = queued(conn)
    assert payload["born"] is None and payload["first_name"] is None and payload["tags"] is None


def test_an_update_queues_only_when_a_mapped_column_changed(conn: psycopg.Connection[Any]) -> None:
    pid = add_profile(conn, "u@example.com")
    conn.execute("delete from public.sync_queue")
    conn.execute("update public.profiles set secret = 'x' where id = %s", (pid,))
    assert queued(conn) == []
    conn.execute("update public.profiles set first_name = 'Bo' where id = %s", (pid,))
    [(_, _, operation, payload)] = queued(conn)
    assert (operation, payload["first_name"]) == ("UPDATE", "Bo")


def test_the_row_filter_decides_and_rows_entering_or_leaving_it_are_created_or_deleted(
    conn: psycopg.Connection[Any],
) -> None:
    pid = add_profile(conn, "t@example.com", is_test=True)
    assert queued(conn) == []  # a test account is not synced
    conn.execute("update public.profiles set is_test = false where id = %s", (pid,))
    assert [q[2] for q in queued(conn)] == ["INSERT"]  # it entered the synced rows
    conn.execute("delete from public.sync_queue")
    conn.execute("update public.profiles set is_test = true where id = %s", (pid,))
    assert [(q[1], q[2]) for q in queued(conn)] == [(pid, "DELETE")]  # it left them
    conn.execute("delete from public.sync_queue")
    conn.execute("delete from public.profiles where id = %s", (pid,))
    assert queued(conn) == []  # deleting a row that was not synced queues nothing


def test_a_delete_carries_the_old_row(conn: psycopg.Connection[Any]) -> None:
    pid = add_profile(conn, "d@example.com", first_name="Di")
    conn.execute("delete from public.sync_queue")
    conn.execute("delete from public.profiles where id = %s", (pid,))
    [(_, record, operation, payload)] = queued(conn)
    assert (record, operation, payload["email"]) == (pid, "DELETE", "d@example.com")


def test_changing_the_key_deletes_the_old_record_and_creates_the_new(conn: psycopg.Connection[Any]) -> None:
    pid = add_profile(conn, "k@example.com")
    conn.execute("delete from public.sync_queue")
    new = conn.execute(
        "update public.profiles set id = gen_random_uuid() where id = %s returning id::text", (pid,)
    ).fetchone()
    assert new is not None
    assert [(q[1], q[2]) for q in queued(conn)] == [(pid, "DELETE"), (new["id"], "INSERT")]


def test_operations_not_listed_are_not_queued(conn: psycopg.Connection[Any]) -> None:
    attach(conn, LISTINGS_MAPPING, (USERS, LISTINGS_MAPPING))
    lid = conn.execute("insert into public.listings (title) values ('Loft') returning id").fetchone()
    assert lid is not None
    conn.execute("delete from public.listings")
    assert [(q[0], q[1], q[2]) for q in queued(conn)] == [("listings", str(lid["id"]), "INSERT")]


def test_a_null_key_is_skipped_with_a_warning_not_a_failed_write(conn: psycopg.Connection[Any]) -> None:
    conn.execute("create table public.codes (code text unique, label text)")
    codes = Mapping(
        name="codes", schema="public", table="codes", key="code", data_type="code", key_field="supabase_id",
        fields=(FieldMap("label", "Label"),), where=None, operations=("insert",),
        on_delete=OnDelete("ignore"),
    )  # fmt: skip
    attach(conn, codes)
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute("insert into public.codes (code, label) values (null, 'x'), ('a', 'y')")
    assert [(q[0], q[1]) for q in queued(conn)] == [("codes", "a")]
    assert any("has no code (NULL or no such column)" in n for n in notices), notices


def test_identifiers_are_quoted_as_postgresql_quotes_them(conn: psycopg.Connection[Any]) -> None:
    for name in ("profiles", "user", "Listings", "select", "name", "a b", "_x1", "order", "type", 'q"t'):
        assert quote_ident(name) == conn.execute("select quote_ident(%s) as q", (name,)).fetchone()["q"]


# -- deletes in the queue ------------------------------------------------------------------------------------


def test_a_delete_replaces_a_waiting_change_and_a_later_create_waits_behind_it(
    conn: psycopg.Connection[Any],
) -> None:
    enqueue(conn, "r1", table="things", now=at(0))
    enqueue(conn, "r1", table="things", operation="DELETE", payload={"gone": True}, now=at(1))
    assert [q[2] for q in queued(conn)] == ["DELETE"]
    # made again with the same key: the old thing must go first, so the create is not folded into the delete
    enqueue(conn, "r1", table="things", operation="INSERT", payload={"v": 1}, now=at(2))
    enqueue(conn, "r1", table="things", operation="UPDATE", payload={"v": 2}, now=at(3))
    assert [(q[2], q[3]) for q in queued(conn)] == [("DELETE", {"gone": True}), ("INSERT", {"v": 2})]
    (first,) = claim(conn, now=at(4))
    assert first["operation"] == "DELETE"
    assert claim(conn, now=at(4)) == []  # the create waits for the delete
    complete(conn, first["lease_token"], now=at(5))
    assert [r["operation"] for r in claim(conn, now=at(6))] == ["INSERT"]


# -- links to Bubble ids -------------------------------------------------------------------------------------


def links(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], str]:
    rows = conn.execute("select table_name, record_id, bubble_id from bubble_sync.links").fetchall()
    return {(r["table_name"], r["record_id"]): r["bubble_id"] for r in rows}


def test_complete_links_a_record_and_claim_hands_the_link_out(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "r1", table="things", now=at(0))
    (create,) = claim(conn, now=at(1))
    assert create["bubble_id"] is None
    complete(conn, create["lease_token"], bubble_id="b-1", now=at(2))
    assert links(conn) == {("things", "r1"): "b-1"}
    enqueue(conn, "r1", table="things", operation="UPDATE", now=at(3))
    (update,) = claim(conn, now=at(4))
    assert update["bubble_id"] == "b-1"  # no search needed to modify it
    complete(conn, update["lease_token"], bubble_id="b-1", now=at(5))
    enqueue(conn, "r1", table="things", operation="DELETE", now=at(6))
    (delete,) = claim(conn, now=at(7))
    assert delete["bubble_id"] == "b-1"
    complete(conn, delete["lease_token"], bubble_id="b-1", now=at(8))
    assert links(conn) == {}  # the record is gone


def delete_duplicate(
    conn: psycopg.Connection[Any], record_id: str, bubble_id: str, now: Any
) -> dict[str, Any]:
    row = conn.execute(
        "select * from bubble_sync.enqueue_delete_duplicate('things', %s, %s, %s)",
        (record_id, bubble_id, now),
    ).fetchone()
    assert row is not None
    return dict(row)


def test_the_delete_of_a_duplicate_keeps_its_place_and_the_records_link(
    conn: psycopg.Connection[Any],
) -> None:
    enqueue(conn, "r1", table="things", now=at(0))
    (create,) = claim(conn, now=at(1))
    complete(conn, create["lease_token"], bubble_id="b-1", now=at(2))
    enqueue(conn, "r1", table="things", operation="UPDATE", payload={"v": 1}, now=at(3))
    queued_row = delete_duplicate(conn, "r1", "b-2", at(4))
    assert (queued_row["operation"], queued_row["payload"], queued_row["bubble_id"]) == (
        "DELETE",
        {"bubble_sync_duplicate": "b-2"},
        None,  # the claim fills in the record's link, which the function must not delete
    )
    assert delete_duplicate(conn, "r1", "b-2", at(5))["id"] == queued_row["id"]  # asked twice: queued once
    # the record's own changes do not replace it, and fold as if it were not there
    enqueue(conn, "r1", table="things", operation="UPDATE", payload={"v": 2}, now=at(6))
    waiting = conn.execute(
        "select operation, payload from public.sync_queue where status = 'pending' order by queue_order"
    ).fetchall()
    assert [(r["operation"], r["payload"]) for r in waiting] == [
        ("UPDATE", {"v": 2}),
        ("DELETE", {"bubble_sync_duplicate": "b-2"}),
    ]
    (update,) = claim(conn, now=at(7))
    complete(conn, update["lease_token"], bubble_id="b-1", now=at(8))
    (dup,) = claim(conn, now=at(9))
    assert (dup["payload"], dup["bubble_id"]) == ({"bubble_sync_duplicate": "b-2"}, "b-1")
    complete(conn, dup["lease_token"], bubble_id="b-2", now=at(10))
    assert links(conn) == {("things", "r1"): "b-1"}  # the record keeps its thing
    # a DELETE of the record replaces its waiting changes, but not a duplicate's delete
    delete_duplicate(conn, "r1", "b-3", at(11))
    enqueue(conn, "r1", table="things", operation="DELETE", now=at(12))
    waiting = conn.execute(
        "select operation, payload from public.sync_queue where status = 'pending' order by queue_order"
    ).fetchall()
    assert [(r["operation"], r["payload"]) for r in waiting] == [
        ("DELETE", {"bubble_sync_duplicate": "b-3"}),
        ("DELETE", {"id": "r1"}),
    ]


def test_the_thing_a_record_is_linked_to_is_refused_as_a_duplicate(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "r1", table="things", now=at(0))
    (create,) = claim(conn, now=at(1))
    complete(conn, create["lease_token"], bubble_id="b-1", now=at(2))
    with pytest.raises(
        psycopg.errors.InvalidParameterValue, match="is the one record things:r1 is linked to"
    ):
        delete_duplicate(conn, "r1", "b-1", at(3))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="Bubble id are required"):
        delete_duplicate(conn, "r1", "", at(3))
    assert conn.execute(
        "select count(*) as n from public.sync_queue where status = 'pending'"
    ).fetchone() == {"n": 0}


def test_a_verdict_may_note_what_a_completion_means(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "gone", table="things", operation="DELETE", now=at(0))
    (row,) = claim(conn, now=at(1))
    verdicts = [{"lease_token": str(row["lease_token"]), "bubble_id": None, "note": "Bubble never had it"}]
    outcome = conn.execute(
        "select outcome from bubble_sync.report_verdicts(%s, %s)", (psycopg.types.json.Jsonb(verdicts), at(2))
    ).fetchone()
    assert outcome == {"outcome": "completed"}
    done = conn.execute("select status, error_message from public.sync_queue").fetchone()
    assert done == {"status": "completed", "error_message": "Bubble never had it"}


# -- references ----------------------------------------------------------------------------------------------


def test_a_row_waits_for_the_record_it_refers_to_until_that_is_in_bubble(
    conn: psycopg.Connection[Any],
) -> None:
    attach(conn, LISTINGS_MAPPING, (USERS, LISTINGS_MAPPING))
    # only the listings refer to anything: claim checks references for their rows alone
    assert conn.execute("select bubble_sync.tables_with_references() as t").fetchone() == {"t": ["listings"]}
    host = add_profile(conn, "host@example.com")
    conn.execute("insert into public.listings (title, host_id) values ('Loft', %s)", (host,))
    conn.execute("insert into public.listings (title, host_id) values ('Barn', null)")
    # the host's create is due first in time, but claimed by another run: the Loft waits, the Barn does not
    (host_row,) = [r for r in claim(conn, limit=1, now=at(10**9)) if r["table_name"] == "profiles"]
    assert [r["payload"]["title"] for r in claim(conn, now=at(10**9))] == ["Barn"]
    complete(conn, host_row["lease_token"], bubble_id="host-b", now=at(10**9))
    (loft,) = claim(conn, now=at(10**9 + 1))
    assert (loft["payload"]["title"], loft["payload"]["host_id"]) == ("Loft", host)
    # once the host is linked, a change of the host waiting in the queue holds nothing back
    conn.execute("update public.profiles set first_name = 'H' where id = %s", (host,))
    conn.execute("update public.listings set title = 'Loft 2' where host_id = %s", (host,))
    complete(conn, loft["lease_token"], bubble_id="loft-b", now=at(10**9 + 2))
    assert sorted(r["table_name"] for r in claim(conn, now=at(10**9 + 3))) == ["listings", "profiles"]


def test_a_backfill_of_a_mapped_table_queues_what_its_trigger_would(conn: psycopg.Connection[Any]) -> None:
    conn.execute("alter table public.profiles disable trigger bubble_sync_users")  # rows from before it
    pid = add_profile(conn, "old@example.com", born="1990-02-03")
    conn.execute("alter table public.profiles enable trigger bubble_sync_users")
    conn.execute(
        "select * from bubble_sync.enqueue_backfill('public.profiles', 'id', %s,"
        " array(select to_jsonb(p) from public.profiles p))",
        (list(USERS.columns),),
    )
    [(table, record, operation, payload)] = queued(conn)
    assert (table, record, operation) == ("profiles", pid, "BACKFILL")
    assert payload["born"] == "1990-02-03T00:00:00.000Z" and payload["joined"] == "2026-12-05T09:13:51.123Z"


def test_a_definition_read_back_is_the_mapping() -> None:
    every = (USERS, LISTINGS_MAPPING)
    assert [from_definition(m.definition(every)) for m in every] == list(every)
    with pytest.raises(ValueError, match="not a mapping definition"):
        from_definition({"name": "x"})

"""The one comparison rule of Bubble against Supabase (sql/functions/compare.sql), against real PostgreSQL:
values as Bubble writes them compare equal to the source's (dates to the millisecond, numbers as numbers,
empty as empty, a user's built-in email), and each kind of difference is named: missing, stale (with the
fields), orphaned (source row gone or filtered out), duplicated; references compare by the linked Bubble
id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.types.json
import pytest
from psycopg.rows import dict_row

from tests.conftest import Database
from tests.test_mapped_queue import LISTINGS, LISTINGS_MAPPING, PROFILES, USERS, add_profile, attach


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute(PROFILES)
        c.execute(LISTINGS)
        attach(c, USERS, (USERS, LISTINGS_MAPPING))
        attach(c, LISTINGS_MAPPING, (USERS, LISTINGS_MAPPING))
        yield c


def compare(
    conn: psycopg.Connection[Any], mapping: str, ids: list[str], things: list[dict[str, Any]]
) -> dict[str, tuple[str, list[str] | None, list[str]]]:
    rows = conn.execute(
        "select * from bubble_sync.compare_with_bubble(%s, %s, %s)",
        (mapping, ids, psycopg.types.json.Jsonb(things)),
    ).fetchall()
    return {
        f"{r['record_id']}/{r['difference']}": (r["difference"], r["fields"], r["bubble_ids"]) for r in rows
    }


def user_thing(pid: str, **fields: Any) -> dict[str, Any]:
    """A user as Bubble's Data API returns it: the email under authentication, dates in Bubble's format."""
    thing: dict[str, Any] = {
        "_id": fields.pop("_id", f"b-{pid}"),
        "supabase_id": f"profiles:{pid}",
        "authentication": {"email": {"email": fields.pop("email", "Ada@Example.com")}},
        "First Name": "Ada",
        "Joined": "2026-12-05T09:13:51.123Z",
        "Born": "1990-02-03T00:00:00.000Z",
        "Score": 12.5,
        "Tags": ["a", "b"],
    }
    thing.update(fields)
    return {k: v for k, v in thing.items() if v is not None}


def ada(conn: psycopg.Connection[Any]) -> str:
    return add_profile(
        conn, "ada@example.com", first_name="Ada", born="1990-02-03", tags=["a", "b"], score=12.50,
        seen_local=None,
    )  # fmt: skip


def test_a_thing_as_bubble_writes_it_is_in_sync(conn: psycopg.Connection[Any]) -> None:
    pid = ada(conn)
    # Bubble answers a number without its trailing zero, drops empty fields, keeps the email's case
    assert compare(conn, "users", [pid], [user_thing(pid, Score=12.5, Seen=None)]) == {}


def test_each_difference_is_named(conn: psycopg.Connection[Any]) -> None:
    synced, stale, duplicated, gone = ada(conn), ada(conn), ada(conn), ada(conn)
    filtered, missing = ada(conn), ada(conn)
    conn.execute("delete from public.profiles where id = %s", (gone,))
    conn.execute("update public.profiles set is_test = true where id = %s", (filtered,))
    things = [
        user_thing(synced),
        user_thing(stale, **{"First Name": "Bob", "Joined": "2026-12-05T09:13:52.000Z"}),
        user_thing(duplicated, _id="d1"),
        user_thing(duplicated, _id="d2"),
        user_thing(gone),
        user_thing(filtered),
        {"_id": "other", "supabase_id": "listings:1"},  # another table's key: not ours to judge here
    ]
    found = compare(conn, "users", [synced, stale, duplicated, missing], things)
    assert found == {
        f"{stale}/stale": ("stale", ["First Name", "Joined"], [f"b-{stale}"]),
        f"{duplicated}/duplicated": ("duplicated", None, ["d1", "d2"]),
        f"{gone}/orphaned": ("orphaned", None, [f"b-{gone}"]),
        f"{filtered}/orphaned": ("orphaned", None, [f"b-{filtered}"]),
        f"{missing}/missing": ("missing", None, []),
    }


def test_a_reference_compares_by_the_linked_bubble_id(conn: psycopg.Connection[Any]) -> None:
    host = ada(conn)
    lid = conn.execute(
        "insert into public.listings (title, host_id) values ('Loft', %s) returning id::text", (host,)
    ).fetchone()["id"]
    listing = {"_id": "l1", "supabase_id": f"listings:{lid}", "Title": "Loft", "Host": "host-b"}
    assert compare(conn, "listings", [lid], [listing]) == {}  # no link for the host yet: Host not judged
    conn.execute(
        "insert into bubble_sync.links (table_name, record_id, bubble_id) values ('profiles', %s, 'host-b')",
        (host,),
    )
    assert compare(conn, "listings", [lid], [listing]) == {}
    assert compare(conn, "listings", [lid], [{**listing, "Host": "someone-else"}]) == {
        f"{lid}/stale": ("stale", ["Host"], ["l1"])
    }


def test_values_alike_as_bubble_holds_them(conn: psycopg.Connection[Any]) -> None:
    same = [
        ("null", "null"), ('""', "null"), ("null", '""'), ("[]", "null"),
        ("3", "3.0"), ("3", '"3"'), ('"2026-12-05T09:13:51.123Z"', '"2026-12-05T10:13:51.123+01:00"'),
        ('"2026-12-05T09:13:51.1234Z"', '"2026-12-05T09:13:51.123Z"'), ('["a", 1]', '["a", 1.0]'),
        ("true", "true"),
    ]  # fmt: skip
    different = [
        ("null", '"x"'), ('"x"', "null"), ("3", "4"), ('"a"', '"A"'), ("[1, 2]", "[2, 1]"), ("true", "false"),
        ('"2026-12-05T09:13:51.123Z"', '"2026-12-05T09:13:51.124Z"'),
    ]  # fmt: skip
    for source, bubble in same + different:
        got = conn.execute(
            "select bubble_sync.same_value(%s::jsonb, %s::jsonb) as s", (source, bubble)
        ).fetchone()
        assert got["s"] is ((source, bubble) in same), (source, bubble)


def test_an_unknown_mapping_is_an_error_naming_it(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no mapping 'nope'"):
        compare(conn, "nope", [], [])


def test_service_role_may_compare(queue_db: Database, conn: psycopg.Connection[Any]) -> None:
    """A check running as service_role (reconcile with the service key) converts rows as the trigger does."""
    pid = ada(conn)
    with queue_db.connect_as("service_role") as role:
        rows = role.execute(
            "select difference from bubble_sync.compare_with_bubble('users', %s, '[]')", ([pid],)
        ).fetchall()
    assert [r[0] for r in rows] == ["missing"]

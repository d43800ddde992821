"""`reconcile` on the devstack's parts: three mapped tables of real PostgreSQL synced by the bubble_sync
function served by Deno to the Bubble double, then edits, deletes, extra things and a duplicate made behind
the sync's back (as a Bubble editor or workflow would, and a change made in Supabase while a trigger was
off).
`reconcile` names each kind with the right counts and exits 1; `reconcile --repair` queues the fixes through
the queue, follows them, and a second `reconcile` finds Bubble in sync but for the duplicate (named, the
linked thing kept), which `--repair --delete-duplicates` deletes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster
from tests import function_support
from tests.conftest import Database, fresh_database
from tests.function_support import Host, empty_queue_and_bubble
from tests.reconcile_support import (
    BUBBLE_TOKEN,
    LEGACY_KEY,
    SCHEMA,
    SECRET_KEY,
    deploy,
    mappings_json_env,
    processor,
    reconcile,
    sync,
)

ENV = "test"


@pytest.fixture(scope="module")
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=BUBBLE_TOKEN, seed=19, schema=SCHEMA) as double:
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
        tmp_path_factory.mktemp("reconcile_host"), database, bubble, bubble_token=BUBBLE_TOKEN,
        service_role_key=LEGACY_KEY, secret_key=SECRET_KEY, http_timeout_ms=2000, **mappings_json_env(),
    )  # fmt: skip


@pytest.fixture
def conn(database: Database, bubble: BubbleDouble) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(database.dsn, autocommit=True, row_factory=dict_row) as c:
        deploy(c)
        empty_queue_and_bubble(c, bubble, schema=SCHEMA)
        yield c


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120, trust_env=False) as c:
        yield c


def add_profile(conn: psycopg.Connection[Any], email: str, *, is_test: bool = False) -> str:
    row = conn.execute(
        "insert into public.profiles (email, first_name, is_test) values (%s, 'Ada', %s) returning id::text",
        (email, is_test),
    ).fetchone()
    return str(row["id"])


def thing_of(bubble: BubbleDouble, data_type: str, key: str) -> dict[str, Any]:
    return next(t for t in bubble.records(data_type, env=ENV) if t.get("supabase_id") == key)


def synced_world(conn: psycopg.Connection[Any], client: httpx.Client, host: Host) -> dict[str, Any]:
    """Six users (one a test account the mapping filters out), two listings of the first, three messages;
    synced."""
    users = [add_profile(conn, f"u{i}@example.com") for i in range(5)]
    tester = add_profile(conn, "qa@example.com", is_test=True)
    listings = [
        str(conn.execute(
            "insert into public.listings (title, price, host_id) values (%s, 10, %s) returning id::text",
            (title, users[0]),
        ).fetchone()["id"])
        for title in ("Loft", "Barn")
    ]  # fmt: skip
    messages = [
        str(
            conn.execute(
                "insert into public.messages (body) values (%s) returning id::text", (b,)
            ).fetchone()["id"]
        )
        for b in ("one", "two", "three")
    ]
    sync(client, host, conn)
    return {"users": users, "tester": tester, "listings": listings, "messages": messages}


def test_a_synced_world_is_in_sync(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    synced_world(conn, client, host)
    outcome = reconcile(database.dsn, bubble, "--json")
    assert outcome.code == 0, outcome.err + outcome.out
    assert outcome.counts() == {
        "users": {"missing": 0, "stale": 0, "orphaned": 0, "duplicated": 0},
        "listings": {"missing": 0, "stale": 0, "orphaned": 0, "duplicated": 0},
        "messages": {"missing": 0, "stale": 0, "orphaned": 0, "duplicated": 0},
    }
    by_name = {m["mapping"]: m for m in outcome.document["mappings"]}
    assert (by_name["users"]["records"], by_name["users"]["things"]) == (
        5,
        5,
    )  # the test account is not synced
    # one page per data type: 3 scans, nothing differed so no second look
    assert outcome.document["bubble_requests"] == 3


def test_differences_made_behind_the_syncs_back_are_each_named_then_repaired(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    world = synced_world(conn, client, host)
    u = world["users"]
    # Bubble, behind the sync's back: an editor changes a name, a workflow deletes a user, someone adds a user
    # carrying a key no record has, and a second thing with an existing record's key
    bubble.modify(
        "user", thing_of(bubble, "user", f"profiles:{u[1]}")["_id"], {"First Name": "Robert"}, env=ENV
    )
    bubble.delete("user", thing_of(bubble, "user", f"profiles:{u[2]}")["_id"], env=ENV)
    ghost = str(uuid.uuid4())
    bubble.add("user", {"email": "ghost@example.com", "supabase_id": f"profiles:{ghost}"}, env=ENV)
    duplicate = bubble.add("user", {"email": "twin@example.com", "supabase_id": f"profiles:{u[3]}"}, env=ENV)
    # Supabase, while the triggers were off (a destroy/up, a bulk fix): a message edited, another deleted
    conn.execute("alter table public.messages disable trigger user")
    conn.execute("update public.messages set body = 'ONE' where id = %s", (world["messages"][0],))
    conn.execute("delete from public.messages where id = %s", (world["messages"][1],))
    conn.execute("alter table public.messages enable trigger user")
    # a listing's thing deleted in Bubble: missing, its host linked
    bubble.delete("listing", thing_of(bubble, "listing", f"listings:{world['listings'][1]}")["_id"], env=ENV)

    found = reconcile(database.dsn, bubble, "--json", "--show-values")
    assert found.code == 1, found.err + found.out
    assert found.counts() == {
        "users": {"missing": 1, "stale": 1, "orphaned": 1, "duplicated": 1},
        "listings": {"missing": 1, "stale": 0, "orphaned": 0, "duplicated": 0},
        "messages": {"missing": 0, "stale": 1, "orphaned": 1, "duplicated": 0},
    }
    users = next(m for m in found.document["mappings"] if m["mapping"] == "users")
    assert [e["key"] for e in users["missing"]["examples"]] == [f"profiles:{u[2]}"]
    assert users["stale"]["examples"][0]["fields"] == ["First Name"]
    assert users["stale"]["examples"][0]["values"] == [
        {"field": "First Name", "column": "first_name", "supabase": "Ada", "bubble": "Robert"}
    ]
    assert [e["key"] for e in users["orphaned"]["examples"]] == [f"profiles:{ghost}"]
    twin = users["duplicated"]["examples"][0]
    assert twin["key"] == f"profiles:{u[3]}" and duplicate in twin["bubble_ids"] and twin["kept"] != duplicate

    text = reconcile(database.dsn, bubble)  # the same, as text
    assert text.code == 1
    assert f"  missing         1  profiles:{u[2]}\n" in text.out
    assert "repair them:" in text.out

    dry = reconcile(database.dsn, bubble, "--repair", "--dry-run")
    assert dry.code == 1 and "repair users: queue 1 INSERT, 1 UPDATE, 1 DELETE" in dry.out, dry.out
    assert "dry run: nothing was queued" in dry.out
    assert (
        conn.execute("select count(*) as n from public.sync_queue where status <> 'completed'").fetchone()[
            "n"
        ]
        == 0
    )

    with processor(host):
        repaired = reconcile(database.dsn, bubble, "--repair", "--json")
    assert repaired.code == 1, repaired.err + repaired.out  # the duplicate is left: named, not deleted
    assert repaired.counts("after") == {
        "users": {"missing": 0, "stale": 0, "orphaned": 0, "duplicated": 1},
        "listings": {"missing": 0, "stale": 0, "orphaned": 0, "duplicated": 0},
        "messages": {"missing": 0, "stale": 0, "orphaned": 0, "duplicated": 0},
    }
    assert repaired.document["repair"]["failed"] == 0

    again = reconcile(database.dsn, bubble, "--json")
    assert again.code == 1 and again.counts()["users"]["duplicated"] == 1
    assert sum(sum(k.values()) for k in again.counts().values()) == 1
    # the thing kept is the one the queue links; Bubble's other things are what Supabase holds
    assert thing_of(bubble, "user", f"profiles:{u[1]}")["First Name"] == "Ada"
    assert sorted(t["Body"] for t in bubble.records("message", env=ENV)) == ["ONE", "three"]
    assert bubble.record("user", duplicate, env=ENV) is not None

    # with --delete-duplicates the extra thing goes too, through the queue, and Bubble matches Supabase
    with processor(host):
        deduplicated = reconcile(database.dsn, bubble, "--repair", "--delete-duplicates", "--json")
    assert deduplicated.code == 0, deduplicated.err + deduplicated.out
    assert deduplicated.document["repair"]["failed"] == 0
    assert bubble.record("user", duplicate, env=ENV) is None
    assert thing_of(bubble, "user", f"profiles:{u[3]}")["_id"] == twin["kept"]
    assert reconcile(database.dsn, bubble).code == 0


def test_a_listing_archived_as_its_mapping_says_is_no_difference(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    world = synced_world(conn, client, host)
    conn.execute("delete from public.listings where id = %s", (world["listings"][0],))
    sync(client, host, conn)  # onDelete set: Archived true, the thing stays
    assert thing_of(bubble, "listing", f"listings:{world['listings'][0]}")["Archived"] is True
    outcome = reconcile(database.dsn, bubble, "--json", mapping="listings")
    assert outcome.code == 0, outcome.out
    assert outcome.document["mappings"][0]["archived"] == 1


def test_ctrl_c_while_following_repairs_leaves_them_queued(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    world = synced_world(conn, client, host)
    bubble.delete("user", thing_of(bubble, "user", f"profiles:{world['users'][0]}")["_id"], env=ENV)

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt  # the first wait is the follow's: nothing processes the queue here

    outcome = reconcile(database.dsn, bubble, "--repair", sleep=interrupted)
    assert outcome.code == 130, outcome.err
    assert "stopped following: 1 repair queued keeps syncing" in outcome.err
    row = conn.execute(
        "select operation, status from public.sync_queue where record_id = %s and status <> 'completed'",
        (world["users"][0],),
    ).fetchall()
    assert [dict(r) for r in row] == [{"operation": "INSERT", "status": "pending"}]


def test_delete_duplicates_deletes_each_extra_thing_and_keeps_the_linked_one(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    world = synced_world(conn, client, host)
    record = world["users"][3]
    kept = thing_of(bubble, "user", f"profiles:{record}")["_id"]
    extra = [
        bubble.add("user", {"email": f"twin{i}@example.com", "supabase_id": f"profiles:{record}"}, env=ENV)
        for i in range(2)
    ]
    with processor(host):
        outcome = reconcile(database.dsn, bubble, "--repair", "--delete-duplicates", mapping="users")
    assert "repair users: queue 2 deletes of duplicates" in outcome.out, outcome.out + outcome.err
    assert outcome.code == 0, outcome.out + outcome.err
    asked = conn.execute(
        "select record_id, bubble_id, status from public.sync_queue where payload ? 'bubble_sync_duplicate'"
        " order by bubble_id"
    ).fetchall()
    assert [(r["record_id"], r["bubble_id"], r["status"]) for r in asked] == [
        (record, b, "completed") for b in sorted(extra)
    ]
    assert [bubble.record("user", b, env=ENV) for b in extra] == [None, None]
    assert bubble.record("user", kept, env=ENV) is not None  # the linked thing is kept, and stays linked
    link = conn.execute(
        "select bubble_id from bubble_sync.links where table_name = 'profiles' and record_id = %s", (record,)
    ).fetchone()
    assert link == {"bubble_id": kept}


def test_delete_duplicates_is_refused_by_a_deployment_that_cannot_delete_one_thing(
    conn: psycopg.Connection[Any], bubble: BubbleDouble, database: Database
) -> None:
    signature = "bubble_sync.enqueue_delete_duplicate(text, text, text, timestamptz)"
    definition = conn.execute("select pg_get_functiondef(%s::regprocedure) as d", (signature,)).fetchone()
    assert definition is not None
    conn.execute(f"drop function {signature}")  # as a deployment of the release before this one
    try:
        refused = reconcile(database.dsn, bubble, "--repair", "--delete-duplicates")
    finally:
        conn.execute(definition["d"])
        conn.execute(f"revoke all on function {signature} from public, anon, authenticated")
        conn.execute(f"grant execute on function {signature} to service_role")
    assert refused.code == 2 and "cannot delete one Bubble thing of a record" in refused.err

"""A backfill end to end: `python -m components backfill` queues existing records in real PostgreSQL, the
bubble_sync Edge Function served by Deno syncs them to the Bubble double. Each backfilled record is looked up
by its key first (one search per up to 100 keys), records Bubble already has are linked, not created again
(by key, or by a user's email), the rest are created with bulk calls, and new signups go first."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from components.operator import backfill as bf
from devstack.bubble_double import BubbleDouble, user_email
from devstack.cluster import Cluster
from tests import function_support
from tests.conftest import Database, fresh_database
from tests.function_support import Host, empty_queue_and_bubble

BUBBLE_TOKEN = "bubble-backfill-token-5d1e7a3c9b"
LEGACY_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.backfill-test-signature"
SECRET_KEY = "sb_secret_backfill_test_7e2c4a"
PROCESS = "process_queue_data_api"
RETRY = "retry_failed"

PROFILES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  email      text not null,
  first_name text
);
"""


@pytest.fixture(scope="module")
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=BUBBLE_TOKEN, seed=11) as double:
        yield double


@pytest.fixture(scope="module")
def database(cluster: Cluster, queue_template: str) -> Iterator[Database]:
    with fresh_database(cluster, queue_template) as db:
        yield db


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory, database: Database, bubble: BubbleDouble
) -> Iterator[Host]:
    # bubbleBulkCreate is off (the default): backfilled rows use the bulk endpoint all the same
    yield from function_support.start_host(
        tmp_path_factory.mktemp("backfill_host"), database, bubble, bubble_token=BUBBLE_TOKEN,
        service_role_key=LEGACY_KEY, secret_key=SECRET_KEY, http_timeout_ms=2000,
    )  # fmt: skip


@pytest.fixture
def conn(database: Database, bubble: BubbleDouble) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(database.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute("drop table if exists public.profiles")
        c.execute(PROFILES)
        empty_queue_and_bubble(c, bubble)
        yield c


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120, trust_env=False) as c:
        yield c


def add_profiles(conn: psycopg.Connection[Any], count: int) -> list[str]:
    rows = conn.execute(
        "insert into public.profiles (email, first_name)"
        " select 'user' || i || '@example.com', 'Ada' from generate_series(0, %s::int - 1) i"
        " returning id::text",
        (count,),
    ).fetchall()
    return sorted(r["id"] for r in rows)


def backfill(database: Database) -> str:
    out = io.StringIO()
    code = bf.run_backfill(
        database.dsn, source="public.profiles", key="id", fields=["email", "first_name"], where=None,
        follow_sync=False, out=out, err=out, tty=False,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    return out.getvalue()


def run(client: httpx.Client, host: Host, action: str = PROCESS, **body: Any) -> dict[str, Any]:
    response = client.post(
        host.function_url,
        json={"action": action, "wait": True, **body},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def settle(conn: psycopg.Connection[Any], client: httpx.Client, host: Host, rounds: int = 10) -> None:
    """Runs both actions until nothing is open; what waits for a backoff or a settle window is made due."""
    for _ in range(rounds):
        run(client, host, PROCESS)
        run(client, host, RETRY)
        open_rows = conn.execute(
            "select count(*) as n from public.sync_queue"
            " where status in ('pending', 'processing') or (status = 'failed' and retry_count < max_retries)"
        ).fetchone()["n"]
        if open_rows == 0:
            return
        conn.execute("update public.sync_queue set next_retry_at = now() - interval '1 second'")
    raise AssertionError("the queue did not settle")


def searches(bubble: BubbleDouble) -> list[dict[str, Any]]:
    """The constraint of every search the double answered."""
    found = []
    for r in bubble.requests():
        if r["method"] == "GET" and r.get("query"):
            (constraint,) = json.loads(parse_qs(r["query"])["constraints"][0])
            found.append(constraint)
    return found


def requests_by_kind(bubble: BubbleDouble) -> Counter[str]:
    return Counter(f"{r['method']} {r['path'].rsplit('/', 1)[-1]}" for r in bubble.requests())


def assert_one_thing_per_record(conn: psycopg.Connection[Any], bubble: BubbleDouble, ids: list[str]) -> None:
    things = bubble.records("user", env="test")
    per_key = Counter(t.get("supabase_id") for t in things)
    assert not {k: n for k, n in per_key.items() if n > 1}, "a record was created twice in Bubble"
    assert sorted(per_key) == sorted(f"profiles:{i}" for i in ids)
    by_key = {t["supabase_id"]: t["_id"] for t in things}
    rows = conn.execute("select * from public.sync_queue order by record_id").fetchall()
    assert [r["record_id"] for r in rows] == ids
    for row in rows:
        assert (row["operation"], row["status"]) == ("BACKFILL", "completed"), row
        assert row["bubble_id"] == by_key[f"profiles:{row['record_id']}"], row


# --- tests --------------------------------------------------------------------------------------------------


def test_a_backfill_is_looked_up_then_created_in_bulk(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    ids = add_profiles(conn, 230)
    assert "queued 230 rows" in backfill(database)
    summary = run(client, host)
    assert (summary["claimed"], summary["completed"], summary["failed"]) == (230, 230, 0), summary
    assert_one_thing_per_record(conn, bubble, ids)
    # claims of 50: per claim one search for its 50 keys and one bulk call for the 50 Bubble lacked
    assert requests_by_kind(bubble) == {"GET user": 5, "POST bulk": 5}, requests_by_kind(bubble)
    assert summary["bubble_requests"] == 10  # 0.04 requests per record
    assert all(c["constraint_type"] == "in" and c["key"] == "supabase_id" for c in searches(bubble))
    assert sorted(len(c["value"]) for c in searches(bubble)) == [30, 50, 50, 50, 50]
    thing = next(t for t in bubble.records("user", env="test") if t["supabase_id"] == f"profiles:{ids[0]}")
    assert thing["first_name"] == "Ada" and user_email(thing).endswith("@example.com")


def test_records_bubble_already_has_are_linked_never_duplicated(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    ids = add_profiles(conn, 40)
    emails = {r["id"]: r["email"] for r in conn.execute("select id::text, email from public.profiles")}
    made = {}

    def make(fields: dict[str, Any]) -> str:
        answer = httpx.post(
            f"{bubble.url}/version-test/api/1.1/obj/user",
            json=fields,
            headers={"Authorization": f"Bearer {BUBBLE_TOKEN}"},
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    # synced long ago, their completed rows purged since: Bubble has them by key
    for record_id in ids[:5]:
        made[record_id] = make(
            {"email": emails[record_id], "first_name": "Synced", "supabase_id": f"profiles:{record_id}"}
        )
    # people who signed up in Bubble itself: same email, no key
    for record_id in ids[5:8]:
        made[record_id] = make({"email": emails[record_id].upper(), "first_name": "Made in Bubble"})

    backfill(database)
    settle(conn, client, host)
    assert_one_thing_per_record(conn, bubble, ids)
    rows = {r["record_id"]: r for r in conn.execute("select * from public.sync_queue").fetchall()}
    for record_id, bubble_id in made.items():
        assert rows[record_id]["bubble_id"] == bubble_id, record_id
    things = {t["_id"]: t for t in bubble.records("user", env="test")}
    # linked by key: left as Bubble has them; linked by email: given the key and the record's fields
    assert {things[made[i]]["first_name"] for i in ids[:5]} == {"Synced"}
    assert {things[made[i]]["first_name"] for i in ids[5:8]} == {"Ada"}
    kinds = requests_by_kind(bubble)
    # one search, one bulk call (its 3 used emails refused), each of those alone, looked up by email, linked
    assert (kinds["POST bulk"], kinds["POST user"], kinds["PATCH " + made[ids[5]]]) == (1, 3 + 8, 1), kinds


def test_a_lost_bulk_call_is_looked_up_again_not_created_twice(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    ids = add_profiles(conn, 30)
    backfill(database)
    # Bubble stores the bulk call's things, and the answer never comes
    bubble.configure(faults=[{"kind": "close_after_store", "path_regex": "/bulk$", "count": 1}])
    summary = run(client, host)
    assert summary["failed"] == 30, summary
    settle(conn, client, host)
    assert_one_thing_per_record(conn, bubble, ids)
    assert requests_by_kind(bubble)["POST bulk"] == 1  # the retry found all 30 by key


def test_signups_are_synced_before_a_backfill(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    add_profiles(conn, 120)
    backfill(database)
    conn.execute(
        "select bubble_sync.enqueue('profiles', 'signup-1', 'INSERT', %s)",
        (Jsonb({"email": "new@example.com", "first_name": "New"}),),
    )
    summary = run(client, host, limit=1)
    assert summary["completed"] == 1
    done = conn.execute(
        "select record_id, operation from public.sync_queue where status = 'completed'"
    ).fetchall()
    assert done == [{"record_id": "signup-1", "operation": "INSERT"}]
    assert [t["supabase_id"] for t in bubble.records("user", env="test")] == ["profiles:signup-1"]


def test_the_command_follows_the_sync_to_its_end(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    ids = add_profiles(conn, 150)
    out = io.StringIO()

    def sleep(_seconds: float) -> None:  # instead of waiting for the cron: a run of the function
        run(client, host, limit=50)

    code = bf.run_backfill(
        database.dsn, source="profiles", key=None, fields=["email", "first_name"], where=None,
        out=out, err=out, tty=False, progress_interval=0, sleep=sleep,
    )  # fmt: skip
    text = out.getvalue()
    assert code == 0, text
    assert "queued 150 rows in 1 chunks" in text and text.endswith("done: 150 synced, none failed\n")
    syncing = [line for line in text.splitlines() if line.startswith("syncing:")]
    assert syncing[0].startswith("syncing: 150 queued, 0/150 synced, 0 failed;")
    assert [line.split(", ")[1] for line in syncing[1:]] == [
        "50/150 synced",
        "100/150 synced",
        "150/150 synced",
    ]
    assert_one_thing_per_record(conn, bubble, ids)

"""The whole pipeline on the local stack, as `./dev up` starts it (devstack.stack.up): a signup inserted into
the user's own table reaches the Bubble double through trigger → sync_queue → immediate dispatch → pg_net →
the bubble_sync edge function (Deno) → Bubble → `completed` with its bubble_id; and, with immediate dispatch
off, the REAL pg_cron job `bubble-sync-processor` delivers it on its minute tick.

SLOW: `test_slow_cron_fires_the_processor_with_immediate_dispatch_off` waits for a real minute tick (up to
75 s). It runs by default, CI must cover it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from devstack import stack
from tests.e2e_support import create_signup_table, wait_for

REPO = Path(__file__).resolve().parents[1]
SYNC_WITHIN_SECONDS = 5.0
CRON_TICK_WITHIN_SECONDS = 75.0


@pytest.fixture(scope="module")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackInfo]:
    state_dir = tmp_path_factory.mktemp("e2e") / "state"
    info = stack.up(state_dir)
    try:
        yield info
    finally:
        stack.down(state_dir)


@pytest.fixture(scope="module")
def conn(devstack: stack.StackInfo) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(devstack.database_url, autocommit=True, row_factory=dict_row) as c:
        create_signup_table(c)
        yield c


@pytest.fixture(scope="module")
def bubble(devstack: stack.StackInfo) -> Iterator[httpx.Client]:
    """The stack's Bubble double (a separate process), through its admin endpoints."""
    with httpx.Client(base_url=devstack.bubble_url, timeout=10, trust_env=False) as client:
        yield client


def bubble_users(bubble: httpx.Client) -> list[dict[str, Any]]:
    return bubble.get("/_double/records", params={"env": "test", "type": "user"}).json()["records"]


def bubble_requests(bubble: httpx.Client) -> list[dict[str, Any]]:
    return bubble.get("/_double/requests").json()["requests"]


def queue_row(conn: psycopg.Connection[dict[str, Any]], record_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "select * from public.sync_queue where table_name = 'profiles' and record_id = %s"
        " order by created_at desc limit 1",
        (record_id,),
    ).fetchone()


def is_completed(conn: psycopg.Connection[dict[str, Any]], record_id: str) -> bool:
    row = queue_row(conn, record_id)
    return row is not None and row["status"] == "completed"


def sign_up(conn: psycopg.Connection[dict[str, Any]], email: str, password_hash: str) -> str:
    row = conn.execute(
        "insert into public.profiles (email, full_name, password_hash) values (%s, 'Ada Lovelace', %s)"
        " returning id::text as id",
        (email, password_hash),
    ).fetchone()
    assert row is not None
    return row["id"]


def test_a_signup_reaches_bubble_through_the_whole_chain_within_seconds(
    devstack: stack.StackInfo, conn: psycopg.Connection[dict[str, Any]], bubble: httpx.Client
) -> None:
    password_hash = "pbkdf2_sha256$600000$e2e-secret-hash-c0ffee"
    record_id = sign_up(conn, "ada@example.com", password_hash)  # autocommit: committed here
    took = wait_for(lambda: is_completed(conn, record_id), "the signup to be completed", SYNC_WITHIN_SECONDS)

    row = queue_row(conn, record_id)
    assert row is not None
    assert (row["operation"], row["retry_count"], row["error_message"]) == ("INSERT", 0, None)
    users = [u for u in bubble_users(bubble) if u.get("supabase_id") == f"profiles:{record_id}"]
    assert len(users) == 1, users
    user = users[0]
    assert row["bubble_id"] == user["_id"]
    # Bubble keeps a user's email under authentication.email.email (manual), as the double does
    assert (user["authentication"]["email"]["email"], user["full_name"]) == (
        "ada@example.com",
        "Ada Lovelace",
    )

    # The password column never left the database: not in the queue's payload, not in Bubble.
    assert set(row["payload"]) == {"id", "email", "full_name"}, row["payload"]
    assert "password_hash" not in user and all(password_hash not in str(v) for v in user.values())
    creates = [
        r for r in bubble_requests(bubble) if r["method"] == "POST" and r["path"].endswith("/obj/user")
    ]
    assert creates and all(password_hash not in (r["body"] or "") for r in creates)
    assert all(r["path"].startswith("/version-test/api/1.1/") for r in creates)

    # The hops in between: pg_net delivered the dispatch to the function, which accepted it (202).
    responses = conn.execute(
        "select status_code, error_msg from net._http_response where created >= now() - interval '1 minute'"
    ).fetchall()
    assert {"status_code": 202, "error_msg": None} in responses, responses
    print(f"\nsignup → completed in Bubble: {took:.2f} s (limit {SYNC_WITHIN_SECONDS} s)")


def test_a_burst_of_separate_signups_all_arrive_within_seconds(
    conn: psycopg.Connection[dict[str, Any]], bubble: httpx.Client
) -> None:
    """30 signups, each its own transaction, as fast as one connection can make them: the debounced dispatch
    (at most one wake outstanding) must not strand any of them until the next cron tick."""
    ids = [sign_up(conn, f"burst{i}@example.com", f"pbkdf2$burst{i}") for i in range(30)]

    def all_completed() -> bool:
        row = conn.execute(
            "select count(*) as n from public.sync_queue where record_id = any(%s) and status = 'completed'",
            (ids,),
        ).fetchone()
        return row is not None and row["n"] == len(ids)

    took = wait_for(all_completed, "every signup of the burst to be completed", SYNC_WITHIN_SECONDS)
    keys = [u.get("supabase_id") for u in bubble_users(bubble)]
    assert all(keys.count(f"profiles:{i}") == 1 for i in ids)
    print(f"\n30 separate signups → all completed in Bubble: {took:.2f} s")


def test_a_profile_update_modifies_the_same_bubble_user(
    conn: psycopg.Connection[dict[str, Any]], bubble: httpx.Client
) -> None:
    record_id = sign_up(conn, "grace@example.com", "pbkdf2$grace")
    wait_for(lambda: is_completed(conn, record_id), "the signup to be completed", SYNC_WITHIN_SECONDS)
    conn.execute("update public.profiles set full_name = 'Grace Hopper' where id = %s", (record_id,))

    def renamed() -> bool:
        users = [u for u in bubble_users(bubble) if u.get("supabase_id") == f"profiles:{record_id}"]
        return len(users) == 1 and users[0]["full_name"] == "Grace Hopper"

    wait_for(renamed, "the update to reach Bubble", SYNC_WITHIN_SECONDS)
    wait_for(lambda: is_completed(conn, record_id), "the update row to be completed", SYNC_WITHIN_SECONDS)
    rows = conn.execute(
        "select operation, status from public.sync_queue where record_id = %s order by created_at",
        (record_id,),
    ).fetchall()
    assert [(r["operation"], r["status"]) for r in rows] == [("INSERT", "completed"), ("UPDATE", "completed")]
    # Only the password changes: the payload is as it was, so nothing is queued (and nothing is sent).
    conn.execute("update public.profiles set password_hash = 'pbkdf2$new' where id = %s", (record_id,))
    count = conn.execute("select count(*) as n from public.sync_queue where record_id = %s", (record_id,))
    assert count.fetchone() == {"n": 2}


def test_slow_cron_fires_the_processor_with_immediate_dispatch_off(
    conn: psycopg.Connection[dict[str, Any]], bubble: httpx.Client
) -> None:
    """SLOW (up to 75 s): the real pg_cron job `bubble-sync-processor` (`* * * * *`) is what syncs the row."""
    job = conn.execute(
        "select jobid, schedule, active from cron.job where jobname = 'bubble-sync-processor'"
    ).fetchone()
    assert job is not None and (job["schedule"], job["active"]) == ("* * * * *", True), job
    # dispatchMode: cron, applied to a live database (sql/dispatch_trigger.sql says how to turn it off).
    conn.execute("drop trigger if exists bubble_sync_dispatch on public.sync_queue")
    try:
        # Insert early in a minute, so that "not synced yet" below cannot be a tick in between.
        wait_for(lambda: 2 <= datetime.now(UTC).second <= 45, "the early part of a minute", 60)
        inserted_at = datetime.now(UTC)
        record_id = sign_up(conn, "cron@example.com", "pbkdf2$cron")
        time.sleep(2)
        row = queue_row(conn, record_id)
        assert row is not None and row["status"] == "pending", f"synced without the cron tick: {row}"
        waited = wait_for(
            lambda: is_completed(conn, record_id), "the cron tick to sync the row", CRON_TICK_WITHIN_SECONDS
        )
        completed_row = queue_row(conn, record_id)
        assert completed_row is not None and completed_row["bubble_id"]

        runs = conn.execute(
            "select status, command, start_time from cron.job_run_details"
            " where jobid = %s and start_time >= %s order by start_time",
            (job["jobid"], inserted_at),
        ).fetchall()
        assert runs, "no run of bubble-sync-processor was recorded"
        assert runs[0]["status"] == "succeeded", runs
        assert "invoke_bubble_sync_processor" in runs[0]["command"]
        assert runs[0]["start_time"] < completed_row["updated_at"]
        users = [u for u in bubble_users(bubble) if u.get("supabase_id") == f"profiles:{record_id}"]
        assert [u["_id"] for u in users] == [completed_row["bubble_id"]]
        print(f"\ncron tick synced the row {waited + 2:.1f} s after the insert")
    finally:
        conn.execute((REPO / "sql" / "dispatch_trigger.sql").read_text())

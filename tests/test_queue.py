"""The queue in sql/ against real PostgreSQL: the state machine (enqueue, claim, complete, fail, reclaim) with
an injected clock, claim races between connections, adoption of a hand-made table, the enqueue trigger, purge
and health, and the seed's own queries. No sleeping anywhere: time is the p_now argument.

Why one module: its tests share the queue fixtures (`conn`, `queue_db`, `adopted_db`) and the injected-clock
helpers, and read as one specification of the queue's state machine, from enqueue through claim, verdicts and
retries to adoption.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg.sql
import psycopg.types.json
import pytest
from psycopg.rows import dict_row

from components.sql.catalogue import functions
from components.sql.params import DEFAULT_PARAMS
from components.sql.templates import CRON_JOBS, QUEUE_FILES
from tests.conftest import Database, apply_sql
from tests.queue_support import (
    PROCESS,
    RETRY,
    T0,
    at,
    claim,
    complete,
    enqueue,
    fail,
    row_of,
    scalar,
)


@pytest.fixture
def conn(shared_queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(shared_queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def fresh_conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """For tests that create tables of their own."""
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def backoff(conn: psycopg.Connection[Any], attempt: int, jitter: float = 0.5) -> timedelta:
    return scalar(conn, "select bubble_sync.backoff(%s, %s)", (attempt, jitter))


# -- the table -----------------------------------------------------------------------------------------------


def test_fresh_table_has_the_seeds_columns_and_ours(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "select column_name, data_type, is_nullable from information_schema.columns"
        " where table_schema = 'public' and table_name = 'sync_queue' order by ordinal_position"
    ).fetchall()
    assert [(r["column_name"], r["data_type"], r["is_nullable"]) for r in rows] == [
        ("id", "bigint", "NO"),
        ("table_name", "text", "NO"),
        ("record_id", "text", "NO"),
        ("operation", "text", "NO"),
        ("payload", "jsonb", "NO"),
        ("status", "text", "NO"),
        ("retry_count", "integer", "NO"),
        ("max_retries", "integer", "NO"),
        ("next_retry_at", "timestamp with time zone", "YES"),
        ("failing_since", "timestamp with time zone", "YES"),
        ("error_message", "text", "YES"),
        ("bubble_id", "text", "YES"),
        ("lease_token", "uuid", "YES"),
        ("lease_expires_at", "timestamp with time zone", "YES"),
        ("created_at", "timestamp with time zone", "NO"),
        ("updated_at", "timestamp with time zone", "NO"),
        ("completed_at", "timestamp with time zone", "YES"),
        ("queue_order", "bigint", "YES"),
    ]


def test_fresh_table_refuses_states_and_operations_it_does_not_know(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, status)"
            " values ('t', '1', 'INSERT', 'skipped')"
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation) values ('t','1','UPSERT')"
        )
    with pytest.raises(psycopg.errors.CheckViolation):  # processing without a lease
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, status)"
            " values ('t', '1', 'INSERT', 'processing')"
        )


def test_applying_everything_twice_changes_nothing(queue_db: Database) -> None:
    with queue_db.connect() as c:
        c.execute("select bubble_sync.enqueue('profiles', '1', 'INSERT', '{}')")
        before = c.execute("select * from public.sync_queue").fetchall()
        for relative_path in QUEUE_FILES:
            apply_sql(c, relative_path)
        assert c.execute("select * from public.sync_queue").fetchall() == before


def test_stack_config_reaches_the_sql(db: Database) -> None:
    params = {
        "default_max_retries": 5,
        "lease_seconds": 90,
        "backoff_base_seconds": 10,
        "backoff_cap_seconds": 60,
    }
    with psycopg.connect(db.dsn, row_factory=dict_row) as c:
        for relative_path in QUEUE_FILES:
            apply_sql(c, relative_path, params)
        c.commit()
        c.autocommit = True
        assert enqueue(c, "u1")["max_retries"] == 5
        c.execute(
            "insert into public.sync_queue (table_name, record_id, operation) values ('t', 'u2', 'INSERT')"
        )
        assert row_of(c, "u2")["max_retries"] == 5  # the column default too
        (row,) = c.execute("select * from bubble_sync.claim('process_queue_data_api', 1, p_now => %s)", (T0,))
        assert row["lease_expires_at"] == at(90)
        assert [backoff(c, n) for n in (1, 2, 3, 4)] == [timedelta(seconds=s) for s in (10, 20, 40, 60)]


# -- enqueue -------------------------------------------------------------------------------------------------


def test_enqueue_creates_a_pending_row_with_the_default_max_retries(conn: psycopg.Connection[Any]) -> None:
    row = enqueue(conn, "u1", payload={"email": "a@example.com"})
    assert row["status"] == "pending"
    assert (row["table_name"], row["record_id"], row["operation"]) == ("profiles", "u1", "INSERT")
    assert row["payload"] == {"email": "a@example.com"}
    assert (row["retry_count"], row["max_retries"]) == (0, DEFAULT_PARAMS["default_max_retries"])
    assert row["created_at"] == row["updated_at"] == T0
    assert enqueue(conn, "u2", max_retries=7)["max_retries"] == 7


def test_enqueue_folds_changes_into_the_waiting_row(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1", payload={"v": 1}, now=at(0))
    enqueue(conn, "u1", operation="UPDATE", payload={"v": 2}, now=at(5))
    row = row_of(conn, "u1")
    # one Bubble call will do: the newest data, still a create, and the row keeps its place in line
    assert (row["operation"], row["payload"], row["created_at"], row["updated_at"]) == (
        "INSERT",
        {"v": 2},
        at(0),
        at(5),
    )


def test_enqueue_after_a_claim_queues_the_change_separately(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1", payload={"v": 1})
    (claimed,) = claim(conn)
    newer = enqueue(conn, "u1", operation="UPDATE", payload={"v": 2}, now=at(1))
    statuses = conn.execute(
        "select status, operation, payload from public.sync_queue order by created_at"
    ).fetchall()
    assert statuses == [
        {"status": "processing", "operation": "INSERT", "payload": {"v": 1}},
        {"status": "pending", "operation": "UPDATE", "payload": {"v": 2}},
    ]
    assert newer["lease_token"] is None and claimed["lease_token"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("profiles", "1", "UPSERT"), "operation must be INSERT, UPDATE or DELETE"),
        (("profiles", None, "INSERT"), "record id are required"),
        (("", "1", "INSERT"), "record id are required"),
    ],
)
def test_enqueue_rejects_what_it_cannot_sync(
    conn: psycopg.Connection[Any], args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute("select bubble_sync.enqueue(%s, %s, %s, '{}')", args)


# -- claim, complete -----------------------------------------------------------------------------------------


def test_lifecycle_enqueue_claim_complete(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, lease=60, now=at(1))
    assert row["status"] == "processing" and row["lease_token"] is not None
    assert row["lease_expires_at"] == at(61)
    assert claim(conn, now=at(2)) == []  # leased rows are invisible to other claims

    assert complete(conn, row["lease_token"], bubble_id="1700000000000x1", now=at(3)) is True
    done = row_of(conn, "u1")
    assert (done["status"], done["bubble_id"], done["completed_at"]) == (
        "completed",
        "1700000000000x1",
        at(3),
    )
    assert done["lease_token"] is None and done["lease_expires_at"] is None
    assert complete(conn, row["lease_token"], now=at(4)) is False  # once only
    assert claim(conn, now=at(5)) == []


def test_claim_takes_oldest_due_pending_rows_up_to_the_limit(conn: psycopg.Connection[Any]) -> None:
    for i in range(5):
        enqueue(conn, f"u{i}", now=at(10 - i))  # u4 is the oldest
    claimed = claim(conn, limit=3, now=at(20))
    assert [r["record_id"] for r in claimed] == ["u4", "u3", "u2"]
    assert len({r["lease_token"] for r in claimed}) == 3  # one token per row
    assert [r["record_id"] for r in claim(conn, limit=3, now=at(20))] == ["u1", "u0"]


def test_an_update_waits_while_its_records_create_is_processing(conn: psycopg.Connection[Any]) -> None:
    """Runs work in parallel: another run must not send the update before the create stored the record."""
    enqueue(conn, "u1", now=at(0))
    (create,) = claim(conn, now=at(1))
    enqueue(conn, "u1", operation="UPDATE", payload={"v": 2}, now=at(2))
    enqueue(conn, "u2", now=at(3))
    assert [r["record_id"] for r in claim(conn, now=at(4))] == ["u2"]  # u1's update waits
    complete(conn, create["lease_token"], bubble_id="1x1", now=at(5))
    (update,) = claim(conn, now=at(6))
    assert (update["record_id"], update["operation"]) == ("u1", "UPDATE")


def test_an_update_waits_for_its_records_create_to_be_retried(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1", now=at(0))
    (create,) = claim(conn, now=at(1))
    fail(conn, create["lease_token"], now=at(2))  # Bubble answered 503: the create retries later
    enqueue(conn, "u1", operation="UPDATE", payload={"v": 2}, now=at(3))
    assert claim(conn, now=at(3600)) == []  # the update would not find the record yet
    (retried,) = claim(conn, RETRY, now=at(3600))
    assert retried["operation"] == "INSERT"
    complete(conn, retried["lease_token"], bubble_id="1x1", now=at(3601))
    assert [r["operation"] for r in claim(conn, now=at(3602))] == ["UPDATE"]


def test_a_create_failed_for_good_holds_nothing_back(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1", now=at(0))
    (create,) = claim(conn, now=at(1))
    assert fail(conn, create["lease_token"], "HTTP 400", kind="permanent", now=at(2)) == "failed_for_good"
    enqueue(conn, "u1", operation="UPDATE", payload={"v": 2}, now=at(3))
    assert [r["operation"] for r in claim(conn, now=at(4))] == ["UPDATE"]  # and says the record is missing


def _insert_rows(conn: psycopg.Connection[Any], rows: list[tuple[str, str, datetime]]) -> None:
    """Rows written straight into the queue, as an app queueing its own changes does (the seed's pattern)."""
    for record_id, operation, created_at in rows:
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, payload, created_at)"
            " values ('profiles', %s, %s, '{}', %s)",
            (record_id, operation, created_at),
        )


def _apply_in_turn(conn: psycopg.Connection[Any], *, start: float) -> dict[str, list[str]]:
    """Claims, as parallel runs would, until nothing is due, completing every row claimed; per record, the
    operations in the order they were applied."""
    applied: dict[str, list[str]] = {}
    for step in range(10):
        rows = claim(conn, limit=50, now=at(start + step))
        if not rows:
            break
        records = [r["record_id"] for r in rows]
        assert len(records) == len(set(records)), f"two rows of one record handed out together: {records}"
        for r in rows:
            applied.setdefault(r["record_id"], []).append(r["operation"])
            complete(conn, r["lease_token"], bubble_id="b1", now=at(start + step))
    return applied


def test_a_records_rows_queued_in_one_transaction_are_applied_in_the_order_queued(
    conn: psycopg.Connection[Any],
) -> None:
    """now() is the transaction's start: every row of the transaction gets the same created_at. Without an
    order of their own, claim saw none of them as older and handed all four out at once."""
    with conn.transaction():
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, payload) values"
            " ('profiles', 'tx1', 'INSERT', '{}'), ('profiles', 'tx1', 'UPDATE', '{\"v\": 1}'),"
            " ('profiles', 'tx1', 'UPDATE', '{\"v\": 2}'), ('profiles', 'tx1', 'UPDATE', '{\"v\": 3}')"
        )
    assert (
        scalar(conn, "select count(distinct created_at) from public.sync_queue where record_id = 'tx1'") == 1
    )
    # (rows written with now() are far newer than the injected clock: claim at a time after them)
    start = (datetime.now(UTC) - T0).total_seconds() + 60
    assert _apply_in_turn(conn, start=start)["tx1"] == ["INSERT", "UPDATE", "UPDATE", "UPDATE"]
    payloads = conn.execute(
        "select payload from public.sync_queue where record_id = 'tx1' order by completed_at, queue_order"
    ).fetchall()
    assert [p["payload"].get("v") for p in payloads] == [None, 1, 2, 3]


def test_a_records_rows_with_tied_or_reversed_created_at_follow_the_queue_order(
    conn: psycopg.Connection[Any],
) -> None:
    """created_at is whatever the writer gave: a tie, or a create stamped later than the update behind it."""
    _insert_rows(conn, [("tie", "INSERT", at(0)), ("tie", "UPDATE", at(0))])
    _insert_rows(conn, [("rev", "INSERT", at(5)), ("rev", "UPDATE", at(1))])
    applied = _apply_in_turn(conn, start=10)
    assert (applied["tie"], applied["rev"]) == (["INSERT", "UPDATE"], ["INSERT", "UPDATE"])


def test_a_folded_change_keeps_its_place_in_the_queue_order(conn: psycopg.Connection[Any]) -> None:
    first = enqueue(conn, "f1", now=at(0))
    enqueue(conn, "f2", now=at(1))
    folded = enqueue(conn, "f1", operation="UPDATE", payload={"v": 2}, now=at(2))
    assert folded["queue_order"] == first["queue_order"]
    assert folded["operation"] == "INSERT"


def test_process_claim_leaves_failed_rows_to_the_retry_action(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn)
    fail(conn, row["lease_token"], now=at(1))
    assert claim(conn, PROCESS, now=at(3600)) == []
    assert [r["record_id"] for r in claim(conn, RETRY, now=at(3600))] == ["u1"]


@pytest.mark.parametrize(
    ("action", "limit", "lease", "message"),
    [
        ("process", 10, 60, "unknown action"),
        (PROCESS, 0, 60, "p_limit must be between 1 and 1000"),
        (PROCESS, 1001, 60, "p_limit must be between 1 and 1000"),
        (RETRY, 10, 0, "p_lease_seconds must be positive"),
    ],
)
def test_claim_rejects_bad_arguments(
    conn: psycopg.Connection[Any], action: str, limit: int, lease: int, message: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        claim(conn, action, limit=limit, lease=lease)


# -- leases: expiry, reclaim, late workers -------------------------------------------------------------------


def test_expired_lease_is_reclaimed_and_counts_as_an_attempt(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (first,) = claim(conn, lease=60, now=at(0))
    assert claim(conn, now=at(59)) == []  # still leased
    (second,) = claim(conn, lease=60, now=at(61))  # expired: taken back, then claimed again
    assert second["lease_token"] != first["lease_token"]
    assert second["retry_count"] == 1
    assert "lease expired" in second["error_message"]


def test_reclaim_alone_puts_expired_rows_back_to_pending(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    enqueue(conn, "u2", now=at(1))
    claim(conn, lease=60, now=at(2))
    assert scalar(conn, "select bubble_sync.reclaim(%s)", (at(61),)) == 0
    assert scalar(conn, "select bubble_sync.reclaim(%s)", (at(62),)) == 2
    rows = conn.execute("select status, retry_count, lease_token from public.sync_queue").fetchall()
    assert rows == [{"status": "pending", "retry_count": 1, "lease_token": None}] * 2


def test_a_row_that_kills_its_worker_every_time_ends_failed_for_good(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "poison", max_retries=3)
    now = 0
    for attempt in range(3):
        rows = claim(conn, lease=60, now=at(now))
        assert [r["retry_count"] for r in rows] == [attempt]
        now += 61  # the worker never answers
    assert claim(conn, now=at(now)) == []
    assert claim(conn, RETRY, now=at(now + 86400)) == []
    dead = row_of(conn, "poison")
    assert (dead["status"], dead["retry_count"], dead["next_retry_at"]) == ("failed", 3, None)
    assert dead["error_message"].startswith("lease expired")


def test_late_worker_cannot_complete_or_fail_a_reclaimed_row(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (late,) = claim(conn, lease=60, now=at(0))
    (current,) = claim(conn, lease=60, now=at(61))  # worker A was too slow; B has it now
    before = row_of(conn, "u1")

    assert complete(conn, late["lease_token"], bubble_id="from-A", now=at(62)) is False
    assert fail(conn, late["lease_token"], "from A", now=at(62)) is None
    assert fail(conn, late["lease_token"], "from A", kind="permanent", now=at(62)) is None
    assert row_of(conn, "u1") == before  # nothing changed

    assert complete(conn, current["lease_token"], bubble_id="from-B", now=at(63)) is True
    assert row_of(conn, "u1")["bubble_id"] == "from-B"


def test_slow_worker_is_believed_until_someone_takes_the_row_back(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, lease=60, now=at(0))
    # past the expiry, but no claim or reclaim has happened: the token is still the row's lease
    assert complete(conn, row["lease_token"], now=at(90)) is True


def test_unknown_token_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    claim(conn)
    assert complete(conn, "00000000-0000-0000-0000-000000000000") is False
    assert fail(conn, None) is None


# -- two connections -----------------------------------------------------------------------------------------


def test_two_connections_never_claim_the_same_row(
    shared_queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    for i in range(5):
        enqueue(conn, f"u{i}", now=at(i))
    with (
        psycopg.connect(shared_queue_db.dsn, row_factory=dict_row) as a,
        psycopg.connect(shared_queue_db.dsn, autocommit=True) as b,
    ):
        claimed_by_a = claim(a, limit=3, now=at(10))  # transaction still open: rows locked, not yet committed
        claimed_by_b = claim(b, limit=10, now=at(10))  # skips the locked rows instead of waiting for them
        a.commit()
    ids_a = {r["record_id"] for r in claimed_by_a}
    ids_b = {r["record_id"] for r in claimed_by_b}
    assert ids_a == {"u0", "u1", "u2"} and ids_b == {"u3", "u4"}


def test_a_rolled_back_claim_is_claimable_again(
    shared_queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    for i in range(3):
        enqueue(conn, f"u{i}", now=at(i))
    with psycopg.connect(shared_queue_db.dsn, row_factory=dict_row) as a:
        assert len(claim(a, limit=2, now=at(10))) == 2
        assert [r["record_id"] for r in claim(conn, now=at(10))] == ["u2"]
        a.rollback()  # the worker's transaction died
    again = claim(conn, now=at(11))
    assert [r["record_id"] for r in again] == ["u0", "u1"]
    assert [r["retry_count"] for r in again] == [0, 0]  # a claim that never happened cost nothing


def test_concurrent_workers_split_the_queue_without_overlap(
    shared_queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(
        "insert into public.sync_queue (table_name, record_id, operation)"
        " select 'profiles', g::text, 'INSERT' from generate_series(1, 200) g"
    )
    results: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(index: int) -> None:
        try:
            with psycopg.connect(shared_queue_db.dsn, autocommit=True) as c:
                start.wait()
                while rows := c.execute(
                    "select record_id from bubble_sync.claim('process_queue_data_api', 3)"
                ).fetchall():
                    results[index].extend(r[0] for r in rows)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    everything = [record for result in results for record in result]
    assert len(everything) == 200 and len(set(everything)) == 200


# -- failing -------------------------------------------------------------------------------------------------


def test_backoff_schedule_doubles_from_the_base_up_to_the_cap(conn: psycopg.Connection[Any]) -> None:
    nominal = [backoff(conn, n).total_seconds() for n in range(1, 10)]
    assert nominal == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff(conn, 0) == backoff(conn, 1) == timedelta(seconds=30)  # attempt numbers start at 1
    assert backoff(conn, 10_000) == timedelta(hours=1)  # no overflow far out


def test_backoff_jitter_spreads_75_to_125_percent(conn: psycopg.Connection[Any]) -> None:
    assert backoff(conn, 2, jitter=0.0) == timedelta(seconds=45)
    assert backoff(conn, 2, jitter=1.0) == timedelta(seconds=75)
    assert backoff(conn, 9, jitter=1.0) == timedelta(minutes=75)  # the cap is on the nominal delay
    assert backoff(conn, 2, jitter=7.0) == timedelta(seconds=75)  # clamped into [0, 1]


def test_retryable_failure_waits_then_the_retry_action_takes_it_without_using_an_attempt(
    conn: psycopg.Connection[Any],
) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    assert fail(conn, row["lease_token"], "HTTP 503: upstream", jitter=0.0, now=at(10)) == "retrying"
    failed = row_of(conn, "u1")
    assert (failed["status"], failed["retry_count"], failed["error_message"]) == (
        "failed",
        0,  # a transient failure is not the row's fault
        "HTTP 503: upstream",
    )
    assert failed["failing_since"] == at(10)
    assert failed["next_retry_at"] == at(10) + timedelta(seconds=22.5)  # the base wait, 30 s, at jitter 0
    assert failed["lease_token"] is None
    assert claim(conn, RETRY, now=at(32)) == []
    assert [r["record_id"] for r in claim(conn, RETRY, now=at(33))] == ["u1"]


def _fail_until(conn: psycopg.Connection[Any], *, outage_s: float) -> tuple[list[float], str | None]:
    """Bubble answers 503 for `outage_s` seconds from T0 and then works: the row is tried whenever the retry
    action may take it. Returns when it was tried and its final outcome (None: synced)."""
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    tries, now = [0.0], 0.0
    while True:
        if now >= outage_s:
            assert complete(conn, row["lease_token"], bubble_id="b1", now=at(now)) is True
            return tries, None
        outcome = fail(conn, row["lease_token"], "Bubble answered 503", now=at(now))
        if outcome != "retrying":
            return tries, outcome
        state = row_of(conn, "u1")
        assert (state["retry_count"], state["failing_since"]) == (0, T0)
        now = (state["next_retry_at"] - T0).total_seconds()
        claimed = claim(conn, RETRY, now=at(now))
        if not claimed:
            # past the horizon: claim gave the row up (bubble_sync.give_up) instead of handing it out
            return tries, "failed_for_good"
        (row,) = claimed
        tries.append(now)


def test_a_create_whose_outcome_is_unknown_is_not_retried_before_the_settle_window(
    conn: psycopg.Connection[Any],
) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    # the worker passes bubbleSettleSeconds: Bubble may still be storing the create
    assert fail(conn, row["lease_token"], "no answer", retry_after=300, now=at(1)) == "retrying"
    assert row_of(conn, "u1")["next_retry_at"] == at(301)  # not the 30 s wait
    (row,) = claim(conn, RETRY, now=at(301))
    # hours into an outage the growing wait (1 h) is the longer one
    assert fail(conn, row["lease_token"], "no answer", retry_after=300, now=at(7200)) == "retrying"
    assert row_of(conn, "u1")["next_retry_at"] == at(7200 + 3600)


@pytest.mark.parametrize("outage", [timedelta(minutes=5), timedelta(hours=1), timedelta(hours=23)])
def test_an_outage_shorter_than_the_horizon_loses_no_row(
    conn: psycopg.Connection[Any], outage: timedelta
) -> None:
    tries, outcome = _fail_until(conn, outage_s=outage.total_seconds())
    assert outcome is None and row_of(conn, "u1")["status"] == "completed"
    # the tries thin out: each wait about doubles the time failing (30 s to 1 h, jitter 75-125 %)
    waits = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert all(22.5 <= w <= 4500 for w in waits), waits
    assert len(tries) <= {300: 8, 3600: 12, 82800: 35}[int(outage.total_seconds())], len(tries)
    assert row_of(conn, "u1")["failing_since"] == T0  # history: when the trouble started


def test_an_outage_past_the_horizon_fails_the_row_for_good_saying_why(conn: psycopg.Connection[Any]) -> None:
    tries, outcome = _fail_until(conn, outage_s=48 * 3600)
    assert outcome == "failed_for_good"
    assert tries[-1] < 24 * 3600  # the last try was within the horizon; the first claim past it gave up
    dead = row_of(conn, "u1")
    assert timedelta(hours=24) <= dead["updated_at"] - T0 < timedelta(hours=26)  # 1 h waits by then, +25 %
    assert (dead["status"], dead["next_retry_at"]) == ("failed", None)
    assert dead["retry_count"] >= dead["max_retries"]  # the seed's retry condition never takes it again
    assert dead["error_message"].startswith("gave up: failing since 2025-01-06 09:00:00")
    assert "past the retry horizon (1 day); last error: Bubble answered 503" in dead["error_message"]
    assert claim(conn, RETRY, now=at(60 * 86400)) == []


def test_expired_leases_still_count_against_max_retries(conn: psycopg.Connection[Any]) -> None:
    """A row that kills its worker every time (no verdict at all) must not loop forever."""
    enqueue(conn, "u1", max_retries=2)
    now = 0.0
    for _ in range(2):
        assert len(claim(conn, lease=60, now=at(now))) == 1
        now += 61  # the worker died; the next claim takes the row back
    assert claim(conn, now=at(now)) == []
    dead = row_of(conn, "u1")
    assert (dead["status"], dead["retry_count"]) == ("failed", 2)
    assert dead["error_message"].startswith("lease expired at")


def test_a_row_without_retries_left_fails_for_good_on_a_transient_failure(
    conn: psycopg.Connection[Any],
) -> None:
    enqueue(conn, "u1", max_retries=0)  # the seed's retry condition would never take it again
    (row,) = claim(conn, now=at(0))
    assert fail(conn, row["lease_token"], "Bubble answered 503", now=at(1)) == "failed_for_good"
    assert row_of(conn, "u1")["next_retry_at"] is None


def test_a_4xx_fails_for_good_at_once(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1", max_retries=5)
    (row,) = claim(conn)
    outcome = fail(conn, row["lease_token"], "HTTP 400: invalid field email", kind="permanent", now=at(1))
    assert outcome == "failed_for_good"
    dead = row_of(conn, "u1")
    assert (dead["status"], dead["retry_count"], dead["max_retries"], dead["next_retry_at"]) == (
        "failed",
        5,
        5,
        None,
    )
    assert claim(conn, RETRY, now=at(86400)) == []
    seed_retry_condition = (
        "select count(*) from sync_queue where status = 'failed' and retry_count < max_retries"
        " and (next_retry_at is null or next_retry_at <= now())"
    )
    assert scalar(conn, seed_retry_condition) == 0


def test_429_waits_for_retry_after_without_using_an_attempt(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    message = "rate limited: Bubble answered 429"
    assert fail(conn, row["lease_token"], message, kind="deferred", retry_after=120, now=at(1)) == "deferred"
    waiting = row_of(conn, "u1")
    assert (waiting["status"], waiting["retry_count"], waiting["next_retry_at"]) == ("pending", 0, at(121))
    assert waiting["error_message"] == message  # as the worker said it: the cause is the worker's to name
    assert claim(conn, now=at(120)) == []  # Retry-After honoured
    (again,) = claim(conn, now=at(121))
    # throttled again and again: never runs out of attempts
    for i in range(10):
        assert fail(conn, again["lease_token"], message, kind="deferred", retry_after=0, now=at(122 + i))
        (again,) = claim(conn, now=at(122 + i))
    assert again["retry_count"] == 0


def test_429_without_retry_after_waits_the_backoff(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    fail(conn, row["lease_token"], "HTTP 429", kind="deferred", jitter=0.5, now=at(1))
    assert row_of(conn, "u1")["next_retry_at"] == at(31)


def test_the_earlier_name_of_deferred_is_still_accepted(conn: psycopg.Connection[Any]) -> None:
    """A worker deployed before the rename passes 'rate_limited' until its redeploy (the same `up`)."""
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    assert (
        fail(conn, row["lease_token"], "HTTP 429", kind="rate_limited", retry_after=5, now=at(1))
        == "deferred"
    )
    assert (row_of(conn, "u1")["status"], row_of(conn, "u1")["error_message"]) == ("pending", "HTTP 429")


# Rows in every state at T0 + 100 s: (record_id, status, retry_count, max_retries, next_retry_at offset).
_EVERY_STATE = [
    ("pending", "pending", 0, 3, None),
    ("pending-deferred-past", "pending", 0, 3, 50),
    ("pending-deferred-future", "pending", 0, 3, 500),
    ("failed-due", "failed", 1, 3, 50),
    ("failed-due-no-time", "failed", 2, 3, None),
    ("failed-not-yet", "failed", 1, 3, 500),
    ("failed-for-good", "failed", 3, 3, None),
    ("failed-over-budget", "failed", 5, 3, 50),
    ("completed", "completed", 0, 3, None),
]


def _insert_every_state(conn: psycopg.Connection[Any]) -> None:
    for i, (record_id, status, retries, max_retries, due) in enumerate(_EVERY_STATE):
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, status, retry_count,"
            " max_retries, next_retry_at, created_at) values ('profiles', %s, 'INSERT', %s, %s, %s, %s, %s)",
            (record_id, status, retries, max_retries, None if due is None else at(due), at(i)),
        )


@pytest.mark.parametrize("action", [PROCESS, RETRY])
def test_claim_takes_exactly_the_rows_is_due_names(conn: psycopg.Connection[Any], action: str) -> None:
    """claim narrows its scan with the partial index's own condition; is_due decides. The two must agree."""
    _insert_every_state(conn)
    due = conn.execute(
        "select q.record_id from public.sync_queue q"
        " where bubble_sync.is_due(%s, q.status, q.retry_count, q.max_retries, q.next_retry_at, %s)",
        (action, at(100)),
    ).fetchall()
    expected = {PROCESS: {"pending", "pending-deferred-past"}, RETRY: {"failed-due", "failed-due-no-time"}}
    assert {r["record_id"] for r in due} == expected[action]
    claimed = claim(conn, action, limit=100, now=at(100))
    assert {r["record_id"] for r in claimed} == expected[action]


@pytest.mark.parametrize(
    ("action", "index"), [(PROCESS, "sync_queue_pending_idx"), (RETRY, "sync_queue_retry_due_idx")]
)
def test_claims_condition_lets_the_planner_use_the_actions_partial_index(
    conn: psycopg.Connection[Any], action: str, index: str
) -> None:
    """is_due pins its search_path (Supabase's linter flags a function that does not), so the planner cannot
    see into it: the condition in front of it must be the index's own, or each claim reads the whole table."""
    source = _claim_source()
    call = source.index(f"bubble_sync.is_due('{action}'")
    where = source[source.rindex("where", 0, call) : source.index("order by", call)]
    order = source[source.index("order by", call) : source.index("limit", call)]
    query = psycopg.sql.SQL("explain select 1 from public.sync_queue q {} {}").format(
        psycopg.sql.SQL(
            where.replace("v_now", "clock_timestamp()").replace(
                "v_referring", "bubble_sync.tables_with_references()"
            )
        ),
        psycopg.sql.SQL(order),
    )
    with conn.transaction():
        conn.execute("set local enable_seqscan = off")
        plan = "\n".join(row["QUERY PLAN"] for row in conn.execute(query).fetchall())
    # the action's own index, or another partial index on the same condition (the planner picks by cost)
    assert "Seq Scan" not in plan and (index in plan or "sync_queue_pending_record_idx" in plan), plan
    if action == PROCESS:  # and its order: the claim reads the index in order, no sort of every pending row
        assert "Sort" not in plan, plan


def _claim_source() -> str:
    """claim's body as written in sql/functions/lease.sql."""
    return next(f for f in functions() if f.name == "claim").statement(DEFAULT_PARAMS)


def test_is_our_job_names_our_three_jobs(conn: psycopg.Connection[Any]) -> None:
    names = ["bubble-sync-processor", "bubble-sync-retry", "bubble_sync.purge", "bubble_syncXpurge", "other"]
    ours = [scalar(conn, "select bubble_sync.is_our_job(%s)", (name,)) for name in names]
    assert ours == [True, True, True, False, False]


def test_failure_kind_follows_the_design_rule(conn: psycopg.Connection[Any]) -> None:
    expected = {
        429: "deferred", 401: "deferred", 403: "deferred", 408: "retryable", None: "retryable",
        500: "retryable", 502: "retryable", 503: "retryable", 400: "permanent", 404: "permanent",
        422: "permanent",
    }  # fmt: skip
    actual = {status: scalar(conn, "select bubble_sync.failure_kind(%s)", (status,)) for status in expected}
    assert actual == expected


def test_fail_rejects_unknown_kinds(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown kind"):
        fail(conn, row["lease_token"], kind="fatal")


def test_fail_keeps_messages_short(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn)
    fail(conn, row["lease_token"], "x" * 10_000)
    assert len(row_of(conn, "u1")["error_message"]) == 2000


def test_report_verdicts_gives_many_verdicts_in_one_statement_as_complete_and_fail_would(
    conn: psycopg.Connection[Any],
) -> None:
    for record_id in ("done", "down", "bad", "wait", "lost"):
        enqueue(conn, record_id)
    tokens = {row["record_id"]: str(row["lease_token"]) for row in claim(conn)}
    verdicts = [
        {"lease_token": tokens["done"], "bubble_id": "1x1"},
        {"lease_token": tokens["down"], "error": "Bubble answered 503", "http_status": 503},
        {"lease_token": tokens["bad"], "error": "Bubble answered 400", "http_status": 400},
        {
            "lease_token": tokens["wait"],
            "error": "rate limited",
            "kind": "deferred",
            "retry_after_seconds": 7,
        },
        {
            "lease_token": "00000000-0000-0000-0000-000000000000",
            "bubble_id": "2x2",
        },  # not a lease anyone holds
    ]
    outcomes = conn.execute(
        "select verdict, outcome from bubble_sync.report_verdicts(%s, %s)",
        (psycopg.types.json.Jsonb(verdicts), T0),
    ).fetchall()
    assert [(r["verdict"], r["outcome"]) for r in outcomes] == [
        (1, "completed"), (2, "retrying"), (3, "failed_for_good"), (4, "deferred"), (5, None),
    ]  # fmt: skip
    assert (row_of(conn, "done")["status"], row_of(conn, "done")["bubble_id"]) == ("completed", "1x1")
    assert row_of(conn, "down")["failing_since"] == T0  # the database's failure_kind: 503 is transient
    assert row_of(conn, "wait")["next_retry_at"] == T0 + timedelta(seconds=7)
    assert row_of(conn, "lost")["status"] == "processing"  # untouched: its lease is still out


def test_retry_action_takes_only_due_failed_rows_under_budget(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """
        insert into public.sync_queue (table_name, record_id, operation, status, retry_count, max_retries,
                                       next_retry_at, lease_token, lease_expires_at, created_at)
        values ('t', 'due',          'INSERT', 'failed',     1, 3, %(past)s,   null, null, %(t0)s),
               ('t', 'no_time',      'INSERT', 'failed',     1, 3, null,       null, null, %(t0)s),
               ('t', 'not_yet',      'INSERT', 'failed',     1, 3, %(future)s, null, null, %(t0)s),
               ('t', 'out_of_tries', 'INSERT', 'failed',     3, 3, null,       null, null, %(t0)s),
               ('t', 'pending',      'INSERT', 'pending',    0, 3, null,       null, null, %(t0)s),
               ('t', 'processing',   'INSERT', 'processing', 1, 3, %(past)s,
                gen_random_uuid(), %(future)s, %(t0)s),
               ('t', 'completed',    'INSERT', 'completed',  1, 3, %(past)s,   null, null, %(t0)s)
        """,
        {"past": at(-1), "future": at(1), "t0": T0},
    )
    # the most overdue first (no next_retry_at at all, then the oldest): what a limit of one takes
    assert [r["record_id"] for r in claim(conn, RETRY, limit=1, now=T0)] == ["no_time"]
    assert [r["record_id"] for r in claim(conn, RETRY, now=T0)] == ["due"]


# -- adopting the user's table -------------------------------------------------------------------------------

# Shaped like the seed project's hand-made queue: uuid ids, its own status values and operations, nullable
# counters, an idempotency key, and a unique index on pending rows per record.
USERS_TABLE = """
create table public.sync_queue (
  id              uuid primary key default gen_random_uuid(),
  table_name      text not null,
  record_id       text not null,
  operation       text not null,
  payload         jsonb,
  status          text default 'pending' not null,
  error_message   text,
  error_details   jsonb,
  retry_count     integer default 0,
  max_retries     integer default 3,
  created_at      timestamptz default now(),
  processed_at    timestamptz,
  next_retry_at   timestamptz,
  bubble_response jsonb,
  idempotency_key text unique
);
create unique index idx_sync_queue_pending_unique on public.sync_queue (table_name, record_id)
  where status = 'pending';
alter table public.sync_queue enable row level security;
create policy "Authenticated users can read the queue" on public.sync_queue for select to authenticated
  using (true);
insert into public.sync_queue (table_name, record_id, operation, payload, status, error_message, retry_count,
                               created_at, processed_at, next_retry_at, idempotency_key)
values ('user',    'u-pending',  'SIGNUP_ATOMIC', '{"email": "p@example.com"}', 'pending', null, 0,
        '2025-01-01 10:00+00', null, null, 'user:u-pending:1'),
       ('user',    'u-failed',   'INSERT', '{"email": "f@example.com"}', 'failed', 'HTTP 500', 1,
        '2025-01-01 10:01+00', '2025-01-01 10:02+00', '2025-01-01 10:07+00', 'user:u-failed:1'),
       ('user',    'u-done',     'INSERT', '{"email": "d@example.com"}', 'completed', null, 0,
        '2025-01-01 10:02+00', '2025-01-01 10:03+00', null, 'user:u-done:1'),
       ('listing', 'l-skipped',  'DELETE', null, 'skipped', null, 0,
        '2025-01-01 10:03+00', null, null, 'listing:l-skipped:1');
"""
USERS_COLUMNS = (
    "id, table_name, record_id, operation, payload, status, error_message, error_details, retry_count,"
    " max_retries, created_at, processed_at, next_retry_at, bubble_response, idempotency_key"
)


@pytest.fixture
def adopted_db(db: Database) -> Database:
    with db.connect() as c:
        c.execute(USERS_TABLE)
    return db


def _apply_queue_layer(db: Database) -> None:
    with db.connect() as c:
        for relative_path in QUEUE_FILES:
            apply_sql(c, relative_path)


def test_adoption_keeps_every_row_and_adds_the_missing_columns(adopted_db: Database) -> None:
    with adopted_db.connect() as c:
        before = c.execute(f"select {USERS_COLUMNS} from public.sync_queue order by created_at").fetchall()
    _apply_queue_layer(adopted_db)
    _apply_queue_layer(adopted_db)  # and again: still nothing changes
    with psycopg.connect(adopted_db.dsn, autocommit=True, row_factory=dict_row) as c:
        after = (
            c.cursor(row_factory=psycopg.rows.tuple_row)
            .execute(f"select {USERS_COLUMNS} from public.sync_queue order by created_at")
            .fetchall()
        )
        assert after == before
        columns = [r["column_name"] for r in c.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'public' and table_name = 'sync_queue' order by ordinal_position"
        ).fetchall()]  # fmt: skip
        assert columns == USERS_COLUMNS.split(", ") + [
            "failing_since", "bubble_id", "lease_token", "lease_expires_at", "updated_at", "completed_at",
            "queue_order",
        ]  # fmt: skip
        added = c.execute(
            "select bubble_id, lease_token, lease_expires_at, updated_at is not null as has_updated_at,"
            " completed_at from public.sync_queue"
        ).fetchall()
        assert (
            added
            == [
                {
                    "bubble_id": None,
                    "lease_token": None,
                    "lease_expires_at": None,
                    "has_updated_at": True,
                    "completed_at": None,
                }
            ]
            * 4
        )
        rls = c.execute(
            "select relrowsecurity, (select count(*) from pg_policy where polrelid = oid) as policies"
            " from pg_class where oid = 'public.sync_queue'::regclass"
        ).fetchone()
        assert rls == {"relrowsecurity": True, "policies": 0}  # the user's policy is gone, the rows are not
        # the old writers keep working: their statuses and operations are not constrained now
        c.execute(
            "insert into public.sync_queue (table_name, record_id, operation, status)"
            " values ('listing', 'l2', 'DELETE', 'skipped')"
        )


def test_the_verbs_work_on_an_adopted_table(adopted_db: Database) -> None:
    _apply_queue_layer(adopted_db)
    with psycopg.connect(adopted_db.dsn, autocommit=True, row_factory=dict_row) as c:
        # a change to a record that already waits replaces its row (the user's unique index stays happy)
        enqueue(
            c, "u-pending", table="user", operation="UPDATE", payload={"email": "new@example.com"}, now=at(0)
        )
        waiting = row_of(c, "u-pending")
        assert waiting["operation"] == "SIGNUP_ATOMIC"  # still a create
        assert waiting["payload"] == {"email": "new@example.com"}
        # legacy rows are claimable like ours (a worker fails what it cannot handle, with a reason)
        (claimed,) = claim(c, now=at(1))
        assert claimed["record_id"] == "u-pending" and isinstance(claimed["id"], type(waiting["id"]))
        assert complete(c, claimed["lease_token"], bubble_id="b1", now=at(2)) is True
        (retry,) = claim(c, RETRY, now=at(3))
        assert retry["record_id"] == "u-failed"
        assert fail(c, retry["lease_token"], "HTTP 404", kind="permanent", now=at(4)) == "failed_for_good"
        assert row_of(c, "u-failed")["retry_count"] == 3


def test_rows_queued_before_the_queue_had_an_order_get_one_create_first(queue_db: Database) -> None:
    """A queue of an earlier release: its waiting rows are numbered by age, a record's create before its
    update where they tie, ahead of every new row; completed rows are left as they are."""
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute("alter table public.sync_queue drop column queue_order")
        _insert_rows(c, [("old", "UPDATE", at(0)), ("old", "INSERT", at(0)), ("done", "INSERT", at(-5))])
        c.execute("update public.sync_queue set status = 'completed' where record_id = 'done'")
    _apply_queue_layer(queue_db)
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        orders = c.execute(
            "select record_id, operation, queue_order from public.sync_queue order by queue_order nulls last"
        ).fetchall()
        assert [(r["record_id"], r["operation"]) for r in orders] == [
            ("old", "INSERT"), ("old", "UPDATE"), ("done", "INSERT"),
        ]  # fmt: skip
        assert orders[2]["queue_order"] is None
        new = enqueue(c, "new", now=at(1))
        assert new["queue_order"] > orders[1]["queue_order"]
        assert _apply_in_turn(c, start=10)["old"] == ["INSERT", "UPDATE"]


def test_enqueue_fold_keeps_an_insert_an_insert_on_the_adopted_table(adopted_db: Database) -> None:
    _apply_queue_layer(adopted_db)
    with psycopg.connect(adopted_db.dsn, autocommit=True, row_factory=dict_row) as c:
        enqueue(c, "n1", table="user", operation="INSERT", now=at(0))
        enqueue(c, "n1", table="user", operation="UPDATE", now=at(1))
        assert row_of(c, "n1")["operation"] == "INSERT"


@pytest.mark.parametrize(
    ("table_sql", "problem"),
    [
        ("create table public.sync_queue (id serial primary key, payload jsonb)", "status is missing"),
        ("create table public.sync_queue (status text, record_id integer, payload json)",
         "payload is json, expected jsonb; record_id is integer, expected text or character varying"),
    ],
)  # fmt: skip
def test_a_table_that_cannot_be_adopted_is_refused_before_anything_changes(
    db: Database, table_sql: str, problem: str
) -> None:
    with db.connect() as c:
        c.execute(table_sql)
        columns_before = c.execute(
            "select count(*) from information_schema.columns where table_name = 'sync_queue'"
        ).fetchone()
    with pytest.raises(psycopg.errors.RaiseException, match=problem), db.connect(autocommit=False) as c:
        apply_sql(c, "queue_schema.sql")  # one transaction, as the provider applies it
    with db.connect() as c:
        assert (
            c.execute(
                "select count(*) from information_schema.columns where table_name = 'sync_queue'"
            ).fetchone()
            == columns_before
        )


# -- the enqueue trigger for the user's signup table ---------------------------------------------------------

SIGNUPS = """
create table public.profiles (
  id                 uuid primary key default gen_random_uuid(),
  email              text not null,
  first_name         text,
  encrypted_password text,
  confirmation_token text,
  api_key            text,
  last_sign_in_at    timestamptz
);
"""


def _profiles(conn: psycopg.Connection[Any], trigger_args: str) -> None:
    conn.execute(SIGNUPS)
    conn.execute(
        "create trigger bubble_sync_enqueue after insert or update on public.profiles"
        f" for each row execute function bubble_sync.enqueue_change({trigger_args})"
    )


def test_trigger_without_allow_list_never_copies_credentials(fresh_conn: psycopg.Connection[Any]) -> None:
    conn = fresh_conn
    _profiles(conn, "'id'")
    (user_id,) = (
        conn.cursor(row_factory=psycopg.rows.tuple_row)
        .execute(
            "insert into public.profiles (email, first_name, encrypted_password, confirmation_token, api_key)"
            " values ('a@example.com', 'Ada', '$2a$10$hash', 'tok', 'k') returning id"
        )
        .fetchone()
    )
    row = row_of(conn, str(user_id))
    assert (row["table_name"], row["operation"], row["status"]) == ("profiles", "INSERT", "pending")
    assert set(row["payload"]) == {"id", "email", "first_name", "last_sign_in_at"}


def test_trigger_with_allow_list_copies_exactly_those_and_skips_irrelevant_updates(
    fresh_conn: psycopg.Connection[Any],
) -> None:
    conn = fresh_conn
    _profiles(conn, "'id', 'email', 'first_name'")
    (user_id,) = (
        conn.cursor(row_factory=psycopg.rows.tuple_row)
        .execute(
            "insert into public.profiles (email, first_name) values ('a@example.com', 'Ada') returning id"
        )
        .fetchone()
    )
    assert row_of(conn, str(user_id))["payload"] == {"email": "a@example.com", "first_name": "Ada"}
    (claimed,) = claim(conn, now=at(0))
    complete(conn, claimed["lease_token"], now=at(1))

    conn.execute(
        "update public.profiles set last_sign_in_at = now()"
    )  # not in the allow-list: nothing to sync
    assert scalar(conn, "select count(*) from public.sync_queue") == 1
    conn.execute("update public.profiles set first_name = 'Ada L.'")
    conn.execute("update public.profiles set first_name = 'Ada Lovelace'")  # folds into the waiting UPDATE
    waiting = conn.execute(
        "select operation, payload from public.sync_queue where status = 'pending'"
    ).fetchall()
    assert waiting == [
        {"operation": "UPDATE", "payload": {"email": "a@example.com", "first_name": "Ada Lovelace"}}
    ]


def test_trigger_names_tables_outside_public_with_their_schema(fresh_conn: psycopg.Connection[Any]) -> None:
    conn = fresh_conn
    conn.execute("create schema app; create table app.users (user_id bigint primary key, email text)")
    conn.execute(
        "create trigger q after insert on app.users for each row"
        " execute function bubble_sync.enqueue_change('user_id', 'email')"
    )
    conn.execute("insert into app.users values (42, 'x@example.com')")
    row = row_of(conn, "42")
    assert (row["table_name"], row["payload"]) == ("app.users", {"email": "x@example.com"})


@pytest.mark.parametrize(
    ("args", "message"),
    [("'uid'", "has no key column uid"), ("'id', 'email', 'phone'", "has no column phone")],
)
def test_trigger_misconfiguration_is_an_error_naming_the_column(
    fresh_conn: psycopg.Connection[Any], args: str, message: str
) -> None:
    conn = fresh_conn
    _profiles(conn, args)
    with pytest.raises(psycopg.errors.RaiseException, match=message):
        conn.execute("insert into public.profiles (email) values ('a@example.com')")


def test_trigger_refuses_to_run_before_the_row_is_written(fresh_conn: psycopg.Connection[Any]) -> None:
    conn = fresh_conn
    conn.execute(SIGNUPS)
    conn.execute(
        "create trigger early before insert on public.profiles"
        " for each row execute function bubble_sync.enqueue_change()"
    )
    with pytest.raises(psycopg.errors.RaiseException, match="attach it AFTER INSERT OR UPDATE"):
        conn.execute("insert into public.profiles (email) values ('a@example.com')")


# -- health, purge, and the seed's own queries ---------------------------------------------------------------


def test_health_counts_every_state(conn: psycopg.Connection[Any]) -> None:
    for age, name in enumerate(("p1", "p2", "r1", "dead", "done", "busy")):
        enqueue(conn, name, now=at(age))
    rows = {r["record_id"]: r for r in claim(conn, limit=4, now=at(200))}  # the oldest four
    fail(conn, rows["r1"]["lease_token"], "HTTP 502", now=at(201))
    fail(conn, rows["dead"]["lease_token"], "HTTP 400: bad email", kind="permanent", now=at(202))
    complete(conn, rows["p1"]["lease_token"], now=at(203))
    fail(conn, rows["p2"]["lease_token"], "HTTP 429", kind="deferred", retry_after=5, now=at(204))
    claim(conn, limit=2, lease=10, now=at(300))  # p2 (due again) and done
    (health,) = conn.execute("select * from bubble_sync.health(%s)", (at(400),)).fetchall()
    assert health == health | {
        "active_jobs": None,  # no pg_cron in this database
        "pending_items": 1,  # busy
        "processing_items": 2,
        "expired_leases": 2,
        "failed_items": 2,
        "retryable_items": 1,
        "permanently_failed_items": 1,
        "completed_today": 1,
        "oldest_pending_age": timedelta(seconds=395),
        "failed_job_runs_24h": None,
        "recent_job_failures": None,
    }
    assert [e["record_id"] for e in health["recent_errors"]] == ["dead", "r1"]
    assert health["recent_errors"][0]["error_message"] == "HTTP 400: bad email"


def test_seed_verification_query_runs_unchanged(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "a")
    enqueue(conn, "b", now=at(1))
    (row,) = claim(conn, limit=1, now=at(2))
    complete(conn, row["lease_token"], now=at(3))
    result = conn.execute("SELECT status, COUNT(*) FROM sync_queue GROUP BY status").fetchall()
    assert sorted((r["status"], r["count"]) for r in result) == [("completed", 1), ("pending", 1)]


# From the seed (PGCRON_SETUP_SUMMARY.md, "Daily Health Check"), character for character.
SEED_DAILY_HEALTH_CHECK = """
-- Run this daily to verify system health
SELECT
    (SELECT COUNT(*) FROM cron.job WHERE jobname LIKE 'bubble-sync%' AND active) as active_jobs,
    (SELECT COUNT(*) FROM sync_queue WHERE status = 'pending') as pending_items,
    (SELECT COUNT(*) FROM sync_queue WHERE status = 'failed') as failed_items,
    (SELECT COUNT(*) FROM sync_queue WHERE status = 'completed' AND created_at >= NOW() - INTERVAL '24 hours') as completed_today;
"""  # noqa: E501


def schedule_jobs(c: psycopg.Connection[Any]) -> None:
    for job in CRON_JOBS:
        c.execute(job.statement(DEFAULT_PARAMS))


@pytest.fixture
def cron_tx(cron_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The `postgres` database (the one with pg_cron) with our layer applied inside a transaction that is
    rolled back afterwards, so the shared database is left as it was."""
    with psycopg.connect(cron_db.dsn, row_factory=dict_row) as c:
        for relative_path in QUEUE_FILES:
            apply_sql(c, relative_path)
        schedule_jobs(c)
        try:
            yield c
        finally:
            c.rollback()


def test_seed_verification_queries_and_daily_health_check_on_the_cron_database(
    cron_tx: psycopg.Connection[Any],
) -> None:
    c = cron_tx
    c.execute("select vault.create_secret('https://abcdefghijklmnopqrst.supabase.co', 'supabase_url')")
    c.execute("select vault.create_secret('service-key', 'service_role_key')")
    enqueue(c, "a", now=datetime.now(UTC))
    (row,) = claim(c, now=datetime.now(UTC))
    complete(c, row["lease_token"], now=datetime.now(UTC))
    enqueue(c, "b", now=datetime.now(UTC))

    # The seed's verification queries, verbatim
    jobs = c.execute(
        """
        SELECT jobid, jobname, schedule, active
        FROM cron.job
        WHERE jobname LIKE 'bubble-sync%';
        """
    ).fetchall()
    assert sorted((j["jobname"], j["schedule"], j["active"]) for j in jobs) == [
        ("bubble-sync-processor", "* * * * *", True),
        ("bubble-sync-retry", "*/5 * * * *", True),
    ]
    secrets = c.execute(
        """
        SELECT name FROM vault.secrets
        WHERE name IN ('supabase_url', 'service_role_key');
        """
    ).fetchall()
    assert sorted(s["name"] for s in secrets) == ["service_role_key", "supabase_url"]
    statuses = c.execute("SELECT status, COUNT(*) FROM sync_queue GROUP BY status;").fetchall()
    assert sorted((s["status"], s["count"]) for s in statuses) == [("completed", 1), ("pending", 1)]
    functions = c.execute(
        """
        SELECT proname FROM pg_proc
        WHERE proname IN ('invoke_bubble_sync_processor', 'invoke_bubble_sync_retry');
        """
    ).fetchall()
    assert sorted(f["proname"] for f in functions) == [
        "invoke_bubble_sync_processor",
        "invoke_bubble_sync_retry",
    ]

    # The seed's daily health check, verbatim
    check = c.execute(SEED_DAILY_HEALTH_CHECK).fetchone()
    assert check == {"active_jobs": 2, "pending_items": 1, "failed_items": 0, "completed_today": 1}
    # ... and ours says the same
    health = c.execute("select * from bubble_sync.health()").fetchone()
    assert {k: health[k] for k in check} == check
    assert health["failed_job_runs_24h"] == 0 and health["recent_job_failures"] == []

    # the seed's manual test, unqualified
    request_id = c.execute("SELECT invoke_bubble_sync_processor();").fetchone()[
        "invoke_bubble_sync_processor"
    ]
    assert isinstance(request_id, int)


def test_cron_jobs_script_reactivates_a_deactivated_job(cron_tx: psycopg.Connection[Any]) -> None:
    c = cron_tx
    c.execute(
        "select cron.alter_job(jobid, active := false) from cron.job where jobname = 'bubble-sync-retry'"
    )
    schedule_jobs(c)
    active = c.execute(
        "select jobname, active from cron.job where jobname like 'bubble%' order by jobname"
    ).fetchall()
    assert active == [
        {"jobname": "bubble-sync-processor", "active": True},
        {"jobname": "bubble-sync-retry", "active": True},
        {"jobname": "bubble_sync.alerts", "active": True},
        {"jobname": "bubble_sync.purge", "active": True},
        {"jobname": "bubble_sync.verify", "active": True},
    ]


def test_purge_forgets_only_our_old_run_history_and_old_completed_rows(
    cron_tx: psycopg.Connection[Any],
) -> None:
    c = cron_tx
    c.execute("select cron.schedule('someone-elses-job', '0 0 * * *', 'select 1')")
    jobs = {r["jobname"]: r["jobid"] for r in c.execute("select jobname, jobid from cron.job").fetchall()}
    now = datetime(2025, 3, 1, tzinfo=UTC)
    for name in ("bubble-sync-processor", "bubble_sync.purge", "someone-elses-job"):
        for age_days, status in ((30, "succeeded"), (1, "failed")):
            c.execute(
                "insert into cron.job_run_details (jobid, runid, database, username, command, status,"
                " return_message, start_time, end_time)"
                " values (%s, nextval('cron.runid_seq'), current_database(), current_user, 'x', %s, '',"
                " %s, %s)",
                (jobs[name], status, now - timedelta(days=age_days), now - timedelta(days=age_days)),
            )
    c.execute("delete from public.sync_queue")
    for record, status, completed_days_ago in (
        ("old", "completed", 40),
        ("new", "completed", 2),
        ("bad", "failed", None),
    ):
        c.execute(
            "insert into public.sync_queue (table_name, record_id, operation, status, completed_at,"
            " created_at) values ('t', %s, 'INSERT', %s, %s, %s)",
            (
                record,
                status,
                completed_days_ago and now - timedelta(days=completed_days_ago),
                now - timedelta(days=50),
            ),
        )

    counts = c.execute(
        "select * from bubble_sync.purge(interval '7 days', interval '30 days', %s)", (now,)
    ).fetchone()
    assert counts == {"run_details_deleted": 2, "completed_rows_deleted": 1}
    left = c.execute(
        "select j.jobname, count(*) from cron.job_run_details d join cron.job j using (jobid)"
        " where j.jobname in ('bubble-sync-processor', 'bubble_sync.purge', 'someone-elses-job')"
        " group by 1 order by 1"
    ).fetchall()
    assert [(r["jobname"], r["count"]) for r in left] == [
        ("bubble-sync-processor", 1), ("bubble_sync.purge", 1), ("someone-elses-job", 2),
    ]  # fmt: skip
    remaining = c.execute("select record_id from public.sync_queue order by record_id").fetchall()
    assert [r["record_id"] for r in remaining] == ["bad", "new"]
    (health,) = c.execute("select * from bubble_sync.health(%s)", (now,)).fetchall()
    assert health["failed_job_runs_24h"] == 2  # the one-day-old failures of our two jobs
    assert {f["job"] for f in health["recent_job_failures"]} == {"bubble-sync-processor", "bubble_sync.purge"}


def test_purge_without_pg_cron_and_with_bad_horizons(conn: psycopg.Connection[Any]) -> None:
    counts = conn.execute("select * from bubble_sync.purge(interval '1 day', interval '1 day')").fetchone()
    assert counts == {"run_details_deleted": 0, "completed_rows_deleted": 0}
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="horizons"):
        conn.execute("select * from bubble_sync.purge(interval '-1 day', interval '1 day')")

"""Runs sharing a backlog: bubble_sync.begin_run and bubble_sync.fan_out (sql/functions/invoke.sql) count the
runs going and invoke only the missing ones through pg_net. Requests are only queued here
(net.http_request_queue); nothing is delivered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import Database
from tests.test_invoke_functions import add_secrets, insert_rows, requests

PROCESS = "process_queue_data_api"
RETRY = "retry_failed"


@pytest.fixture
def conn(shared_queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(shared_queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        add_secrets(c)
        yield c


def begin_run(conn: psycopg.Connection[Any], action: str = PROCESS, seconds: int = 70) -> str:
    row = conn.execute("select bubble_sync.begin_run(%s, %s) as run", (action, seconds)).fetchone()
    assert row is not None
    return str(row["run"])


def fan_out(
    conn: psycopg.Connection[Any],
    wanted: int,
    *,
    action: str = PROCESS,
    rows_per_run: int = 50,
    ending: str | None = None,
    now: str | None = None,
) -> int:
    row = conn.execute(
        "select bubble_sync.fan_out(%s, %s, %s, %s::uuid, 30, %s::timestamptz) as invoked",
        (action, wanted, rows_per_run, ending, now),
    ).fetchone()
    assert row is not None
    return int(row["invoked"])


def runs(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return conn.execute(
        "select action, started_at is not null as begun"
        " from bubble_sync.worker_runs order by started_at nulls last"
    ).fetchall()


def test_fan_out_invokes_the_runs_missing_and_counts_them_as_going(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 500)
    begin_run(conn)
    assert fan_out(conn, 4) == 3
    assert [r["body"] for r in requests(conn)] == [{"action": PROCESS}] * 3
    assert runs(conn) == [{"action": PROCESS, "begun": True}] + [{"action": PROCESS, "begun": False}] * 3
    # asked again (another run's first claim): the runs are going, nothing more is invoked
    assert fan_out(conn, 4) == 0
    assert len(requests(conn)) == 3


def test_an_invoked_run_takes_the_place_it_was_counted_in(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 500)
    begin_run(conn)
    fan_out(conn, 2)
    begin_run(conn)  # the run fan_out invoked arrives
    assert runs(conn) == [{"action": PROCESS, "begun": True}] * 2
    assert fan_out(conn, 2) == 0


def test_no_more_runs_than_batches_due(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 120)
    insert_rows(conn, 30, status="completed")
    assert fan_out(conn, 10) == 3  # 120 rows due, one run per 50
    assert len(requests(conn)) == 3


def test_nothing_due_invokes_nobody(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 5, status="completed")
    assert fan_out(conn, 5) == 0
    assert requests(conn) == []


def test_an_ending_run_hands_its_place_to_a_successor(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 100)
    run = begin_run(conn)
    assert fan_out(conn, 1, ending=run) == 1  # its row budget spent, rows still due: one successor
    assert runs(conn) == [{"action": PROCESS, "begun": False}]
    assert len(requests(conn)) == 1


def test_an_ending_run_that_wants_none_only_leaves(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 100)
    run = begin_run(conn)
    assert fan_out(conn, 0, ending=run) == 0
    assert runs(conn) == []
    assert requests(conn) == []


def test_runs_that_died_stop_counting_when_their_time_is_up(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 500)
    begin_run(conn, seconds=60)
    fan_out(conn, 3)  # two invoked, and never arriving
    assert fan_out(conn, 3) == 0
    later = conn.execute("select (clock_timestamp() + interval '61 seconds')::text as t").fetchone()
    assert later is not None
    assert fan_out(conn, 3, now=later["t"]) == 3  # the run and the two lost invocations expired
    assert len(requests(conn)) == 5


def test_actions_are_counted_apart(conn: psycopg.Connection[Any]) -> None:
    insert_rows(conn, 100)
    insert_rows(conn, 100, status="failed", retry_count=1, next_retry_at=None)
    begin_run(conn, PROCESS)
    assert fan_out(conn, 2, action=RETRY) == 2
    assert sorted(r["body"]["action"] for r in requests(conn)) == [RETRY, RETRY]


def test_two_runs_ending_at_once_invoke_one_successor(shared_queue_db: Database) -> None:
    """The advisory lock: the second fan_out waits for the first to commit, then counts its invocation."""
    with psycopg.connect(shared_queue_db.dsn, autocommit=True, row_factory=dict_row) as setup:
        add_secrets(setup)
        insert_rows(setup, 500)
        first_run, second_run = begin_run(setup), begin_run(setup)
    with (
        psycopg.connect(shared_queue_db.dsn, row_factory=dict_row) as first,
        psycopg.connect(shared_queue_db.dsn, autocommit=True, row_factory=dict_row) as second,
    ):
        assert fan_out(first, 1, ending=first_run) == 0  # the other run is still going; transaction open
        results: list[int] = []
        thread = threading.Thread(target=lambda: results.append(fan_out(second, 1, ending=second_run)))
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second fan_out waits for the first to commit"
        first.commit()
        thread.join(timeout=10)
        assert results == [1]
        assert len(requests(second)) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("bubble_sync.begin_run('sync_everything', 60)", "unknown action 'sync_everything'"),
        ("bubble_sync.begin_run('retry_failed', 0)", "p_seconds must be positive"),
        ("bubble_sync.fan_out('retry_failed', 101, 50)", "p_wanted must be between 0 and 100"),
        ("bubble_sync.fan_out('retry_failed', 2, 0)", "p_rows_per_run must be positive"),
    ],
)
def test_bad_arguments_are_refused_naming_them(
    conn: psycopg.Connection[Any], call: str, message: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute(f"select {call}")


def test_a_missing_secret_fails_the_fan_out_naming_it(conn: psycopg.Connection[Any]) -> None:
    conn.execute("delete from vault.secrets where name = 'service_role_key'")
    insert_rows(conn, 100)
    with pytest.raises(psycopg.errors.NoDataFound, match='"service_role_key" is missing'):
        fan_out(conn, 2)
    assert runs(conn) == []  # nothing counted as invoked

"""Bubble's gate in sql/functions/gate.sql against real PostgreSQL, with an injected clock: the pacing every
worker shares (take_requests), the circuit breaker (note_bubble_answer, rows_to_claim, claim, fail's
'unavailable' kind, health), and outages played through the queue's own functions the way the worker
(supabase/functions/bubble_sync/process.ts) uses them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from components.sql.params import DEFAULT_PARAMS
from tests.conftest import Database
from tests.queue_support import PROCESS, RETRY, T0, at, claim, complete, enqueue, fail, row_of, scalar

BREAKER_FAILURES = int(DEFAULT_PARAMS["breaker_failures"])  # type: ignore[call-overload]
PROBE_SECONDS = DEFAULT_PARAMS["probe_interval"].total_seconds()  # type: ignore[attr-defined]


@pytest.fixture
def conn(shared_queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(shared_queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def take(
    conn: psycopg.Connection[Any],
    wanted: int = 1,
    per_minute: int = 0,
    *,
    max_wait_ms: int | None = None,
    now: datetime = T0,
) -> dict[str, Any]:
    row = conn.execute(
        "select * from bubble_sync.take_requests(%s, %s, %s, %s)", (wanted, per_minute, max_wait_ms, now)
    ).fetchone()
    assert row is not None
    return dict(row)


def note(
    conn: psycopg.Connection[Any],
    answer: str,
    *,
    error: str | None = "Bubble answered 503",
    retry_after: int | None = None,
    now: datetime = T0,
) -> dict[str, Any]:
    row = conn.execute(
        "select * from bubble_sync.note_bubble_answer(%s, %s, %s, %s)", (answer, error, retry_after, now)
    ).fetchone()
    assert row is not None
    return dict(row)


def health(conn: psycopg.Connection[Any], now: datetime) -> dict[str, Any]:
    row = conn.execute("select * from bubble_sync.health(%s)", (now,)).fetchone()
    assert row is not None
    return dict(row)


def open_breaker(conn: psycopg.Connection[Any], *, at_seconds: float = 0) -> None:
    for i in range(BREAKER_FAILURES):
        note(conn, "unavailable", error=f"Bubble answered 503 ({i})", now=at(at_seconds))


# -- pacing --------------------------------------------------------------------------------------------------


def test_turns_are_spaced_at_the_limit_across_every_caller(conn: psycopg.Connection[Any]) -> None:
    first = take(conn, 3, 600)
    assert (first["granted"], first["first_in_ms"], first["spacing_ms"]) == (3, 0, 100)
    # another worker at the same moment gets the turns after those
    assert take(conn, 2, 600)["first_in_ms"] == 300
    # an idle gate banks nothing: ten seconds later the next turn is now, not a burst of saved ones
    later = take(conn, 1, 600, now=at(10))
    assert later["first_in_ms"] == 0


def test_three_workers_reserving_at_random_stay_at_the_limit(conn: psycopg.Connection[Any]) -> None:
    """Whatever order the workers ask in, no 60 s window holds more turns than the limit (60 a minute)."""
    rng = random.Random(5)
    turns: list[float] = []
    clock = 0.0
    while clock < 300:
        clock += rng.uniform(0, 2.5)
        grant = take(conn, rng.randint(1, 4), 60, now=at(clock))
        turns += [
            clock + grant["first_in_ms"] / 1000 + i * grant["spacing_ms"] / 1000
            for i in range(grant["granted"])
        ]
    turns.sort()
    assert len(turns) > 200
    assert all(b - a >= 0.999 for a, b in zip(turns, turns[1:], strict=False))
    busiest = max(sum(1 for t in turns if start <= t < start + 60) for start in turns)
    assert busiest <= 60, busiest


def test_only_turns_within_the_callers_wait_are_granted(conn: psycopg.Connection[Any]) -> None:
    take(conn, 10, 60)  # the next free turn is 10 s away
    assert (take(conn, 5, 60, max_wait_ms=2_000) | {}).get("granted") == 0
    partial = take(conn, 5, 60, max_wait_ms=12_500)
    assert (partial["granted"], partial["first_in_ms"]) == (3, 10_000)  # 10, 11 and 12 s
    unpaced = take(conn, 5, 0, max_wait_ms=0, now=at(100))
    assert (unpaced["granted"], unpaced["spacing_ms"]) == (5, 0)


def test_a_429_holds_back_every_worker_for_its_retry_after(conn: psycopg.Connection[Any]) -> None:
    state = note(conn, "rate_limited", error=None, retry_after=42, now=at(5))
    assert state["breaker"] == "closed"
    assert take(conn, 1, 600, now=at(5))["first_in_ms"] == 42_000


def test_take_requests_refuses_bad_arguments(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_wanted must be between 1 and 1000"):
        take(conn, 0)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_per_minute must be 0"):
        take(conn, 1, -5)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown answer 'maybe'"):
        note(conn, "maybe")


# -- the circuit breaker -------------------------------------------------------------------------------------


def test_the_breaker_opens_after_failures_in_a_row_and_health_says_since_when(
    conn: psycopg.Connection[Any],
) -> None:
    for i in range(BREAKER_FAILURES - 1):
        assert note(conn, "unavailable", now=at(i))["breaker"] == "closed"
    assert health(conn, at(60))["bubble_unavailable_since"] is None
    opened = note(conn, "unavailable", error="Bubble answered 502: bad gateway", now=at(20))
    assert (opened["breaker"], opened["unavailable_since"]) == ("open", T0)
    h = health(conn, at(60))
    assert (h["bubble_unavailable_since"], h["bubble_last_error"]) == (T0, "Bubble answered 502: bad gateway")


def test_an_answer_between_failures_starts_the_count_again(conn: psycopg.Connection[Any]) -> None:
    for _ in range(BREAKER_FAILURES - 1):
        note(conn, "unavailable")
    note(conn, "answered", error=None)
    for _ in range(BREAKER_FAILURES - 1):
        assert note(conn, "unavailable")["breaker"] == "closed"


def test_while_open_one_probe_per_interval_goes_out_and_claims_wait_for_it(
    conn: psycopg.Connection[Any],
) -> None:
    for i in range(5):
        enqueue(conn, f"u{i}")
    open_breaker(conn)
    refused = take(conn, 5, 600, now=at(1))
    assert (refused["granted"], refused["breaker"]) == (0, "open")
    assert refused["first_in_ms"] == (PROBE_SECONDS - 1) * 1000  # when the next probe is due
    assert claim(conn, now=at(1)) == []  # the rows stay pending, with no worker holding them
    assert claim(conn, RETRY, now=at(1)) == []

    due = at(PROBE_SECONDS)
    (probe_row,) = claim(conn, now=due)  # the probe's row
    probe = take(conn, 5, 600, now=due)
    assert (probe["granted"], probe["breaker"]) == (1, "probe")
    assert take(conn, 5, 600, now=due)["granted"] == 0  # one probe: a second worker is refused

    # the probe failed: the next one is an interval after its answer
    note(conn, "unavailable", now=due + timedelta(seconds=5))
    fail(conn, probe_row["lease_token"], "Bubble answered 503", now=due + timedelta(seconds=5))
    assert take(conn, 1, 600, now=due + timedelta(seconds=5 + PROBE_SECONDS - 1))["granted"] == 0
    assert take(conn, 1, 600, now=due + timedelta(seconds=5 + PROBE_SECONDS))["breaker"] == "probe"

    # the probe got an answer: closed, and everything flows again
    closed = note(conn, "answered", error=None, now=at(100))
    assert (closed["breaker"], closed["unavailable_since"], closed["failures_in_a_row"]) == (
        "closed",
        None,
        0,
    )
    # the row that failed waiting out the outage is due at once too, not in its backoff's time
    assert sorted(r["record_id"] for r in claim(conn, now=at(100))) == [f"u{i}" for i in range(5)]
    assert health(conn, at(100))["bubble_unavailable_since"] is None


def test_the_answer_that_closes_the_breaker_wakes_the_processor_for_the_backlog(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("select vault.create_secret('https://ref.supabase.co', 'supabase_url')")
    conn.execute("select vault.create_secret('sb_secret_test', 'service_role_key')")
    open_breaker(conn)
    assert scalar(conn, "select count(*) from net.http_request_queue") == 0
    note(conn, "answered", error=None, now=at(100))
    (request,) = conn.execute(
        "select url, convert_from(body, 'UTF8')::jsonb as body from net.http_request_queue"
    ).fetchall()
    assert (request["url"], request["body"]) == (
        "https://ref.supabase.co/functions/v1/bubble_sync",
        {"action": "process_queue_data_api"},
    )
    note(conn, "answered", error=None, now=at(101))  # closed already: no second wake
    assert scalar(conn, "select count(*) from net.http_request_queue") == 1


def test_rows_handed_back_to_wait_for_the_next_probe_are_due_once_another_probe_closes_it(
    conn: psycopg.Connection[Any],
) -> None:
    for record in ("held", "probe"):
        enqueue(conn, record)
    (held,) = claim(conn, limit=1, now=at(0))
    open_breaker(conn, at_seconds=1)
    # this worker's turn is refused: its row waits for the next probe ...
    fail(
        conn,
        held["lease_token"],
        "bubble unavailable: not sent",
        kind="unavailable",
        retry_after=30,
        now=at(2),
    )
    # ... which another worker's request, answered, makes unnecessary
    note(conn, "answered", error=None, now=at(3))
    assert sorted(r["record_id"] for r in claim(conn, now=at(3))) == ["held", "probe"]


def test_closing_the_breaker_without_the_vault_secrets_still_closes_it(conn: psycopg.Connection[Any]) -> None:
    open_breaker(conn)
    assert note(conn, "answered", error=None, now=at(100))["breaker"] == "closed"
    assert scalar(conn, "select count(*) from net.http_request_queue") == 0


def test_a_row_not_sent_while_open_goes_back_to_pending_without_an_attempt(
    conn: psycopg.Connection[Any],
) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    open_breaker(conn, at_seconds=1)  # another worker's failures open it while this one holds the row
    assert (
        fail(
            conn,
            row["lease_token"],
            "bubble unavailable: not sent",
            kind="unavailable",
            retry_after=30,
            now=at(2),
        )
        == "deferred"
    )
    state = row_of(conn, "u1")
    assert (state["status"], state["retry_count"], state["failing_since"]) == ("pending", 0, None)
    assert state["next_retry_at"] == at(32)  # the next probe, not a growing backoff


def test_a_row_failing_past_the_horizon_is_given_up_even_when_not_sent(conn: psycopg.Connection[Any]) -> None:
    enqueue(conn, "u1")
    (row,) = claim(conn, now=at(0))
    assert fail(conn, row["lease_token"], "Bubble answered 503", now=at(0)) == "retrying"
    # taken within the horizon, handed back after it
    (row,) = claim(conn, RETRY, lease=7200, now=at(23.5 * 3600))
    outcome = fail(
        conn,
        row["lease_token"],
        "bubble unavailable: not sent",
        kind="unavailable",
        retry_after=30,
        now=at(25 * 3600),
    )
    assert outcome == "failed_for_good"
    assert row_of(conn, "u1")["error_message"].startswith("gave up: failing since 2025-01-06 09:00:00")


def test_rows_failing_past_the_horizon_are_given_up_by_any_claim_while_nobody_tries_them(
    conn: psycopg.Connection[Any],
) -> None:
    for record in ("u1", "u2"):
        enqueue(conn, record)
    for row in claim(conn, now=at(0)):
        fail(conn, row["lease_token"], "Bubble answered 503", now=at(0))
    enqueue(conn, "fresh", now=at(20 * 3600))  # never sent: not failing, so never given up
    open_breaker(conn, at_seconds=60)
    note(conn, "unavailable", now=at(23 * 3600))  # the last probe failed: none due for a while
    assert claim(conn, RETRY, now=at(23 * 3600)) == []  # within the horizon: they wait
    assert row_of(conn, "u1")["status"] == "failed" and row_of(conn, "u1")["retry_count"] == 0
    assert (
        claim(conn, RETRY, now=at(24 * 3600 + 1)) == []
    )  # the breaker is closed to them; the horizon is not
    for record in ("u1", "u2"):
        dead = row_of(conn, record)
        assert dead["retry_count"] >= dead["max_retries"] and dead["next_retry_at"] is None
        assert dead["error_message"] == (
            "gave up: failing since 2025-01-06 09:00:00+00, past the retry horizon (1 day); "
            "last error: Bubble answered 503"
        )
    assert row_of(conn, "fresh")["status"] == "pending"


# -- outages, played through the queue's functions ----------------------------------------------------------


@dataclass
class Outage:
    """Bubble down from 0 for `down_seconds`; signups arrive every `signup_every` seconds until
    `signups_until`; the processor runs every minute (and on each signup: immediate dispatch), the retry job
    every 5 minutes. Each run does what process.ts does: claim, take a turn per request, send, report the
    answer, give the verdict; a refused turn hands the row back ('unavailable') and ends the run."""

    down_seconds: float
    signup_every: float = 30
    signups_until: float = 600
    requests_in_outage: int = 0
    requests: int = 0
    created: dict[str, int] = field(default_factory=dict)

    def bubble_answers(self, now: float) -> bool:
        self.requests += 1
        if now < self.down_seconds:
            self.requests_in_outage += 1
            return False
        return True


def _run(conn: psycopg.Connection[Any], sim: Outage, action: str, now: float) -> None:
    failures_seen = False
    while True:
        rows = claim(conn, action, limit=10, now=at(now))
        for row in rows:
            turn = take(conn, 1, 0, now=at(now))
            if turn["granted"] == 0:
                fail(
                    conn,
                    row["lease_token"],
                    "bubble unavailable: not sent",
                    kind="unavailable",
                    retry_after=turn["first_in_ms"] // 1000,
                    now=at(now),
                )
                continue
            if sim.bubble_answers(now):
                if failures_seen or turn["breaker"] == "probe" or turn["failures_in_a_row"]:
                    note(conn, "answered", error=None, now=at(now))
                    failures_seen = False
                sim.created[row["record_id"]] = sim.created.get(row["record_id"], 0) + 1
                complete(conn, row["lease_token"], bubble_id=f"b-{row['record_id']}", now=at(now))
            else:
                note(conn, "unavailable", now=at(now))
                failures_seen = True
                fail(conn, row["lease_token"], "Bubble answered 503", now=at(now))
        if len(rows) < 10:
            return


def _play(conn: psycopg.Connection[Any], sim: Outage, *, until: float) -> None:
    next_signup, signup = 0.0, 0
    for minute in range(int(until // 60) + 1):
        start = minute * 60.0
        while next_signup < start + 60 and next_signup <= sim.signups_until:
            enqueue(conn, f"u{signup}", now=at(next_signup))
            _run(conn, sim, PROCESS, next_signup)  # immediate dispatch
            signup, next_signup = signup + 1, next_signup + sim.signup_every
        _run(conn, sim, PROCESS, start)
        if minute % 5 == 0:
            _run(conn, sim, RETRY, start)


@pytest.mark.parametrize("down", [timedelta(minutes=5), timedelta(hours=1), timedelta(hours=23)])
def test_an_outage_sends_about_one_request_per_probe_interval_and_loses_nothing(
    conn: psycopg.Connection[Any], down: timedelta
) -> None:
    sim = Outage(down.total_seconds())
    _play(conn, sim, until=down.total_seconds() + 2 * 3600)
    statuses = conn.execute("select status, count(*) as n from public.sync_queue group by 1").fetchall()
    assert [(s["status"], s["n"]) for s in statuses] == [("completed", 21)]
    assert all(n == 1 for n in sim.created.values())  # no duplicates
    # The breaker opens after BREAKER_FAILURES failures; then at most one probe per interval (the minute
    # cron makes it one a minute here) instead of one request per row and retry.
    bound = BREAKER_FAILURES + down.total_seconds() / PROBE_SECONDS + 1
    assert sim.requests_in_outage <= bound, (sim.requests_in_outage, bound)


def test_an_outage_past_the_horizon_fails_the_probed_rows_for_good_with_the_reason(
    conn: psycopg.Connection[Any],
) -> None:
    sim = Outage(48 * 3600, signups_until=60)
    _play(conn, sim, until=26 * 3600)
    rows = conn.execute(
        "select status, retry_count, max_retries, error_message from public.sync_queue"
    ).fetchall()
    given_up = [r for r in rows if r["status"] == "failed" and r["retry_count"] >= r["max_retries"]]
    assert given_up, rows
    assert all("past the retry horizon (1 day)" in r["error_message"] for r in given_up)
    assert scalar(conn, "select count(*) from public.sync_queue where status = 'completed'") == 0

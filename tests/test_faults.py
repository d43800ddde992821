"""The fault suite: the whole pipeline (signup trigger → sync_queue → immediate dispatch → pg_net → the Deno
edge function → the Bubble double) on a stack this module owns (tests/fault_rig.py `FaultRig`), with one
part broken per test. Each test breaks something, then recovers — `process_queue_data_api` / `retry_failed`
POSTed with `"wait": true` until the queue is quiescent, time moved forward in SQL between rounds — and ends
with `assert_invariants`: zero rows lost, zero duplicate Bubble records, every row `completed` or failed for
good with its reason, nothing stuck in `processing`.

Why one module: its tests share one module-scoped `FaultRig`, a whole stack that is slow to start, and each
ends with the same `assert_invariants`.

The function runs with a 10 s lease and a 1 s Bubble timeout (BUBBLE_SYNC_LEASE_SECONDS,
BUBBLE_SYNC_HTTP_TIMEOUT_MS) so a dead worker's rows come back fast. Time moves forward only for what waits in
the database (backoffs, Retry-After, leases); what happens in real time at Bubble (a hung create finishing,
a killed worker's requests landing) is waited for before it, because in production the 30 s+ backoff and the
lease are longer than those.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from tests.e2e_support import (
    OPEN_ROWS_SQL,
    PROCESS,
    RETRY,
    Outcome,
    assert_invariants,
    creates_per_key,
    keys_for,
    move_time_forward,
    recover,
    sign_up,
    wait_for,
)
from tests.fault_rig import FaultRig, running_rig

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultRig]:
    with running_rig(tmp_path_factory.mktemp("faults")) as the_rig:
        yield the_rig


@pytest.fixture
def conn(rig: FaultRig) -> Iterator[Conn]:
    rig.reset()
    with rig.connect() as c:
        yield c


def runs_are_over(conn: Conn) -> bool:
    """No run is registered or holds a row, and pg_net has no request for the function still to send."""
    row = conn.execute(
        "select (select count(*) from bubble_sync.worker_runs)"
        "     + (select count(*) from public.sync_queue where status = 'processing')"
        "     + (select count(*) from net.http_request_queue) as n"
    ).fetchone()
    return int(row["n"]) == 0


def held(conn: Conn) -> int:
    """Rows a run holds right now (claimed, no verdict yet)."""
    return int(
        conn.execute("select count(*) as n from public.sync_queue where status = 'processing'").fetchone()[
            "n"
        ]
    )


def status_counts(conn: Conn) -> dict[str, int]:
    return {
        r["status"]: r["n"]
        for r in conn.execute("select status, count(*) as n from public.sync_queue group by 1")
    }


def check(rig: FaultRig, conn: Conn, ids: list[str]) -> Outcome:
    outcome = assert_invariants(conn, rig.records(), keys_for(ids))
    print(f"\n  {outcome}")
    return outcome


def hung_requests_answered(rig: FaultRig) -> bool:
    """Every request that hit a `hang` fault has been processed by the double (and logged)."""
    fired = sum(f["fired"] for f in rig.bubble.config()["faults"] if f["kind"] == "hang")
    return sum(1 for r in rig.bubble.requests() if r["fault"] == "hang") >= fired


# --- Bubble misbehaves --------------------------------------------------------------------------------------


def test_bubble_5xx_on_a_share_of_requests(rig: FaultRig, conn: Conn) -> None:
    rig.bubble.configure(seed=5, faults=[{"kind": "status", "status": 503, "probability": 0.3}])
    ids = sign_up(conn, 40)
    rounds = recover(conn, rig.post)
    answers = [r["status"] for r in rig.bubble.requests()]
    assert answers.count(503) >= 5, "the fault hardly fired"
    outcome = check(rig, conn, ids)
    # Transient failures use no attempt: every row ends synced, none in the dead letter.
    assert outcome.completed == len(ids), outcome
    print(f"  503 answers: {answers.count(503)} of {len(answers)}, recovered in {rounds} rounds")


def test_a_429_storm_with_retry_after(rig: FaultRig, conn: Conn) -> None:
    # 10 requests a second with a burst of 5: the first run gets 429s with Retry-After and defers the rest.
    rig.bubble.configure(rate_limit_per_minute=600, rate_limit_burst=5)
    ids = sign_up(conn, 40)
    first = rig.post(PROCESS)  # overlaps the dispatched run, which the insert woke
    wait_for(lambda: any(r["status"] == 429 for r in rig.bubble.requests()), f"a 429 ({first})", 10)
    deferred_sql = (
        "select retry_count, error_message, next_retry_at from public.sync_queue"
        " where status = 'pending' and error_message is not null"
    )
    wait_for(lambda: bool(conn.execute(deferred_sql).fetchall()), "rows deferred by the 429s", 10)
    deferred = conn.execute(deferred_sql).fetchall()
    # Deferred without using an attempt, until Bubble's Retry-After has passed.
    for row in deferred:
        assert row["retry_count"] == 0 and row["next_retry_at"] is not None, row
        assert row["error_message"].startswith("rate limited:"), row
    rounds = recover(conn, rig.post, max_rounds=40)
    answers = [r["status"] for r in rig.bubble.requests()]
    assert answers.count(429) >= 1
    check(rig, conn, ids)
    counts = conn.execute(
        "select max(retry_count) as m, count(*) filter (where status = 'completed') as c"
        " from public.sync_queue"
    ).fetchone()
    assert counts == {"m": 0, "c": len(ids)}, "a 429 used an attempt or a row did not complete"
    print(f"  429 answers: {answers.count(429)}, recovered in {rounds} rounds")


def test_responses_slower_than_the_timeout(rig: FaultRig, conn: Conn) -> None:
    # The creates are stored, but only after the function gave up on them (timeout 1 s).
    rig.bubble.configure(faults=[{"kind": "hang", "hang_seconds": 1.5, "method": "POST", "count": 6}])
    ids = sign_up(conn, 20)
    rounds = recover(
        conn,
        rig.post,
        between_rounds=lambda: wait_for(lambda: hung_requests_answered(rig), "the hung creates", 10),
    )
    assert sum(1 for r in rig.bubble.requests() if r["fault"] == "hang") == 6
    outcome = check(rig, conn, ids)
    assert outcome.completed == len(ids)
    sent = creates_per_key(rig.bubble.requests())
    assert set(sent.values()) == {1}, f"a timed-out create was sent again instead of found: {sent}"
    print(f"  recovered in {rounds} rounds")


def test_ambiguous_creates_stored_but_never_answered(rig: FaultRig, conn: Conn) -> None:
    # A data type of the app's own (not user) has no unique email to rescue a retry: only the key lookup can.
    with rig.syncing_to("signup"):
        rig.bubble.configure(
            seed=3, faults=[{"kind": "close_after_store", "method": "POST", "probability": 0.5}]
        )
        ids = sign_up(conn, 30, with_email=lambda i: i % 2 == 0)
        rounds = recover(conn, rig.post)
        dropped = [r for r in rig.bubble.requests() if not r["responded"]]
        assert len(dropped) >= 3, "the fault hardly fired"
        outcome = check(rig, conn, ids)
        assert outcome.completed == len(ids), outcome  # transient only: every row synced
        print(f"  connections closed after the store: {len(dropped)}, recovered in {rounds} rounds")


# --- the workers --------------------------------------------------------------------------------------------


def test_several_overlapping_invocations(rig: FaultRig, conn: Conn) -> None:
    rig.bubble.configure(latency_ms=20, latency_jitter_ms=20)
    ids = sign_up(conn, 60)  # wakes one run through pg_net; six more race it
    with ThreadPoolExecutor(max_workers=6) as pool:
        summaries = list(pool.map(lambda a: rig.post(a), [PROCESS] * 4 + [RETRY] * 2))
    assert sum(s["claimed"] for s in summaries) <= len(ids)
    assert all(s["lease_lost"] == 0 for s in summaries), summaries
    recover(conn, rig.post)
    sent = creates_per_key(rig.bubble.requests())
    assert len(sent) == len(ids) and set(sent.values()) == {1}, f"a row was sent twice: {sent}"
    outcome = check(rig, conn, ids)
    assert outcome.completed == len(ids)
    print(f"  claims per run: {[s['claimed'] for s in summaries]}")


def test_parallel_runs_share_a_backlog_and_keep_each_records_changes_in_order(
    rig: FaultRig, conn: Conn
) -> None:
    # Team's 35,000/min: the first run's full claim has the database invoke more runs (bubble_sync.fan_out);
    # the test POSTs nothing. Bubble takes 0.8 s to store a user and answers searches at once. While the
    # creates are in flight, their people rename themselves: the dispatch trigger wakes a run, which must not
    # send an update before its create stored the record (the update would find no record, and fail for
    # good).
    rig.kill_host(signal.SIGTERM)
    # The rig's 1 s timeout is a hair above the 0.8 s hang: on a loaded machine some creates outlived it and
    # waited out the 300 s settle window. Timeouts are not this test's subject; in-flight creates are.
    rig.start_host(BUBBLE_RATE_LIMIT_PER_MINUTE="35000", BUBBLE_SYNC_HTTP_TIMEOUT_MS="2000")
    try:
        rig.bubble.configure(
            latency_ms=10,
            latency_jitter_ms=10,
            faults=[{"kind": "hang", "hang_seconds": 0.8, "method": "POST", "path_regex": "/obj/user$"}],
        )
        ids = sign_up(conn, 200)
        most_runs = 0

        def drained() -> bool:
            nonlocal most_runs
            going = conn.execute(
                "select count(*) as n from bubble_sync.worker_runs where started_at is not null"
            ).fetchone()
            most_runs = max(most_runs, int(going["n"]))
            return int(conn.execute(OPEN_ROWS_SQL).fetchone()["n"]) == 0

        wait_for(lambda: held(conn) >= 100, "runs to hold 100 creates", timeout=10)
        renamed = [
            r["record_id"]
            for r in conn.execute(
                "update public.profiles p set full_name = 'Renamed ' || p.id"
                "  from public.sync_queue q"
                " where q.record_id = p.id::text and q.status = 'processing' and q.operation = 'INSERT'"
                " returning q.record_id"
            )
        ]
        # a bound on liveness, not a speed target: a loaded machine is slower
        wait_for(drained, "the backlog to drain through pg_net alone", timeout=120)
        wait_for(
            lambda: conn.execute("select count(*) as n from bubble_sync.worker_runs").fetchone()["n"] == 0,
            "every run to end",
            timeout=10,
        )
    finally:
        rig.kill_host(signal.SIGTERM)
        rig.start_host()
    outcome = check(rig, conn, ids)
    assert outcome.permanently_failed == 0, outcome.failure_reasons
    assert len(renamed) >= 50, f"only {len(renamed)} renamed while their create was in flight"
    names = {r["supabase_id"]: r.get("full_name") for r in rig.records()}
    assert all(names[f"profiles:{i}"] == f"Renamed {i}" for i in renamed)
    assert most_runs >= 2, f"runs never overlapped (at most {most_runs} going at once)"
    print(f"  {len(renamed)} renamed mid-create; runs going at once: up to {most_runs}")


def test_function_killed_mid_batch(rig: FaultRig, conn: Conn) -> None:
    latency = 0.7
    rig.bubble.configure(latency_ms=latency * 1000)
    ids = sign_up(conn, 30)  # the dispatched run claims them all, 5 in flight at a time
    wait_for(lambda: len(rig.records()) >= 5, "the batch to be under way", 15)
    rig.kill_host()  # SIGKILL: no verdicts, no cleanup
    killed_at = status_counts(conn)
    assert killed_at.get("processing", 0) > 0, killed_at
    time.sleep(latency + 0.5)  # creates already sent when it died still land at Bubble
    stored_unreported = len(rig.records()) - killed_at.get("completed", 0)
    rig.start_host()
    # Nothing comes back before the lease runs out: the new host finds nothing to claim.
    assert rig.post(PROCESS)["claimed"] == 0
    assert status_counts(conn).get("processing", 0) == killed_at["processing"]
    rounds = recover(conn, rig.post)
    outcome = check(rig, conn, ids)
    assert outcome.completed == len(ids)
    reclaimed = conn.execute("select count(*) as n from public.sync_queue where retry_count = 1").fetchone()
    assert reclaimed == {"n": killed_at["processing"]}, "the lease's attempt was not counted exactly once"
    print(
        f"  at the kill: {killed_at}, stored but unreported: {stored_unreported},"
        f" recovered in {rounds} rounds"
    )


def test_pg_net_worker_restarted(rig: FaultRig, conn: Conn) -> None:
    rig.stop_net_worker()
    try:
        ids = sign_up(conn, 20)
        time.sleep(1)
        queued = conn.execute("select count(*) as n from net.http_request_queue").fetchone()
        assert queued is not None and queued["n"] >= 1, "the dispatch was not queued for pg_net"
        assert status_counts(conn) == {"pending": 20}, "something ran without the pg_net worker"
    finally:
        rig.start_net_worker()
    # The restarted worker sends the backlog: the dispatched run syncs everything, no POST from us.
    took = wait_for(lambda: status_counts(conn) == {"completed": 20}, "the backlog after the restart", 15)
    assert recover(conn, rig.post) == 1
    outcome = check(rig, conn, ids)
    assert outcome.completed == len(ids)
    # And a dispatch while the worker restarts mid-batch of deliveries is not lost either.
    rig.bubble.configure(latency_ms=200)
    more = sign_up(conn, 20, prefix="later")
    rig.stop_net_worker()
    rig.start_net_worker()
    wait_for(lambda: status_counts(conn) == {"completed": 40}, "the second batch", 20)
    check(rig, conn, ids + more)
    print(f"  backlog synced {took:.1f} s after the worker came back")


@pytest.mark.parametrize("outage_seconds", [0.0, 2.0], ids=["restart", "down_2s"])
def test_database_restarted(rig: FaultRig, conn: Conn, outage_seconds: float) -> None:
    """`restart`: Cluster.restart() (fast shutdown, straight back up). `down_2s`: down for 2 s, so verdicts of
    the creates in flight certainly find no database and their rows wait in `processing` for their lease."""
    rig.bubble.configure(latency_ms=300)
    ids = sign_up(conn, 30)
    wait_for(lambda: len(rig.records()) >= 5, "the batch to be under way", 15)
    conn.close()
    if outage_seconds:
        rig.database_outage(outage_seconds)
    else:
        rig.cluster.restart()  # fast shutdown: every session is cut, the function's included
    with rig.connect() as c:
        wait_for(lambda: _worker_is_up(c), "the pg_net worker to reconnect", 20)
        time.sleep(1)  # the function's in-flight creates land
        after_restart = status_counts(c)
        # The pipeline works again by itself: a new signup is dispatched, sent and completed.
        more = sign_up(c, 5, prefix="after")
        wait_for(lambda: _all_completed(c, more), "signups after the restart to sync on their own", 20)
        rounds = recover(c, rig.post)
        outcome = check(rig, c, ids + more)
        assert outcome.completed == len(ids) + len(more)
    print(f"  queue 1 s after the database came back: {after_restart}, recovered in {rounds} rounds")


def _all_completed(conn: Conn, record_ids: list[str]) -> bool:
    row = conn.execute(
        "select count(*) as n from public.sync_queue where record_id = any(%s) and status = 'completed'",
        (record_ids,),
    ).fetchone()
    return row is not None and row["n"] == len(record_ids)


def _worker_is_up(conn: Conn) -> bool:
    try:
        conn.execute("select net.check_worker_is_up()")
    except psycopg.Error:
        return False
    return True


def test_the_rig_moves_time_only_for_stuck_rows(rig: FaultRig, conn: Conn) -> None:
    """The recovery helper itself: a lease that is still being worked on is not taken away."""
    ids = sign_up(conn, 1)
    wait_for(lambda: status_counts(conn) == {"completed": 1}, "the signup", 10)
    conn.execute(
        "update public.sync_queue set status = 'processing', lease_token = gen_random_uuid(),"
        " lease_expires_at = now() + interval '1 hour', updated_at = now()"
    )
    move_time_forward(conn)
    assert conn.execute("select lease_expires_at > now() as held from public.sync_queue").fetchone() == {
        "held": True
    }
    conn.execute("update public.sync_queue set updated_at = now() - interval '1 minute'")
    move_time_forward(conn)
    assert conn.execute("select lease_expires_at < now() as gone from public.sync_queue").fetchone() == {
        "gone": True
    }
    recover(conn, rig.post)
    check(rig, conn, ids)


def test_slow_create_outliving_the_backoff_is_kept_single_by_the_unique_email(
    rig: FaultRig, conn: Conn
) -> None:
    """The scenario of the known limit below, with emails: the retry creates the user, the late original is
    refused by Bubble (USED_EMAIL) with nobody listening, and each row still has exactly one record."""
    rig.bubble.configure(faults=[{"kind": "hang", "hang_seconds": 3, "method": "POST", "count": 5}])
    ids = sign_up(conn, 5)
    # The signups' own (background) run may hold the rows until its creates time out: wait for its verdicts.
    recover(
        conn, rig.post, max_rounds=3, between_rounds=lambda: wait_for(lambda: held(conn) == 0, "verdicts", 5)
    )
    wait_for(lambda: hung_requests_answered(rig), "the hung creates", 10)
    late = [r for r in rig.bubble.requests() if r["fault"] == "hang"]
    assert [r["status"] for r in late] == [400] * 5, late
    assert check(rig, conn, ids).completed == len(ids)


def test_a_slow_create_settles_before_its_row_is_looked_up_again(rig: FaultRig, conn: Conn) -> None:
    """A data type of the app's own (no unique email), so only the lookup by key can tell a stored create.
    The creates hang at Bubble past the function's timeout; minutes pass while they hang (as a > 33 s hang
    would live), but the rows wait for the settle window (bubbleSettleSeconds, 300 s) before anyone looks:
    by then Bubble has stored them, each retry finds its record, and nothing is created twice."""
    with rig.syncing_to("signup"):
        rig.bubble.configure(faults=[{"kind": "hang", "hang_seconds": 3, "method": "POST", "count": 5}])
        ids = sign_up(conn, 5, with_email=lambda i: False)
        settled = (
            "select count(*) as n from public.sync_queue where next_retry_at > now() + interval '290 seconds'"
        )
        wait_for(
            lambda: conn.execute(settled).fetchone()["n"] == len(ids), "the timed-out creates reported", 10
        )
        for _ in range(3):  # three minutes pass: still inside the window
            move_time_forward(conn, seconds=60)
            assert rig.post(RETRY)["claimed"] == 0
        assert not [r for r in rig.bubble.requests() if r["method"] == "GET"], "looked up before it settled"
        wait_for(lambda: hung_requests_answered(rig), "the hung creates", 10)
        recover(conn, rig.post)  # past the window: each retry looks up its key and finds the stored create
        assert check(rig, conn, ids).completed == len(ids)
        assert creates_per_key(rig.bubble.requests()) == {key: 1 for key in keys_for(ids)}


def test_everything_at_once(rig: FaultRig, conn: Conn) -> None:
    """5xx, hangs past the timeout, unanswered creates and a rate limit together, overlapping runs, and the
    function killed once in the middle."""
    with rig.syncing_to("signup"):
        rig.bubble.configure(
            seed=21,
            latency_ms=30,
            latency_jitter_ms=40,
            rate_limit_per_minute=1200,
            rate_limit_burst=10,
            faults=[
                {"kind": "status", "status": 502, "probability": 0.15},
                {"kind": "hang", "hang_seconds": 1.3, "probability": 0.05},
                {"kind": "close_after_store", "method": "POST", "probability": 0.15},
            ],
        )
        ids = sign_up(conn, 60, with_email=lambda i: i % 3 != 0)
        with ThreadPoolExecutor(max_workers=3) as pool:
            runs = [pool.submit(rig.post, PROCESS) for _ in range(2)]
            time.sleep(0.3)
            rig.kill_host()
            for run in runs:
                try:
                    run.result()
                except Exception:  # its connection died with the host, as intended
                    pass
        time.sleep(1.5)  # what the dead host had sent lands (or hangs out) at Bubble
        rig.start_host()
        rounds = recover(
            conn, rig.post, between_rounds=lambda: wait_for(lambda: hung_requests_answered(rig), "hangs", 10)
        )
        outcome = check(rig, conn, ids)
        print(f"  recovered in {rounds} rounds")
        assert outcome.completed == len(ids), outcome  # transient only: every row synced


# --- a Bubble outage ----------------------------------------------------------------------------------------


def _outage_round(rig: FaultRig, conn: Conn, hours_failing: float) -> None:
    """One round of an outage with the invoke functions called all along: both actions run, then the clock
    moves on (the rows' backoffs due, their first failure `hours_failing` ago)."""
    rig.post(PROCESS)
    rig.post(RETRY)
    # A run the dispatch trigger woke through pg_net may still hold rows: on a loaded machine its verdicts
    # came after the clock had moved, and its rows' first failure was "now" again.
    wait_for(lambda: runs_are_over(conn), "the runs the dispatch trigger woke to end", 30)
    conn.execute(
        "update public.sync_queue set failing_since = now() - make_interval(secs => %s)"
        " where failing_since is not null",
        (hours_failing * 3600,),
    )
    move_time_forward(conn)


def test_an_outage_within_the_horizon_ends_with_every_row_synced(rig: FaultRig, conn: Conn) -> None:
    """Bubble answers 503 to everything for what the clock calls 23 hours, while signups arrive and the
    functions keep being invoked: no row is failed for good, and after recovery every row is synced once."""
    rig.bubble.configure(faults=[{"kind": "status", "status": 503, "probability": 1.0}])
    ids = sign_up(conn, 10)
    for hours in (0.1, 1, 6, 12, 23):
        _outage_round(rig, conn, hours)
        ids += sign_up(conn, 2, prefix=f"during{hours}")
    dead = conn.execute(
        "select count(*) as n from public.sync_queue where status = 'failed' and retry_count >= max_retries"
    ).fetchone()
    assert dead["n"] == 0, "a transient outage failed rows for good"
    failed_requests = sum(1 for r in rig.bubble.requests() if r["status"] == 503)
    assert failed_requests > 0, "the outage hardly fired"
    # The circuit breaker opened after bubbleBreakerFailures (10) failures; each round after that let one
    # probe through (the round moves time past the probe interval), however many rows were waiting. The
    # function's concurrency (5) bounds what was already on its way when it opened.
    assert failed_requests <= 10 + 5 + 5, failed_requests
    status = conn.execute("select * from bubble_sync.health()").fetchone()
    assert status["bubble_unavailable_since"] is not None
    assert "503" in status["bubble_last_error"]
    rig.bubble.configure(faults=[])  # Bubble is back
    recover(conn, rig.post)
    assert check(rig, conn, ids).completed == len(ids)


def test_an_outage_past_the_horizon_fails_the_rows_for_good_with_the_reason(
    rig: FaultRig, conn: Conn
) -> None:
    rig.bubble.configure(faults=[{"kind": "status", "status": 503, "probability": 1.0}])
    ids = sign_up(conn, 5)
    _outage_round(rig, conn, 1)
    _outage_round(rig, conn, 25)  # the rows' first failure is now 25 hours old
    rig.post(RETRY)
    outcome = check(rig, conn, ids)
    assert outcome.permanently_failed == len(ids), outcome
    assert all(reason.startswith("gave up: failing since") for reason in outcome.failure_reasons), outcome


# --- what the system does NOT survive -----------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="KNOWN LIMIT: a create that Bubble stores only AFTER the row's retry has looked it up is created "
    "twice when its data type has no unique email, any type but user (Bubble has no idempotency key; the "
    "lookup before a retried create is the only guard). The retry waits for the settle window "
    "(bubbleSettleSeconds, 300 s by default), so in production this needs a create hanging at Bubble longer "
    "than that.",
)
def test_slow_create_outliving_the_backoff_duplicates_email_less_rows(rig: FaultRig, conn: Conn) -> None:
    with rig.syncing_to("signup"):
        rig.bubble.configure(faults=[{"kind": "hang", "hang_seconds": 3, "method": "POST", "count": 5}])
        ids = sign_up(conn, 5, with_email=lambda i: False)
        # Time moves past the settle window while the creates still hang at Bubble (as a > 300 s hang would).
        recover(conn, rig.post, max_rounds=3)
        wait_for(lambda: hung_requests_answered(rig), "the hung creates", 10)
        check(rig, conn, ids)


def test_changes_queued_in_one_transaction_reach_bubble_in_the_order_queued(
    rig: FaultRig, conn: Conn
) -> None:
    """The seed's pattern: the app writes sync_queue rows itself, a create and three updates of each record in
    ONE transaction, so every row has the same created_at. Against a slow Bubble failing one request in ten,
    with parallel runs, no update may overtake its create (it would find no record and fail for good) and
    every record must end with its last change. Before rows had a queue order, 13 of 40 updates failed so."""
    rig.kill_host(signal.SIGTERM)
    # The rig's 1 s timeout is a hair above the 0.8 s hang: on a loaded machine some creates outlived it and
    # waited out the 300 s settle window. Timeouts are not this test's subject; in-flight creates are.
    rig.start_host(BUBBLE_RATE_LIMIT_PER_MINUTE="35000", BUBBLE_SYNC_HTTP_TIMEOUT_MS="2000")
    try:
        rig.bubble.configure(
            seed=18, latency_ms=400, faults=[{"kind": "status", "status": 503, "probability": 0.1}]
        )
        ids = [f"tx-{i}" for i in range(40)]
        with conn.transaction():
            for record_id in ids:
                for version, operation in enumerate(("INSERT", "UPDATE", "UPDATE", "UPDATE")):
                    conn.execute(
                        "insert into public.sync_queue (table_name, record_id, operation, payload)"
                        " values ('profiles', %s, %s, %s::jsonb)",
                        (
                            record_id,
                            operation,
                            json.dumps({"email": f"{record_id}@example.com", "full_name": f"v{version}"}),
                        ),
                    )
        rounds = recover(conn, rig.post)
    finally:
        rig.kill_host(signal.SIGTERM)
        rig.start_host()
    outcome = check(rig, conn, ids)
    assert outcome.permanently_failed == 0, outcome.failure_reasons
    names = {r["supabase_id"]: r.get("full_name") for r in rig.records()}
    assert names == {f"profiles:{i}": "v3" for i in ids}
    print(f"  recovered in {rounds} rounds")

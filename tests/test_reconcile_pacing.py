"""How `reconcile` asks Bubble, against real PostgreSQL and the Bubble double: through the gate the sync
shares (bubble_sync.take_requests) at its share of the rate limit, so a sync asking for every turn at the
same time keeps the rest; a 429's Retry-After held by everyone (note_bubble_answer); Bubble's circuit
breaker waited on, then given up on; a token refused, and a URL that never answers, end the run with exit 2
without counting against the sync's breaker; a type larger than one search's 50,000 things is read in
windows; --where looks up the records it selects; Ctrl-C leaves nothing written."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from components.operator.reconcile import BubbleUnavailable
from components.operator.reconcile import fetch as fetch_module
from components.operator.reconcile.bubble import BubbleReader
from components.operator.reconcile.fetch import scan
from components.operator.reconcile.gate import SharedGate
from components.operator.reconcile.things import ThingStore, kept_fields
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster
from tests.conftest import Database, fresh_database
from tests.function_support import HEALTHY_BUBBLE
from tests.queue_support import EMPTY_GATE
from tests.reconcile_support import BUBBLE_TOKEN, SCHEMA, deploy, reconcile, settings

ENV = "test"


@pytest.fixture(scope="module")
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=BUBBLE_TOKEN, seed=191, schema=SCHEMA) as double:
        yield double


@pytest.fixture(scope="module")
def database(cluster: Cluster, queue_template: str) -> Iterator[Database]:
    with fresh_database(cluster, queue_template) as db:
        yield db


@pytest.fixture
def conn(database: Database, bubble: BubbleDouble) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(database.dsn, autocommit=True, row_factory=dict_row) as c:
        deploy(c)
        c.execute("truncate public.sync_queue restart identity; truncate bubble_sync.links")
        c.execute(EMPTY_GATE)
        bubble.reset()
        bubble.configure(**HEALTHY_BUBBLE, schema=SCHEMA)
        yield c


def add_users(conn: psycopg.Connection[Any], bubble: BubbleDouble, count: int) -> list[str]:
    """`count` users in Supabase and their things in Bubble, as a sync leaves them (triggers off: no rows)."""
    conn.execute("alter table public.profiles disable trigger user")
    rows = conn.execute(
        "insert into public.profiles (email, first_name, created_at)"
        " select 'u' || i || '@example.com', 'Ada', '2026-12-05T09:13:51.123Z' from generate_series(1, %s) i"
        " returning id::text, email",
        (count,),
    ).fetchall()
    conn.execute("alter table public.profiles enable trigger user")
    for row in rows:
        bubble.add("user", {"email": row["email"], "First Name": "Ada", "Joined": "2026-12-05T09:13:51.123Z",
                            "supabase_id": f"profiles:{row['id']}"}, env=ENV)  # fmt: skip
    return sorted(r["id"] for r in rows)


def add_orphans(bubble: BubbleDouble, count: int) -> None:
    for i in range(count):
        bubble.add("user", {"email": f"o{i}@example.com", "supabase_id": f"profiles:{uuid.uuid4()}"}, env=ENV)


def reconcile_requests(bubble: BubbleDouble) -> list[dict[str, Any]]:
    return [r for r in bubble.requests() if r["method"] == "GET" and r["type"] == "user"]


class GreedySync:
    """A sync with more rows than the rate limit lets through: a worker that asks the gate for a turn as the
    function does (take_requests at the full limit, waiting for its slot), again and again, and counts its
    turns by when they came."""

    def __init__(self, dsn: str, per_minute: int) -> None:
        self.dsn = dsn
        self.per_minute = per_minute
        self.turns: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="greedy-sync", daemon=True)

    def __enter__(self) -> GreedySync:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row) as c:
            while not self._stop.is_set():
                row = c.execute(
                    "select granted, first_in_ms from bubble_sync.take_requests(1, %s, 10000)",
                    (self.per_minute,),
                ).fetchone()
                self._stop.wait(row["first_in_ms"] / 1000)
                if row["granted"]:
                    self.turns.append(time.time())


def test_reconcile_keeps_to_its_share_and_a_busy_sync_keeps_the_rest(
    conn: psycopg.Connection[Any], bubble: BubbleDouble, database: Database
) -> None:
    add_orphans(bubble, 2000)  # 20 pages to scan and 20 searches for a second look: 40 requests
    limit, share = 1200, 20  # reconcile: 240 a minute, 4 a second
    paced = settings(bubble, rate_limit_per_minute=limit, share_percent=share)
    with GreedySync(database.dsn, limit) as sync:
        outcome = reconcile(database.dsn, bubble, "--json", settings=paced, mapping="users")
    assert outcome.code == 1 and outcome.counts()["users"]["orphaned"] == 2000, outcome.err
    sent = reconcile_requests(bubble)
    assert len(sent) == outcome.document["bubble_requests"] == 40
    first, last = _epoch(sent[0]["time"]), _epoch(sent[-1]["time"])
    per_minute = (len(sent) - 1) / (last - first) * 60
    assert per_minute <= limit * share / 100 * 1.1, per_minute  # its share, a tenth for timing
    assert per_minute >= limit * share / 100 * 0.6, per_minute  # and not far below: it is paced, not stalled
    theirs = [t for t in sync.turns if first <= t <= last]
    assert len(theirs) / (len(theirs) + len(sent)) >= 0.75, (len(theirs), len(sent))


def test_a_429_is_waited_out_by_everyone_and_the_run_goes_on(
    conn: psycopg.Connection[Any], bubble: BubbleDouble, database: Database
) -> None:
    add_users(conn, bubble, 5)
    add_orphans(bubble, 1)  # a scan, then a second look: two requests
    bubble.configure(rate_limit_per_minute=60, rate_limit_burst=1)  # the second answers 429, Retry-After: 1
    outcome = reconcile(database.dsn, bubble, "--json", mapping="users")
    assert outcome.code == 1 and outcome.counts()["users"]["orphaned"] == 1, outcome.err
    assert outcome.document["rate_limited"] >= 1
    assert outcome.document["bubble_requests"] == 2 + outcome.document["rate_limited"]
    statuses = [r["status"] for r in reconcile_requests(bubble)]
    assert statuses[:2] == [200, 429] and statuses[-1] == 200
    gate = conn.execute("select next_request_at, failures_in_a_row from bubble_sync.bubble_gate").fetchone()
    assert gate["next_request_at"] is not None and gate["failures_in_a_row"] == 0  # the pause, told to all


def test_a_refused_token_and_a_silent_url_exit_2_and_leave_the_breaker_alone(
    conn: psycopg.Connection[Any], bubble: BubbleDouble, database: Database
) -> None:
    add_users(conn, bubble, 2)
    wrong = settings(bubble)
    refused = reconcile(database.dsn, bubble, settings=type(wrong)(**{**wrong.__dict__, "token": "not-it"}))
    assert refused.code == 2 and "Bubble refused the token (401" in refused.err, refused.err
    assert "not-it" not in refused.err + refused.out
    nowhere = type(wrong)(**{**wrong.__dict__, "base_url": "http://127.0.0.1:9/api/1.1"})
    silent = reconcile(database.dsn, bubble, settings=nowhere)
    assert silent.code == 2 and "no answer" in silent.err and "--bubble-url" in silent.err, silent.err
    gate = conn.execute("select failures_in_a_row, opened_at from bubble_sync.bubble_gate").fetchone()
    assert gate == {"failures_in_a_row": 0, "opened_at": None}


def test_an_open_breaker_is_waited_on_then_given_up(conn: psycopg.Connection[Any]) -> None:
    for _ in range(10):  # bubbleBreakerFailures' default: the breaker opens
        conn.execute("select * from bubble_sync.note_bubble_answer('unavailable', 'Bubble answered 503')")
    now = [0.0]
    notes: list[str] = []
    gate = SharedGate(
        conn, rate_limit_per_minute=600, share_percent=20, clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s), on_wait=notes.append, give_up_seconds=120,
    )  # fmt: skip
    with pytest.raises(BubbleUnavailable, match="circuit breaker stayed open for 2 minutes"):
        for _ in range(100):
            gate.turn()  # a probe may be granted: reported as failing again below
            gate.report(503, "Bubble answered 503", None)
    assert len(notes) == 1 and "circuit breaker is open" in notes[0]


def test_a_type_larger_than_one_search_is_read_in_windows(
    conn: psycopg.Connection[Any], bubble: BubbleDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_orphans(bubble, 730)
    monkeypatch.setattr(fetch_module, "SEARCH_CAP", 300)  # Bubble's 50,000, scaled down
    gate = SharedGate(conn, rate_limit_per_minute=0, share_percent=20)
    reader = BubbleReader(settings(bubble), gate)
    store = ThingStore(conn)
    try:
        read = scan(reader, store, "user", "supabase_id", kept_fields("supabase_id", ()))
    finally:
        reader.close()
    stored = conn.execute(
        "select count(*) as n, count(distinct bubble_id) as d from pg_temp.reconcile_things"
    ).fetchone()
    assert stored == {"n": 730, "d": 730}
    assert read >= 730  # things of a window's last millisecond are read twice, kept once
    windows = [r for r in bubble.requests() if "greater+than" in r["query"] or "greater%20than" in r["query"]]
    assert windows, "the later windows start at a Created Date"


def test_where_looks_up_the_records_it_selects(
    conn: psycopg.Connection[Any], bubble: BubbleDouble, database: Database
) -> None:
    add_users(conn, bubble, 250)
    add_orphans(bubble, 3)  # not looked for with --where
    selected = _ids(conn, "u1%")  # u1, u10..u19, u100..u199: 111 records
    conn.execute("alter table public.profiles disable trigger user")
    conn.execute("update public.profiles set first_name = 'Grace' where id = %s", (selected[0],))
    conn.execute("alter table public.profiles enable trigger user")
    outcome = reconcile(database.dsn, bubble, "--json", mapping="users", where="email like 'u1%'")
    assert outcome.code == 1, outcome.err
    assert outcome.document["mappings"][0]["records"] == len(selected) == 111
    assert outcome.counts()["users"] == {"missing": 0, "stale": 1, "orphaned": 0, "duplicated": 0}
    # 100 keys a search (2 for 111 records), then one for a second look at the stale record
    assert outcome.document["bubble_requests"] == 3


def test_ctrl_c_while_reading_leaves_nothing_written(
    conn: psycopg.Connection[Any], bubble: BubbleDouble, database: Database
) -> None:
    add_orphans(bubble, 300)
    calls = [0]

    def sleep(seconds: float) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        time.sleep(seconds)

    outcome = reconcile(database.dsn, bubble, "--repair",
                        settings=settings(bubble, rate_limit_per_minute=600), sleep=sleep)  # fmt: skip
    assert outcome.code == 130 and "nothing was written" in outcome.err, outcome.err
    assert conn.execute("select count(*) as n from public.sync_queue").fetchone()["n"] == 0


def _ids(conn: psycopg.Connection[Any], like: str) -> list[str]:
    rows = conn.execute("select id::text from public.profiles where email like %s order by id", (like,))
    return [r["id"] for r in rows]


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

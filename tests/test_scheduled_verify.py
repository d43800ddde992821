"""The scheduled verification end to end: the cron job's command (bubble_sync.invoke_verify) invokes the
bubble_sync Edge Function, served by Deno, through the pg_net double and the Vault secrets; the function
checks a sample of each mapping against the Bubble double by key and the database keeps what it found.
Differences made behind the sync's back (an edit, a delete and a duplicate, as a Bubble editor or workflow
would make them) are found within one run, `status` says so naming the repair, and the alerts name the
mappings."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from components.mappings import mappings_json
from components.operator.report import render_status
from components.operator.status import collect_status
from components.sql.plan import mapping_unit
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster
from devstack.pgnet_worker import NetWorker
from tests import function_support
from tests.conftest import Database, fresh_database
from tests.function_support import Host, empty_queue_and_bubble
from tests.test_mapped_sync import (  # the helpers of the mapped sync's own tests, and their keys
    BUBBLE_TOKEN,
    LEGACY_KEY,
    SCHEMA,
    SECRET_KEY,
    TABLES,
    add_listing,
    add_profile,
    by_key,
    parsed,
    sync,
)


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
        tmp_path_factory.mktemp("verify_host"), database, bubble, bubble_token=BUBBLE_TOKEN,
        service_role_key=LEGACY_KEY, secret_key=SECRET_KEY, http_timeout_ms=2000,
        BUBBLE_SYNC_MAPPINGS=mappings_json(parsed()),
    )  # fmt: skip


@pytest.fixture(scope="module")
def net(database: Database) -> Iterator[NetWorker]:
    with NetWorker(database.admin_dsn) as worker:
        yield worker


@pytest.fixture
def conn(
    database: Database, bubble: BubbleDouble, host: Host
) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The mapped tables with their rows and triggers as `pulumi up` applies them, and the Vault secrets the
    cron jobs' requests read (pointing at the local functions host)."""
    with psycopg.connect(database.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute("drop table if exists public.messages, public.listings, public.profiles")
        c.execute(TABLES)
        empty_queue_and_bubble(c, bubble, schema=SCHEMA)
        c.execute("truncate bubble_sync.mappings, bubble_sync.verifications; delete from vault.secrets")
        every = parsed()
        for mapping in every:
            unit = mapping_unit(mapping, every)
            with c.transaction():
                c.execute(unit.record.apply_sql)
                c.execute(unit.trigger.apply_sql)
        supabase_url = host.url.removesuffix("/functions/v1")
        c.execute("select vault.create_secret(%s, 'supabase_url')", (supabase_url,))
        c.execute("select vault.create_secret(%s, 'service_role_key')", (SECRET_KEY,))
        yield c


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120, trust_env=False) as c:
        yield c


def scheduled_run(conn: psycopg.Connection[Any], timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """What the cron job bubble_sync.verify does (its command, through pg_net), until each mapping has a new
    result: the last verification of each mapping."""
    before = conn.execute("select coalesce(max(id), 0) as id from bubble_sync.verifications").fetchone()["id"]
    assert conn.execute("select bubble_sync.invoke_verify() as request").fetchone()["request"] is not None
    deadline = time.monotonic() + timeout
    while True:
        rows = conn.execute(
            "select * from bubble_sync.verifications where id > %s order by id", (before,)
        ).fetchall()
        if len(rows) == len(parsed()):
            return {r["mapping"]: r for r in rows}
        assert time.monotonic() < deadline, f"the verification did not finish: {rows}"
        time.sleep(0.1)


def test_the_scheduled_verification_finds_a_planted_difference_in_one_run_and_status_says_so(
    conn: psycopg.Connection[Any],
    database: Database,
    client: httpx.Client,
    host: Host,
    bubble: BubbleDouble,
    net: NetWorker,
) -> None:
    ada, grace = add_profile(conn, "ada@example.com"), add_profile(conn, "grace@example.com")
    loft, barn = add_listing(conn, "Loft", ada), add_listing(conn, "Barn", grace)
    sync(client, host, conn)

    clean = scheduled_run(conn)
    differences = {m: r["missing"] + r["stale"] + r["orphaned"] + r["duplicated"] for m, r in clean.items()}
    assert differences == {"users": 0, "listings": 0, "messages": 0}
    assert {m: (r["checked"], r["error"]) for m, r in clean.items()} == {
        "users": (2, None), "listings": (2, None), "messages": (0, None),
    }  # fmt: skip

    # behind the sync's back, as an editor in Bubble would
    users, listings = by_key(bubble, "user"), by_key(bubble, "listing")
    bubble.modify("user", users[f"profiles:{ada}"]["_id"], {"First Name": "Eve-BUBBLE-VALUE"}, env="test")
    bubble.delete("listing", listings[f"listings:{loft}"]["_id"], env="test")
    bubble.add("listing", {"Title": "Barn", "Price": 120.5, "supabase_id": f"listings:{barn}"}, env="test")
    requests_before = len(bubble.requests())

    found = scheduled_run(conn)
    assert (found["users"]["checked"], found["users"]["stale"]) == (2, 1)
    assert found["users"]["examples"] == {"stale": [ada], "stale_fields": ["First Name"]}
    listings_found = found["listings"]
    assert (listings_found["missing"], listings_found["duplicated"]) == (1, 1)
    assert listings_found["examples"] == {"missing": [loft], "duplicated": [barn]}
    searches = [r for r in bubble.requests()[requests_before:] if r["method"] == "GET"]
    assert len(searches) == 2, "one `in` search per mapping with records (messages has none)"
    assert all(r["method"] == "GET" for r in bubble.requests()[requests_before:]), "nothing written to Bubble"

    with psycopg.connect(database.dsn, row_factory=dict_row) as read:
        status = collect_status(read, database="test", stack="dev")
    repairs = [p for p in status.problems if p.startswith("the verification of mapping")]
    assert len(repairs) == 2, status.problems
    users_problem = next(p for p in repairs if "mapping users" in p)
    assert "(1 stale of 2 checked" in users_problem
    assert users_problem.endswith("`python -m components reconcile --stack dev --mapping users --repair`")
    out = io.StringIO()
    render_status(status, out)
    text = out.getvalue()
    section = text.split("Verification (")[1].split("Alerts (")[0]
    assert f"stale: {ada}; stale fields: First Name" in section
    assert (
        "repair listings: python -m components reconcile --stack dev --mapping listings --repair" in section
    )
    assert "Eve-BUBBLE-VALUE" not in text and "ada@example.com" not in text

    causes = conn.execute(
        "select cause from bubble_sync.alert_causes(interval '10 minutes', interval '15 minutes', 'dev')"
    ).fetchall()
    assert {c["cause"] for c in causes} == {"verification:users", "verification:listings"}

    # reconcile's repair is another helper's; an edit back in Bubble is seen by the next run the same way
    bubble.modify("user", users[f"profiles:{ada}"]["_id"], {"First Name": "Ada"}, env="test")
    assert scheduled_run(conn)["users"]["stale"] == 0


def test_a_verification_that_cannot_reach_bubble_keeps_the_reason(
    conn: psycopg.Connection[Any], client: httpx.Client, host: Host, bubble: BubbleDouble, net: NetWorker
) -> None:
    add_profile(conn, "ada@example.com")
    sync(client, host, conn)
    conn.execute(
        "update bubble_sync.bubble_gate set failures_in_a_row = 10, failing_since = now(), opened_at = now(),"
        " last_probe_at = now()"
    )
    found = scheduled_run(conn)
    assert found["users"]["error"].startswith(
        "not verified: a search by key was not sent: the circuit breaker"
    )
    assert found["users"]["checked"] == 0
    assert found["messages"]["error"] is None  # no record to look up: no request needed

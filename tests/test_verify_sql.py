"""The scheduled verification's database side (sql/functions/verify.sql), against real PostgreSQL: the sample
(the most recently synced records, then older ones at random, cheap on a large links table), the result kept
by the one comparison rule with counts and example ids (never a value), health() showing the last
verification of each deployed mapping, the cron job's command, and purge keeping each mapping's last one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import psycopg.types.json
import pytest
from psycopg.rows import dict_row

from tests.conftest import Database
from tests.queue_support import T0, at
from tests.test_compare import ada, user_thing
from tests.test_mapped_queue import LISTINGS, LISTINGS_MAPPING, PROFILES, USERS, attach


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute(PROFILES)
        c.execute(LISTINGS)
        attach(c, USERS, (USERS, LISTINGS_MAPPING))
        attach(c, LISTINGS_MAPPING, (USERS, LISTINGS_MAPPING))
        yield c


def link(conn: psycopg.Connection[Any], record_id: str, minutes_ago: float, table: str = "profiles") -> None:
    conn.execute(
        "insert into bubble_sync.links (table_name, record_id, bubble_id, linked_at) values (%s, %s, %s, %s)",
        (table, record_id, f"b-{record_id}", T0 - timedelta(minutes=minutes_ago)),
    )


def sample(conn: psycopg.Connection[Any], mapping: str, size: int) -> list[str]:
    rows = conn.execute("select record_id from bubble_sync.verify_sample(%s, %s)", (mapping, size)).fetchall()
    return [r["record_id"] for r in rows]


def record(
    conn: psycopg.Connection[Any],
    ids: list[str],
    things: list[dict[str, Any]],
    *,
    error: str | None = None,
    now: Any = T0,
    mapping: str = "users",
) -> dict[str, Any]:
    return conn.execute(
        "select * from bubble_sync.record_verification(%s, %s, %s, %s, %s, %s)",
        (mapping, now - timedelta(seconds=2), ids, psycopg.types.json.Jsonb(things), error, now),
    ).fetchone()


def health(conn: psycopg.Connection[Any], now: Any = None) -> dict[str, Any]:
    return conn.execute("select * from bubble_sync.health(%s, 0)", (now or at(60),)).fetchone()


# -- the sample ----------------------------------------------------------------------------------------------


def test_the_sample_is_the_most_recently_synced_half_then_older_ones_at_random(
    conn: psycopg.Connection[Any],
) -> None:
    for i in range(30):
        link(conn, f"p{i:02d}", minutes_ago=i)
    link(conn, "l1", minutes_ago=0, table="listings")  # another mapping's record: never in this sample
    picked = sample(conn, "users", 10)
    assert len(picked) == len(set(picked)) == 10
    assert picked[:5] == ["p00", "p01", "p02", "p03", "p04"]
    assert set(picked[5:]) <= {f"p{i:02d}" for i in range(5, 30)}
    draws = {tuple(sample(conn, "users", 10)[5:]) for _ in range(5)}
    assert len(draws) > 1, "the older ones are drawn at random"
    assert sorted(sample(conn, "users", 100)) == sorted(f"p{i:02d}" for i in range(30))
    assert sample(conn, "listings", 100) == ["l1"]


def test_a_large_links_table_is_sampled_by_blocks(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "insert into bubble_sync.links (table_name, record_id, bubble_id, linked_at)"
        " select 'profiles', 'r' || i, 'b' || i, now() - make_interval(secs => i)"
        "   from generate_series(1, 60000) i"
    )
    conn.execute("analyze bubble_sync.links")
    picked = sample(conn, "users", 100)
    assert picked[:50] == [f"r{i}" for i in range(1, 51)]
    assert 20 <= len(picked) - 50 <= 50 and len(set(picked)) == len(picked)
    plan = "\n".join(
        r["QUERY PLAN"]
        for r in conn.execute(
            "explain select l.record_id from bubble_sync.links l where l.table_name = 'profiles'"
            " order by l.linked_at desc, l.record_id desc limit 50"
        ).fetchall()
    )
    assert "links_recent_idx" in plan, plan


def test_the_sample_refuses_a_bad_size_and_an_unknown_mapping(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="between 1 and 10000"):
        sample(conn, "users", 0)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no mapping 'nope'"):
        sample(conn, "nope", 10)


# -- the result ----------------------------------------------------------------------------------------------


def test_a_result_counts_each_difference_with_example_ids_and_fields_never_values(
    conn: psycopg.Connection[Any],
) -> None:
    synced, stale, duplicated, missing = ada(conn), ada(conn), ada(conn), ada(conn)
    things = [
        user_thing(synced),
        user_thing(stale, **{"First Name": "Mallory-VALUE"}),
        user_thing(duplicated, _id="d1"),
        user_thing(duplicated, _id="d2"),
    ]
    row = record(conn, [synced, stale, duplicated, missing, synced], things)
    assert (row["checked"], row["missing"], row["stale"], row["orphaned"], row["duplicated"]) == (
        4,
        1,
        1,
        0,
        1,
    )
    assert row["examples"] == {
        "missing": [missing], "stale": [stale], "duplicated": [duplicated], "stale_fields": ["First Name"],
    }  # fmt: skip
    assert "VALUE" not in str(row) and "ada@example.com" not in str(row)
    assert (row["mapping"], row["finished_at"], row["error"]) == ("users", T0, None)
    clean = record(conn, [synced], [user_thing(synced)])
    assert (clean["checked"], clean["missing"] + clean["stale"], clean["examples"]) == (1, 0, {})


def test_a_verification_that_could_not_fetch_keeps_its_error(conn: psycopg.Connection[Any]) -> None:
    row = record(conn, ["a", "b"], [], error="not verified: the circuit breaker is open")
    assert (row["checked"], row["missing"], row["error"]) == (
        0,
        0,
        "not verified: the circuit breaker is open",
    )
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no mapping 'nope'"):
        record(conn, [], [], mapping="nope")


def test_the_worker_role_may_sample_and_the_api_roles_nothing(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    pid = ada(conn)
    link(conn, pid, minutes_ago=1)
    with queue_db.connect_as("service_role") as worker:
        worker.row_factory = dict_row
        assert sample(worker, "users", 5) == [pid]
    for role in ("anon", "authenticated"):
        for statement in (
            "select * from bubble_sync.verify_sample('users', 5)",
            "select * from bubble_sync.record_verification('users', now(), '{}', '[]')",
            "select * from bubble_sync.verifications",
        ):
            with queue_db.connect_as(role) as api, pytest.raises(psycopg.errors.InsufficientPrivilege):
                api.execute(statement)


# -- health() and the job -----------------------------------------------------------------------------------


def test_health_shows_the_last_verification_of_each_deployed_mapping(conn: psycopg.Connection[Any]) -> None:
    assert (health(conn)["verification_differences"], health(conn)["last_verifications"]) == (None, [])
    pid = ada(conn)
    record(conn, [pid], [], now=at(-3600))  # an hour ago: missing
    record(conn, [pid], [user_thing(pid, **{"First Name": "Bob"})], now=at(0))  # the last: stale
    record(conn, [], [], error="not verified: Bubble answered 401", now=at(0), mapping="listings")
    h = health(conn)
    assert h["verification_differences"] == 1
    listings, users = h["last_verifications"]
    assert (users["mapping"], users["checked"], users["stale"], users["missing"]) == ("users", 1, 1, 0)
    assert users["examples"] == {"stale": [pid], "stale_fields": ["First Name"]}
    assert (listings["mapping"], listings["error"]) == ("listings", "not verified: Bubble answered 401")
    # a mapping no longer deployed is not shown; as of an earlier moment, the verification of then
    conn.execute("delete from bubble_sync.mappings where name = 'listings'")
    assert [v["mapping"] for v in health(conn)["last_verifications"]] == ["users"]
    assert health(conn, at(-60))["last_verifications"][0]["missing"] == 1


def test_the_job_invokes_the_function_only_with_mappings(conn: psycopg.Connection[Any]) -> None:
    conn.execute("select vault.create_secret('http://127.0.0.1:9/', 'supabase_url')")
    conn.execute("select vault.create_secret('svc-key', 'service_role_key')")
    request = conn.execute("select bubble_sync.invoke_verify() as id").fetchone()["id"]
    queued = conn.execute("select url, body from net.http_request_queue where id = %s", (request,)).fetchone()
    assert queued["url"] == "http://127.0.0.1:9/functions/v1/bubble_sync"
    assert bytes(queued["body"]) == b'{"action": "verify"}'
    conn.execute("truncate bubble_sync.mappings")
    assert conn.execute("select bubble_sync.invoke_verify() as id").fetchone()["id"] is None


def test_purge_keeps_each_mappings_last_verification(conn: psycopg.Connection[Any]) -> None:
    for days in (30, 20, 10):
        record(conn, [], [], now=T0 - timedelta(days=days))
    record(conn, [], [], now=T0 - timedelta(days=20), mapping="listings")
    conn.execute("select * from bubble_sync.purge(interval '7 days', interval '30 days', %s)", (T0,))
    left = conn.execute("select mapping, finished_at from bubble_sync.verifications order by 1, 2").fetchall()
    assert [(r["mapping"], T0 - r["finished_at"]) for r in left] == [
        ("listings", timedelta(days=20)),
        ("users", timedelta(days=10)),
    ]

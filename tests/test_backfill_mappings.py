"""`python -m components backfill` following the stack's mappings, read from the database itself (so that
--database-url alone is enough), against real PostgreSQL with the queue layer and the mappings deployed as
`pulumi up` deploys them: `--mapping NAME` queues exactly what the mapping's trigger queues (its key, its
columns converted for Bubble, its row filter ANDed with --where), `--mapping all` queues every mapping with
referenced ones first, a --from table the stack maps is backfilled as its mapping, and the flags that do not
fit are refused before anything is queued."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from components.__main__ import main
from components.operator import backfill as bf
from tests.conftest import Database
from tests.mapping_support import add_listings, add_users, create_tables, deploy
from tests.queue_support import T0, claim


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        create_tables(c)
        deploy(c)
        yield c


def queued(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows = conn.execute(
        "select table_name, record_id, operation, payload from public.sync_queue order by id"
    ).fetchall()
    return [(r["table_name"], r["record_id"], r["operation"], r["payload"]) for r in rows]


def backfill(db: Database, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backfill", "--database-url", db.dsn, "--no-follow", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def existing_records(conn: psycopg.Connection[Any], users: int, *, test_users: int = 0) -> list[str]:
    """Records that were there before the triggers: added with the triggers off, so the queue is empty."""
    conn.execute("alter table public.profiles disable trigger bubble_sync_users")
    conn.execute("alter table public.listings disable trigger bubble_sync_listings")
    ids = add_users(conn, users, test_users=test_users)
    add_listings(conn, ids[:users], per_host=2)
    conn.execute("alter table public.profiles enable trigger bubble_sync_users")
    conn.execute("alter table public.listings enable trigger bubble_sync_listings")
    return ids


def test_a_mapping_is_backfilled_as_its_trigger_queues_it(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # What the trigger queues for the same rows (test users left out by the mapping's where)...
    add_users(conn, 4, test_users=2)
    by_trigger = [(t, r, p) for t, r, _op, p in queued(conn)]
    assert len(by_trigger) == 4 and by_trigger[0][2]["joined"] == "2026-12-05T09:13:51.123Z"
    conn.execute("truncate public.sync_queue")

    # ...is what the backfill of the mapping queues, as BACKFILL rows
    code, out, err = backfill(queue_db, capsys, "--mapping", "users")
    assert code == 0, err
    rows = queued(conn)
    assert sorted((t, r, p) for t, r, _op, p in rows) == sorted(by_trigger)
    assert {op for _t, _r, op, _p in rows} == {"BACKFILL"}
    assert "mapping users (Bubble type user): public.profiles where not is_test: 4 rows (key id" in out
    assert "fields email, first_name, joined, score, tags)" in out and "queued 4 rows in 1 chunks" in out


def test_the_operators_where_is_anded_with_the_mappings(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    existing_records(conn, 6, test_users=3)  # scores 0..8; 6, 7, 8 are test users
    where = "score >= 4 -- the newer ones; a trailing comment must not swallow the mapping's filter"
    code, out, err = backfill(queue_db, capsys, "--mapping", "users", "--where", where, "--dry-run")
    assert code == 0, err
    assert "2 rows" in out and "dry run: would queue 2 rows and skip 0; nothing was queued" in out
    assert queued(conn) == []
    code, out, err = backfill(queue_db, capsys, "--mapping", "users", "--where", where)
    assert code == 0, err
    assert sorted(p["score"] for *_, p in queued(conn)) == [4, 5]


def test_every_mapping_referenced_ones_first(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    existing_records(conn, 3)
    code, out, err = backfill(queue_db, capsys, "--mapping", "all")
    assert code == 0, err
    assert "2 mappings, referenced ones first: mapping users, mapping listings" in out
    assert "mapping users: queued 3 rows in 1 chunks; skipped 0" in out
    assert "mapping listings: queued 6 rows in 1 chunks; skipped 0" in out
    assert "queued 9 rows in 2 chunks" in out
    tables = [t for t, *_ in queued(conn)]
    assert tables == ["profiles"] * 3 + ["listings"] * 6  # in queue order: the hosts first
    listing = next(p for t, _r, _op, p in queued(conn) if t == "listings")
    assert set(listing) == {"title", "price", "host_id"} and listing["price"] == 101

    # Why the order matters: a listing waits in the queue while its host has a row there and no Bubble id
    # yet (bubble_sync.claim); queued before its host, it would be handed out and fail to find the host.
    later = T0 + timedelta(days=3650)
    assert {r["table_name"] for r in claim(conn, limit=100, now=later)} == {"profiles"}

    # a second run skips everything
    code, out, _ = backfill(queue_db, capsys, "--mapping", "all", "--dry-run")
    assert code == 0 and "dry run: would queue 0 rows and skip 9" in out


def test_a_table_the_stack_maps_is_backfilled_as_its_mapping(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    existing_records(conn, 2, test_users=1)
    code, out, err = backfill(queue_db, capsys, "--from", "public.profiles")
    assert code == 0, err
    assert "mapping users (Bubble type user): public.profiles where not is_test: 2 rows" in out
    assert [p["joined"] for *_, p in queued(conn)] == ["2026-12-05T09:13:51.123Z"] * 2  # converted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mapping", "users", "--key", "email"], "--mapping users takes the key and the fields from the"),
        (["--mapping", "users", "--fields", "email"], "leave out --key and --fields"),
        (["--mapping", "user"], "--mapping user: no such mapping in this database (deployed: listings, use"),
        (["--from", "profiles", "--fields", "email"],
         "--from profiles is the table of mapping users, whose key and fields are the ones its trigger"),
        (["--mapping", "users", "--where", "scor > 1"], "the where of mapping users 'not is_test' and --wh"),
    ],
    ids=["key", "fields", "unknown", "from-a-mapped-table-with-fields", "where"],
)  # fmt: skip
def test_flags_that_do_not_fit_a_mapping_are_refused(
    queue_db: Database,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    existing_records(conn, 2)
    code, out, err = backfill(queue_db, capsys, *args)
    assert (code, out) == (2, ""), out + err
    assert message in err and err.endswith("(exit 2)\n"), err
    assert queued(conn) == []


def test_from_and_mapping_exclude_each_other_and_one_is_needed(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["--from", "profiles", "--mapping", "users"], []):
        with pytest.raises(SystemExit) as exit_:
            backfill(queue_db, capsys, *args)
        assert exit_.value.code == 2
        assert "--from TABLE" in capsys.readouterr().err
    # called as a function, the same rules, and what is deployed
    err = io.StringIO()
    assert bf.run_backfill(queue_db.dsn, err=err, out=io.StringIO()) == 2
    assert (
        "give the table to backfill with --from TABLE; or --mapping NAME or --mapping all" in err.getvalue()
    )
    assert "(deployed: listings, users)" in err.getvalue()


def test_mapping_all_without_mappings_and_a_database_of_an_earlier_release(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute("delete from bubble_sync.mappings")
    code, _, err = backfill(queue_db, capsys, "--mapping", "all")
    assert code == 2 and "--mapping all: this database has no deployed mappings" in err
    # --from works as before without mappings: the payload as the signup trigger's, unconverted
    code, _, err = backfill(queue_db, capsys, "--from", "profiles", "--fields", "joined")
    assert code == 0, err
    # a database of an earlier release has no bubble_sync.mappings at all
    conn.execute("drop table bubble_sync.mappings cascade")
    code, _, err = backfill(queue_db, capsys, "--mapping", "users")
    assert code == 2 and "--mapping users: no such mapping in this database (deployed: none)" in err


def test_a_mapping_that_does_not_sync_inserts_is_not_backfilled(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    existing_records(conn, 2)
    conn.execute(
        "update bubble_sync.mappings set definition = jsonb_set(definition, '{operations}', '[\"update\"]')"
        " where name = 'listings'"
    )
    code, _, err = backfill(queue_db, capsys, "--mapping", "listings")
    assert code == 2 and "mapping listings syncs update but not inserts" in err
    code, _, err = backfill(queue_db, capsys, "--from", "listings")
    assert code == 2 and "--from listings: mapping listings syncs update but not inserts" in err
    code, out, err = backfill(queue_db, capsys, "--mapping", "all")
    assert code == 0, err
    assert "warning: mapping listings syncs update but not inserts" in out and "left out" in out
    assert {t for t, *_ in queued(conn)} == {"profiles"}


def test_a_missing_trigger_is_a_warning_and_a_broken_mapping_row_is_named(
    queue_db: Database, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    existing_records(conn, 1)
    conn.execute("alter table public.profiles disable trigger bubble_sync_users")
    code, out, _ = backfill(queue_db, capsys, "--mapping", "users", "--dry-run")
    assert code == 0
    assert "warning: the mapping's trigger bubble_sync_users is disabled on public.profiles" in out
    conn.execute("drop trigger bubble_sync_users on public.profiles")
    code, out, _ = backfill(queue_db, capsys, "--mapping", "users", "--dry-run")
    assert "warning: the mapping's trigger bubble_sync_users is not on public.profiles" in out

    conn.execute("alter table public.listings rename column price to cost")
    code, _, err = backfill(queue_db, capsys, "--mapping", "all")
    assert code == 2 and "--mapping listings: public.listings has no column price" in err
    assert queued(conn) == []  # every plan is checked before any is queued

    conn.execute("update bubble_sync.mappings set definition = '{}' where name = 'users'")
    code, _, err = backfill(queue_db, capsys, "--from", "listings")
    assert code == 2 and "bubble_sync.mappings row 'users' is malformed" in err


class Clock:
    """A clock that presses Ctrl-C once the run has read it `at` times (it is read as chunks commit)."""

    def __init__(self, at: int) -> None:
        self.now, self.reads, self.at = 1000.0, 0, at

    def __call__(self) -> float:
        self.reads += 1
        if self.reads == self.at:
            raise KeyboardInterrupt
        self.now += 0.01
        return self.now


def test_an_interrupted_run_of_every_mapping_resumes_and_follows_them_all(
    queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    existing_records(conn, 10)  # 10 users, 20 listings
    out, err = io.StringIO(), io.StringIO()
    # chunks of 4: users take 3 chunks, then listings; Ctrl-C lands while the listings are queued
    code = bf.run_backfill(
        queue_db.dsn, mapping="all", chunk_size=4, out=out, err=err, tty=False, clock=Clock(at=12),
        follow_sync=False,
    )  # fmt: skip
    assert code == bf.EXIT_INTERRUPTED, out.getvalue() + err.getvalue()
    assert "interrupted while queueing mapping listings: " in err.getvalue()
    in_queue = conn.execute("select table_name, count(*) as n from public.sync_queue group by 1").fetchall()
    assert {r["table_name"]: r["n"] for r in in_queue}["profiles"] == 10

    def sleep(seconds: float) -> None:  # the worker: syncs every row
        conn.execute("update public.sync_queue set status = 'completed', completed_at = now()")

    out = io.StringIO()
    code = bf.run_backfill(
        queue_db.dsn, mapping="all", chunk_size=4, out=out, err=err, tty=False, sleep=sleep,
    )  # fmt: skip
    text = out.getvalue()
    assert code == 0, text + err.getvalue()
    assert "mapping users: queued 0 rows" in text and "skipped 10" in text
    assert conn.execute("select count(*) as n from public.sync_queue").fetchone()["n"] == 30
    assert text.endswith("done: 30 synced, none failed\n")

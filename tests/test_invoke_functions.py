"""What reaches pg_net: the seed's two invoke functions (called by the cron jobs) and the immediate-dispatch
trigger with its debounce. Requests are only queued here (net.http_request_queue); nothing is delivered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from components.sql.params import DEFAULT_PARAMS
from components.sql.templates import DISPATCH_TRIGGER_FILE, QUEUE_FILES
from tests.conftest import Database, apply_sql

SUPABASE_URL = "https://abcdefghijklmnopqrst.supabase.co"
SERVICE_KEY = "sb_secret_NotARealKey_0123456789abcdef"
FUNCTION_URL = f"{SUPABASE_URL}/functions/v1/bubble_sync"


@pytest.fixture
def conn(shared_queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(shared_queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


def add_secrets(
    conn: psycopg.Connection[Any], *, url: str | None = SUPABASE_URL, key: str | None = SERVICE_KEY
) -> None:
    if url is not None:
        conn.execute("select vault.create_secret(%s, 'supabase_url')", (url,))
    if key is not None:
        conn.execute("select vault.create_secret(%s, 'service_role_key')", (key,))


def requests(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "select id, method, url, headers, convert_from(body, 'UTF8')::jsonb as body, timeout_milliseconds"
            " from net.http_request_queue order by id"
        )
        .fetchall()
    )


def insert_rows(
    conn: psycopg.Connection[Any], count: int = 1, *, status: str = "pending", **extra: Any
) -> None:
    """`count` single-row INSERT statements, each in its own transaction (the connection is autocommit)."""
    for _ in range(count):
        columns = ", ".join(["table_name", "record_id", "operation", "status", *extra])
        values = ", ".join(["'profiles'", "gen_random_uuid()::text", "'INSERT'", "%s"] + ["%s"] * len(extra))
        conn.execute(
            f"insert into public.sync_queue ({columns}) values ({values})", (status, *extra.values())
        )


def invoke(conn: psycopg.Connection[Any], function: str) -> tuple[Any, list[str]]:
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    row = conn.cursor(row_factory=psycopg.rows.tuple_row).execute(f"select public.{function}()").fetchone()
    assert row is not None
    return row[0], notices


# -- the seed's invoke functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "notice"),
    [
        ("invoke_bubble_sync_processor", "[bubble_sync_processor] No pending items in queue"),
        ("invoke_bubble_sync_retry", "[bubble_sync_retry] No failed items to retry"),
    ],
)
def test_nothing_to_do_is_a_notice_and_no_request(
    conn: psycopg.Connection[Any], function: str, notice: str
) -> None:
    add_secrets(conn)
    result, notices = invoke(conn, function)
    assert result is None
    assert notices == [notice]
    assert requests(conn) == []


def test_processor_sends_one_request_with_the_action_key_and_timeout(conn: psycopg.Connection[Any]) -> None:
    add_secrets(conn, url=SUPABASE_URL + "/")  # a trailing slash in the secret is harmless
    insert_rows(conn, 3)
    request_id, notices = invoke(conn, "invoke_bubble_sync_processor")
    (request,) = requests(conn)
    assert request["id"] == request_id
    assert (request["method"], request["url"]) == ("POST", FUNCTION_URL)
    assert request["body"] == {"action": "process_queue_data_api"}
    assert request["headers"] == {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {SERVICE_KEY}",
    }
    assert request["timeout_milliseconds"] == DEFAULT_PARAMS["http_timeout_ms"]
    assert notices == [
        "[bubble_sync_processor] Found 3 pending items, invoking Edge Function",
        f"[bubble_sync_processor] Edge Function invoked, request ID: {request_id}",
    ]
    assert not any(SERVICE_KEY in n for n in notices)


def test_retry_sends_one_request_for_due_failed_rows_only(conn: psycopg.Connection[Any]) -> None:
    add_secrets(conn)
    # not due yet, out of attempts, pending: none of these is the retry job's business
    insert_rows(conn, status="failed", retry_count=1, next_retry_at="2999-01-01T00:00:00Z")
    insert_rows(conn, status="failed", retry_count=3, max_retries=3)
    insert_rows(conn, 2)
    assert invoke(conn, "invoke_bubble_sync_retry")[0] is None
    insert_rows(conn, status="failed", retry_count=1, next_retry_at="2000-01-01T00:00:00Z")
    request_id, notices = invoke(conn, "invoke_bubble_sync_retry")
    (request,) = requests(conn)
    assert (request["id"], request["url"], request["body"]) == (
        request_id,
        FUNCTION_URL,
        {"action": "retry_failed"},
    )
    assert request["headers"]["Authorization"] == f"Bearer {SERVICE_KEY}"
    assert notices[0] == "[bubble_sync_retry] Found 1 failed items to retry"


def test_processor_counts_expired_leases_but_not_live_ones_or_rows_held_back(
    conn: psycopg.Connection[Any],
) -> None:
    add_secrets(conn)
    insert_rows(conn, status="processing", lease_token="00000000-0000-4000-8000-000000000001",
                lease_expires_at="2999-01-01T00:00:00Z")  # fmt: skip
    insert_rows(conn, next_retry_at="2999-01-01T00:00:00Z")  # waiting out a 429
    assert invoke(conn, "invoke_bubble_sync_processor")[0] is None
    insert_rows(conn, status="processing", lease_token="00000000-0000-4000-8000-000000000002",
                lease_expires_at="2000-01-01T00:00:00Z")  # fmt: skip
    assert invoke(conn, "invoke_bubble_sync_processor")[0] is not None
    assert len(requests(conn)) == 1


def test_timeout_comes_from_stack_config(queue_db: Database) -> None:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        apply_sql(c, "functions/invoke.sql", {"http_timeout_ms": 120_000})
        add_secrets(c)
        insert_rows(c)
        invoke(c, "invoke_bubble_sync_processor")
        assert [r["timeout_milliseconds"] for r in requests(c)] == [120_000]


@pytest.mark.parametrize("missing", ["supabase_url", "service_role_key"])
@pytest.mark.parametrize("function", ["invoke_bubble_sync_processor", "invoke_bubble_sync_retry"])
def test_a_missing_secret_is_an_error_naming_it(
    conn: psycopg.Connection[Any], function: str, missing: str
) -> None:
    add_secrets(conn, **{"url" if missing == "supabase_url" else "key": None})
    insert_rows(conn)
    insert_rows(conn, status="failed", retry_count=1)
    with pytest.raises(psycopg.errors.NoDataFound) as excinfo:
        invoke(conn, function)
    message = str(excinfo.value)
    assert f'Vault secret "{missing}" is missing' in message
    assert SERVICE_KEY not in message and SERVICE_KEY not in (excinfo.value.diag.message_hint or "")
    assert requests(conn) == []


def test_an_empty_secret_counts_as_missing(conn: psycopg.Connection[Any]) -> None:
    add_secrets(conn, key="")
    insert_rows(conn)
    with pytest.raises(psycopg.errors.NoDataFound, match='"service_role_key" is missing or empty'):
        invoke(conn, "invoke_bubble_sync_processor")


def test_seeds_manual_test_works_unqualified(conn: psycopg.Connection[Any]) -> None:
    add_secrets(conn)
    insert_rows(conn)
    assert isinstance(
        conn.execute("SELECT invoke_bubble_sync_processor();").fetchone()["invoke_bubble_sync_processor"], int
    )


def test_the_seeds_void_functions_are_replaced(db: Database) -> None:
    seed_version = "create function public.{}() returns void language plpgsql as $$ begin end $$"
    with psycopg.connect(db.dsn) as c:  # one transaction, as the provider applies a file
        c.execute(seed_version.format("invoke_bubble_sync_processor"))
        c.execute(seed_version.format("invoke_bubble_sync_retry"))
        for relative_path in QUEUE_FILES:
            apply_sql(c, relative_path)
        returns = c.execute(
            "select proname, prorettype::regtype::text from pg_proc where proname like 'invoke_bubble_sync_%'"
            " order by 1"
        ).fetchall()
    assert returns == [("invoke_bubble_sync_processor", "bigint"), ("invoke_bubble_sync_retry", "bigint")]


def test_rolled_back_invocation_leaves_no_request(
    shared_queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    add_secrets(conn)
    insert_rows(conn)
    with psycopg.connect(shared_queue_db.dsn) as c:
        c.execute("select public.invoke_bubble_sync_processor()")
        c.rollback()
    assert requests(conn) == []


# -- immediate dispatch --------------------------------------------------------------------------------------


@pytest.fixture
def dispatch(shared_queue_db: Database, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The queue with immediate dispatch switched on and Vault set up; returns an autocommit connection."""
    apply_sql(conn, DISPATCH_TRIGGER_FILE)
    add_secrets(conn)
    return conn


def claim(
    conn: psycopg.Connection[Any], action: str = "process_queue_data_api", limit: int = 10
) -> list[str]:
    rows = (
        conn.cursor(row_factory=psycopg.rows.tuple_row)
        .execute("select record_id from bubble_sync.claim(%s, %s)", (action, limit))
        .fetchall()
    )
    return [r[0] for r in rows]


def test_without_the_trigger_inserts_send_nothing(conn: psycopg.Connection[Any]) -> None:
    add_secrets(conn)
    insert_rows(conn, 5)
    assert requests(conn) == []


def test_a_burst_of_200_single_row_transactions_sends_one_request(dispatch: psycopg.Connection[Any]) -> None:
    insert_rows(dispatch, 100)
    for i in range(100):
        dispatch.execute("select bubble_sync.enqueue('profiles', %s, 'INSERT', '{}')", (f"e{i}",))
    assert dispatch.execute("select count(*) as n from public.sync_queue").fetchone() == {"n": 200}
    (request,) = requests(dispatch)
    assert (request["url"], request["body"]) == (FUNCTION_URL, {"action": "process_queue_data_api"})
    assert request["headers"]["Authorization"] == f"Bearer {SERVICE_KEY}"


def test_concurrent_inserters_still_send_one_request(
    shared_queue_db: Database, dispatch: psycopg.Connection[Any]
) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def inserter() -> None:
        try:
            with psycopg.connect(shared_queue_db.dsn, autocommit=True) as c:
                start.wait()
                insert_rows(c, 25)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=inserter) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert dispatch.execute("select count(*) as n from public.sync_queue").fetchone() == {"n": 200}
    assert len(requests(dispatch)) == 1


def test_each_process_claim_allows_one_more_request(dispatch: psycopg.Connection[Any]) -> None:
    # 50 rounds of 4 inserts and one worker claim: one wake per round, however many rows (the bound:
    # requests <= 1 + process claims)
    for _ in range(50):
        insert_rows(dispatch, 4)
        assert len(claim(dispatch)) == 4
    assert len(requests(dispatch)) == 50
    assert dispatch.execute(
        "select count(*) as n from public.sync_queue where status = 'pending'"
    ).fetchone() == {"n": 0}


def test_retry_claims_do_not_consume_the_wake(dispatch: psycopg.Connection[Any]) -> None:
    insert_rows(dispatch)
    claim(dispatch, "retry_failed")
    insert_rows(dispatch)
    assert len(requests(dispatch)) == 1


def test_one_statement_inserting_many_rows_sends_one_request(dispatch: psycopg.Connection[Any]) -> None:
    dispatch.execute(
        "insert into public.sync_queue (table_name, record_id, operation)"
        " select 'profiles', g::text, 'INSERT' from generate_series(1, 500) g"
    )
    assert len(requests(dispatch)) == 1


def test_rows_that_are_not_due_wake_nobody(dispatch: psycopg.Connection[Any]) -> None:
    insert_rows(dispatch, status="completed")
    insert_rows(dispatch, status="failed", retry_count=1)
    insert_rows(dispatch, next_retry_at="2999-01-01T00:00:00Z")
    assert requests(dispatch) == []


def test_dispatch_can_be_skipped_for_one_transaction(
    shared_queue_db: Database, dispatch: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(shared_queue_db.dsn) as c:
        c.execute("set local bubble_sync.dispatch = 'off'")
        insert_rows(c, 10)
    assert requests(dispatch) == []
    insert_rows(dispatch)
    assert len(requests(dispatch)) == 1


def test_a_lost_wake_is_replaced_after_the_rewake_horizon(dispatch: psycopg.Connection[Any]) -> None:
    insert_rows(dispatch)
    horizon = DEFAULT_PARAMS["dispatch_rewake_after"]
    dispatch.execute(
        "update bubble_sync.dispatch_state"
        " set wake_requested_at = clock_timestamp() - %s + interval '1 second'",
        (horizon,),
    )
    insert_rows(dispatch)
    assert len(requests(dispatch)) == 1  # still fresh enough
    dispatch.execute(
        "update bubble_sync.dispatch_state set wake_requested_at = clock_timestamp() - %s", (horizon,)
    )
    insert_rows(dispatch)
    assert len(requests(dispatch)) == 2


def test_a_failing_dispatch_never_fails_the_insert(
    shared_queue_db: Database, conn: psycopg.Connection[Any]
) -> None:
    apply_sql(conn, DISPATCH_TRIGGER_FILE)  # Vault not set up
    warnings: list[str] = []
    conn.add_notice_handler(lambda diag: warnings.append(f"{diag.severity}: {diag.message_primary}"))
    insert_rows(conn)
    assert conn.execute("select count(*) as n from public.sync_queue").fetchone() == {"n": 1}
    assert requests(conn) == []
    assert any(w.startswith("WARNING: bubble_sync: immediate dispatch skipped") for w in warnings)
    assert conn.execute("select wake_requested_at from bubble_sync.dispatch_state").fetchone() == {
        "wake_requested_at": None
    }
    add_secrets(conn)
    insert_rows(conn)  # once Vault is fixed, the next insert wakes the worker
    assert len(requests(conn)) == 1


def _wait_until_blocked(conn: psycopg.Connection[Any], pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = conn.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
        if row and row["wait_event_type"] == "Lock":
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


def test_a_claim_waits_for_an_inserter_that_relied_on_its_wake(
    shared_queue_db: Database, dispatch: psycopg.Connection[Any]
) -> None:
    insert_rows(dispatch)  # posts the wake
    with (
        psycopg.connect(shared_queue_db.dsn) as inserter,
        psycopg.connect(shared_queue_db.dsn, autocommit=True) as worker,
    ):
        inserter.execute(
            "insert into public.sync_queue (table_name, record_id, operation)"
            " values ('profiles', 'late', 'INSERT')"
        )  # saw the outstanding wake and posted nothing; holds the dispatch lock until it commits
        worker_pid = worker.info.backend_pid
        claimed: list[str] = []
        thread = threading.Thread(target=lambda: claimed.extend(claim(worker)))
        thread.start()
        _wait_until_blocked(dispatch, worker_pid)
        inserter.commit()
        thread.join(timeout=10)
    assert "late" in claimed and len(claimed) == 2  # the claim saw the row it had waited for
    assert len(requests(dispatch)) == 1


def test_a_claim_does_not_wait_when_no_wake_is_outstanding(
    shared_queue_db: Database, dispatch: psycopg.Connection[Any]
) -> None:
    insert_rows(dispatch)
    claim(dispatch)  # consumed
    with (
        psycopg.connect(shared_queue_db.dsn) as inserter,
        psycopg.connect(shared_queue_db.dsn, autocommit=True) as worker,
    ):
        inserter.execute(
            "insert into public.sync_queue (table_name, record_id, operation)"
            " values ('profiles', 'next', 'INSERT')"
        )  # posts a wake of its own, sent when it commits
        worker.execute("set lock_timeout = '5s'")
        assert claim(worker) == []  # did not block on the inserter
        inserter.commit()
    assert len(requests(dispatch)) == 2
    assert claim(dispatch) == ["next"]

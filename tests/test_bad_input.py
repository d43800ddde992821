"""Bad input, end to end: each one gives a clear error at the right place and harms nothing else.

Why one module: its tests share one module-scoped stack (database, Bubble double, function host, cron probe)
and read together as the catalogue, listed below, of where each bad input is caught.

Where each bad input is caught:
  * queue rows the function cannot or must not send (payload not an object, an operation it does not know,
    an oversized payload, an UPDATE of a record Bubble never had, fields Bubble refuses, a revoked token): the
    row is failed for good with the reason in `error_message`; the other rows of the same run still sync;
  * a missing Vault secret: `invoke_bubble_sync_processor()` raises naming it, which pg_cron records as a
    failed run in `cron.job_run_details`;
  * the function's own secrets missing or invalid: 500 naming the variable, before any claim;
  * invalid stack config: `load_config` and the Pulumi program raise `ConfigError` naming the key, before any
    resource is registered;
  * a bad request to the function: 400/401/405 before any claim, the queue untouched.
No secret (Bubble token, service keys, database password) may appear in any message, row or log line.

Runs against the local stack: real PostgreSQL and pg_cron, the function served by Deno, the Bubble double.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from components.config import PROJECT, ConfigError, load_config
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster
from devstack.pgnet_worker import NetWorker
from tests.bad_input_support import (
    BUBBLE_PATH,
    BUBBLE_TOKEN,
    LEGACY_KEY,
    PROCESS,
    REPO,
    RETRY,
    REVOKED_TOKEN_HINT,
    SECRET_KEY,
    Host,
    assert_dead,
    assert_synced,
    bubble_requests_for,
    database_password,
    enqueue_good,
    insert_raw,
    restore_pulumi_settings,
    row,
    run_program,
    saved_pulumi_settings,
    snapshot,
    start_host,
)
from tests.conftest import Database, fresh_database
from tests.function_support import empty_queue_and_bubble

Conn = psycopg.Connection[dict[str, Any]]
UNKNOWN_OP = 'unknown operation "{}": bubble_sync sends INSERT (create), UPDATE (modify) and DELETE'
NOT_AN_OBJECT = "payload must be a JSON object of Bubble fields, got {}"
CRON_JOB = "badinput-vault-probe"  # not bubble-sync%: the seed's check lists exactly its jobs


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cron_probe(cluster: Cluster, queue_template: str) -> Iterator[tuple[Database, int, float]]:
    """A queue database with one waiting row and no Vault secrets, and a pg_cron job (scheduled from the
    shared `postgres` database, run in this one) calling the seed's processor there every minute. Scheduled
    when the module starts, so its minute tick passes while the other tests run; unscheduled at the end."""
    with fresh_database(cluster, queue_template) as database:
        with database.connect() as conn:
            enqueue_good(conn, 1, prefix="cron")
            assert conn.execute("select count(*) from vault.secrets").fetchone() == (0,)
        cron_dsn = cluster.dsn("postgres")  # as `postgres`: the job runs as its scheduler
        with psycopg.connect(cron_dsn, autocommit=True) as conn:
            (jobid,) = conn.execute(
                "select cron.schedule_in_database(%s, '* * * * *', %s, %s)",
                (CRON_JOB, "select public.invoke_bubble_sync_processor()", database.name),
            ).fetchone()
        try:
            yield database, jobid, time.time()
        finally:
            with psycopg.connect(cron_dsn, autocommit=True) as conn:
                conn.execute("select cron.unschedule(jobid) from cron.job where jobname = %s", (CRON_JOB,))
            with psycopg.connect(cluster.admin_dsn("postgres"), autocommit=True) as conn:
                conn.execute("delete from cron.job_run_details where jobid = %s", (jobid,))


@pytest.fixture(scope="module")
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=BUBBLE_TOKEN, seed=11) as double:
        yield double


@pytest.fixture(scope="module")
def database(
    cluster: Cluster, queue_template: str, cron_probe: tuple[Database, int, float]
) -> Iterator[Database]:
    """One queue database for the function's tests, shaped like an adopted hand-made queue: such a table has
    no CHECK on `operation` (sql/queue_schema.sql adds constraints only to a table it creates), so it may
    hold DELETE or SIGNUP_ATOMIC rows. (Requests `cron_probe` only to start its minute early.)"""
    with fresh_database(cluster, queue_template) as db:
        with db.connect() as conn:
            conn.execute("alter table public.sync_queue drop constraint sync_queue_operation_valid")
        yield db


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory, database: Database, bubble: BubbleDouble
) -> Iterator[Host]:
    yield from start_host(tmp_path_factory.mktemp("bad_input_host"), database, bubble)


@pytest.fixture
def conn(database: Database, bubble: BubbleDouble) -> Iterator[Conn]:
    """An empty queue and an empty, healthy Bubble that accepts our token."""
    with psycopg.connect(database.dsn, autocommit=True, row_factory=dict_row) as c:
        empty_queue_and_bubble(c, bubble, token=BUBBLE_TOKEN)
        yield c
        # whatever the test fed in, the queue is left consistent: no row held, every row in a known state
        broken = c.execute(
            "select id, record_id, status, lease_token from public.sync_queue"
            " where status not in ('pending', 'completed', 'failed') or lease_token is not null"
            " or (status = 'failed' and error_message is null)"
        ).fetchall()
        assert broken == [], f"the queue was left inconsistent: {broken}"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60, trust_env=False) as c:
        yield c


def run(client: httpx.Client, host: Host, action: str = PROCESS) -> dict[str, Any]:
    response = client.post(
        host.function_url,
        json={"action": action, "wait": True},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def counts(summary: dict[str, Any]) -> dict[str, int]:
    keys = ("claimed", "completed", "failed", "deferred", "permanently_failed", "lease_lost", "unreported")
    return {k: summary[k] for k in keys}


def no_secret_in(*texts: str, extra: tuple[str, ...] = ()) -> None:
    for text in texts:
        for secret in (BUBBLE_TOKEN, REVOKED_TOKEN_HINT, SECRET_KEY, LEGACY_KEY, *extra):
            assert secret not in text


# --- malformed payloads -------------------------------------------------------------------------------------


def test_payloads_that_are_not_objects_fail_only_their_row_without_reaching_bubble(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    good = enqueue_good(conn, 6)
    bad = {
        "array": ("'[1, 2, 3]'", "an array"),
        "string": ("'\"just a string\"'", "string"),
        "number": ("'42'", "number"),
        "boolean": ("'true'", "boolean"),
        "json-null": ("'null'", "null"),
    }
    for record_id, (payload_sql, _) in bad.items():
        insert_raw(conn, record_id, payload_sql)
    good += enqueue_good(conn, 6, prefix="ok2")  # after the bad rows, in the same claim

    summary = run(client, host)
    assert counts(summary) == {
        "claimed": 17,
        "completed": 12,
        "failed": 0,
        "deferred": 0,
        "permanently_failed": 5,
        "lease_lost": 0,
        "unreported": 0,
    }
    for record_id, (_, what) in bad.items():
        assert_dead(row(conn, record_id), NOT_AN_OBJECT.format(what))
        assert bubble_requests_for(bubble, record_id) == []
    assert_synced(conn, bubble, good)
    # one create per good row, nothing else sent
    assert [(r["method"], r["path"], r["status"]) for r in bubble.requests()] == [
        ("POST", BUBBLE_PATH, 201)
    ] * 12
    assert run(client, host, RETRY)["claimed"] == 0, "a dead row was retried"


def test_field_values_bubble_refuses_fail_only_their_row_with_bubbles_reason(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    good = enqueue_good(conn, 4)
    refused = {
        "bad-email": (
            {"email": "not-an-email"},
            "Bubble answered 400 NOT_VALID_EMAIL: 'not-an-email' is not a valid email address",
        ),
        "numeric-email": (
            {"email": 42},
            "Bubble answered 400 NOT_VALID_EMAIL: 42 is not a valid email address",
        ),
        "builtin-field": (
            {"email": "b@example.com", "_id": "123x456"},
            "Bubble answered 400 INVALID_DATA: built-in fields cannot be set: ['_id']",
        ),
    }
    for record_id, (payload, _) in refused.items():
        conn.execute("select bubble_sync.enqueue('profiles', %s, 'INSERT', %s)", (record_id, Jsonb(payload)))
    # A payload trying to claim another record's external key cannot: the function sets the key last.
    conn.execute(
        "select bubble_sync.enqueue('profiles', 'hijack', 'INSERT', %s)",
        (Jsonb({"email": "hijack@example.com", "supabase_id": "profiles:ok000"}),),
    )
    good.append("hijack")

    summary = run(client, host)
    assert (summary["completed"], summary["permanently_failed"], summary["failed"]) == (5, 3, 0), summary
    for record_id, (_, message) in refused.items():
        assert_dead(row(conn, record_id), message)
    assert_synced(conn, bubble, good)
    assert run(client, host, RETRY)["claimed"] == 0


def test_oversized_payload_fails_only_its_row_and_is_never_sent(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    good = enqueue_good(conn, 3)
    big = "x" * (1024 * 1024 + 10)
    conn.execute(
        "select bubble_sync.enqueue('profiles', 'huge', 'INSERT', %s)",
        (Jsonb({"email": "huge@example.com", "bio": big}),),
    )
    # just under the limit: sent and synced (the limit is on what is sent, key included)
    conn.execute(
        "select bubble_sync.enqueue('profiles', 'large', 'INSERT', %s)",
        (Jsonb({"email": "large@example.com", "bio": "y" * (1024 * 1024 - 200)}),),
    )
    good += enqueue_good(conn, 3, prefix="ok2") + ["large"]

    summary = run(client, host)
    assert (summary["completed"], summary["permanently_failed"]) == (7, 1), summary
    huge = row(conn, "huge")
    size = len(
        json.dumps(
            {"email": "huge@example.com", "bio": big, "supabase_id": "profiles:huge"}, separators=(",", ":")
        )
    )
    assert_dead(huge, f"payload is {size} bytes, more than the 1048576 bytes bubble_sync sends")
    assert huge["payload"]["bio"] == big, "the row's payload was changed"
    assert_synced(conn, bubble, good)
    assert all(r["body_bytes"] < 1024 * 1024 for r in bubble.requests()), "the oversized payload was sent"
    assert len(bubble.requests()) == 7


# --- unknown operations, UPDATEs of records Bubble never had ------------------------------------------------


def test_unknown_operations_fail_their_row_with_the_reason(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    good = enqueue_good(conn, 4)
    for op in ("SIGNUP_ATOMIC", "UPSERT", ""):
        insert_raw(
            conn,
            f"op-{op or 'empty'}",
            '\'{"email": "op-%s@example.com"}\'' % (op.lower() or "empty"),
            operation=op,
        )
    # lower case is accepted (the function upper-cases the operation)
    insert_raw(conn, "op-lower", '\'{"email": "lower@example.com"}\'', operation="insert")
    good.append("op-lower")

    summary = run(client, host)
    assert (summary["completed"], summary["permanently_failed"]) == (5, 3), summary
    for op in ("SIGNUP_ATOMIC", "UPSERT", ""):
        record_id = f"op-{op or 'empty'}"
        assert_dead(row(conn, record_id), UNKNOWN_OP.format(op))
        assert bubble_requests_for(bubble, record_id) == []
    assert_synced(conn, bubble, good)


def test_an_update_merged_into_a_waiting_signup_atomic_row_is_dead_lettered_with_it(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    """enqueue() treats an adopted table's SIGNUP_ATOMIC as a create and keeps that operation when a newer
    change replaces the waiting row; the function does not know it, so the merged change never reaches Bubble.
    This pins today's behaviour (see the report: the two sides disagree)."""
    insert_raw(conn, "atomic", '\'{"email": "atomic@example.com"}\'', operation="SIGNUP_ATOMIC")
    conn.execute(
        "select bubble_sync.enqueue('profiles', 'atomic', 'UPDATE', %s)",
        (Jsonb({"email": "atomic@example.com", "first_name": "Edited"}),),
    )
    merged = row(conn, "atomic")
    assert (merged["operation"], merged["payload"]["first_name"]) == ("SIGNUP_ATOMIC", "Edited")
    run(client, host)
    assert_dead(row(conn, "atomic"), UNKNOWN_OP.format("SIGNUP_ATOMIC"))
    assert bubble.records("user", env="test") == []


def test_an_update_of_a_record_bubble_never_had_fails_for_good_saying_so(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    good = enqueue_good(conn, 3)
    conn.execute(
        "select bubble_sync.enqueue('profiles', 'ghost', 'UPDATE', %s)", (Jsonb({"first_name": "Nobody"}),)
    )
    # an adopted row that names a Bubble id Bubble does not have (deleted there, or another app's)
    insert_raw(conn, "stale", '\'{"first_name": "Stale"}\'', operation="UPDATE", bubble_id="1700000000000x1")
    good += enqueue_good(conn, 3, prefix="ok2")

    summary = run(client, host)
    assert (summary["completed"], summary["permanently_failed"]) == (6, 2), summary
    assert_dead(
        row(conn, "ghost"),
        'no Bubble user has supabase_id = "profiles:ghost" to modify (was its INSERT synced?)',
    )
    assert_dead(
        row(conn, "stale"),
        "modifying 1700000000000x1: Bubble answered 404 MISSING_DATA: Missing object of type user: "
        "object with id 1700000000000x1 does not exist",
    )
    assert_synced(conn, bubble, good)
    # an UPDATE never creates: Bubble holds exactly the good rows
    assert len(bubble.records("user", env="test")) == len(good)
    assert run(client, host, RETRY)["claimed"] == 0


def test_two_signups_with_one_email_one_syncs_the_other_fails_naming_the_owner(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    good = enqueue_good(conn, 3)
    for record_id in ("twin-a", "twin-b"):
        conn.execute(
            "select bubble_sync.enqueue('profiles', %s, 'INSERT', %s)",
            (record_id, Jsonb({"email": "Twin@Example.com"})),
        )
    summary = run(client, host)
    assert (summary["completed"], summary["permanently_failed"]) == (4, 1), summary
    twins = {r: row(conn, r) for r in ("twin-a", "twin-b")}
    (winner,) = [r for r, found in twins.items() if found["status"] == "completed"]
    (loser,) = [r for r, found in twins.items() if found["status"] == "failed"]
    assert_synced(conn, bubble, [*good, winner])
    assert_dead(
        twins[loser],
        f"the email is already used by Bubble user {twins[winner]['bubble_id']}, which belongs to "
        f'supabase_id "profiles:{winner}"',
    )
    assert len(bubble.records("user", env="test")) == 4


def test_the_producer_side_refuses_bad_operations_and_keys_naming_them(conn: Conn) -> None:
    cases = {
        ("UPSERT", "r1"): "bubble_sync.enqueue: operation must be INSERT, UPDATE or DELETE, got 'UPSERT'",
        (None, "r1"): "bubble_sync.enqueue: operation must be INSERT, UPDATE or DELETE, got NULL",
        ("INSERT", ""): "bubble_sync.enqueue: table name and record id are required (got 'profiles', '')",
    }
    for (operation, record_id), message in cases.items():
        with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
            conn.execute(
                "select bubble_sync.enqueue('profiles', %s, %s, '{}'::jsonb)", (record_id, operation)
            )
        assert info.value.diag.message_primary == message
    assert conn.execute("select count(*) as n from public.sync_queue").fetchone()["n"] == 0


def test_adopted_rows_without_a_record_id_are_refused_not_synced_under_a_shared_key(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    # an adopted table's record_id column is nullable (sql/queue_schema.sql adds it without NOT NULL)
    conn.execute("alter table public.sync_queue alter column record_id drop not null")
    try:
        good = enqueue_good(conn, 2)
        insert_raw(conn, None, '\'{"email": "n1@example.com"}\'')  # type: ignore[arg-type]
        insert_raw(conn, None, '\'{"email": "n2@example.com"}\'')  # type: ignore[arg-type]
        summary = run(client, host)
        assert_synced(conn, bubble, good)
        keys = [r.get("supabase_id") for r in bubble.records("user", env="test")]
        nameless = conn.execute(
            "select status, error_message from public.sync_queue where record_id is null"
        ).fetchall()
        assert "profiles:" not in keys, keys
        assert summary["permanently_failed"] == 2 and all(r["status"] == "failed" for r in nameless)
    finally:
        conn.execute("delete from public.sync_queue where record_id is null")
        conn.execute("alter table public.sync_queue alter column record_id set not null")


def test_the_signup_trigger_refuses_a_table_it_cannot_read_naming_the_column(queue_db: Database) -> None:
    """Pins today's behaviour of bubble_sync.enqueue_change on bad input from the user's own table. It fails
    loudly, naming the column, but inside the user's transaction: a dropped allow-listed column or a wrong key
    column makes every signup INSERT fail, not just its sync (see the report). Credential-like columns never
    reach the payload."""
    with queue_db.connect() as conn:
        conn.execute(
            "create table public.profiles (id uuid primary key default gen_random_uuid(), email text,"
            " first_name text, encrypted_password text, recovery_token text)"
        )
        conn.execute(
            "create trigger sync_all after insert or update on public.profiles"
            " for each row execute function bubble_sync.enqueue_change()"
        )
        conn.execute(
            "insert into public.profiles (email, first_name, encrypted_password, recovery_token)"
            " values ('a@example.com', 'Ada', '$2a$10$hash', 'tok-123')"
        )
        (payload,) = conn.execute("select payload from public.sync_queue").fetchone()
        assert payload.keys() == {"id", "email", "first_name"}, payload

        conn.execute("drop trigger sync_all on public.profiles")
        conn.execute(
            "create trigger sync_listed after insert or update on public.profiles"
            " for each row execute function bubble_sync.enqueue_change('id', 'email', 'first_name')"
        )
        conn.execute("alter table public.profiles drop column first_name")
        with pytest.raises(psycopg.errors.RaiseException) as info:
            conn.execute("insert into public.profiles (email) values ('b@example.com')")
        assert info.value.diag.message_primary == (
            "bubble_sync.enqueue_change: public.profiles has no column first_name (in the payload allow-list)"
        )

        conn.execute("drop trigger sync_listed on public.profiles")
        conn.execute(
            "create trigger sync_bad_key after insert or update on public.profiles"
            " for each row execute function bubble_sync.enqueue_change('user_id')"
        )
        with pytest.raises(psycopg.errors.RaiseException) as info:
            conn.execute("insert into public.profiles (email) values ('c@example.com')")
        assert info.value.diag.message_primary == (
            "bubble_sync.enqueue_change: public.profiles has no key column user_id"
        )
        assert "first argument" in (info.value.diag.message_hint or "")
        # the refused signups are not in the user's table either, and the queue holds only the first one
        assert conn.execute("select count(*) from public.profiles").fetchone() == (1,)
        assert conn.execute("select count(*) from public.sync_queue").fetchone() == (1,)


# --- a revoked Bubble token ---------------------------------------------------------------------------------


def test_a_revoked_token_pauses_the_run_without_using_attempts_and_recovers_once_fixed(
    conn: Conn, client: httpx.Client, host: Host, bubble: BubbleDouble
) -> None:
    """Bubble's 401 is about the token, not the row: the run stops sending at once, the rows it holds go back
    to the queue without using an attempt (like a 429, for 5 minutes), and nothing leaks the token. Fixing the
    token lets every row sync, each exactly once, with no operator requeue."""
    ids = enqueue_good(conn, 120)
    bubble.configure(token=REVOKED_TOKEN_HINT)  # Bubble no longer accepts the function's token

    summary = run(client, host)
    assert summary["permanently_failed"] == 0 and summary["completed"] == 0, summary
    assert summary["deferred"] == summary["claimed"] > 0, summary
    assert summary["bubble_requests"] <= 5, "the run stops sending after the first refusals (concurrency 5)"
    dead = conn.execute(
        "select count(*) as n from public.sync_queue where status = 'failed' or retry_count > 0"
    ).fetchone()["n"]
    assert dead == 0, "a refused token must not use up any row's attempts"
    waiting = conn.execute(
        "select count(*) filter (where next_retry_at > now() + interval '4 minutes') as paused,"
        " count(*) filter (where error_message like 'refused token: %') as told,"
        " count(*) filter (where error_message like '%Bubble refused the API token%') as refused"
        " from public.sync_queue"
    ).fetchone()
    assert waiting["paused"] == summary["deferred"]
    # every deferred row names the real cause (not a rate limit), the ones Bubble answered say so
    assert waiting["told"] == summary["deferred"] and waiting["refused"] >= 1, waiting
    assert summary["stopped_by"] == "token_refused", summary
    no_secret_in(json.dumps(summary), host.log())
    stored = conn.execute(
        "select string_agg(to_jsonb(q)::text, ' ') as t from public.sync_queue q"
    ).fetchone()
    no_secret_in(stored["t"])

    # The token is fixed; once the pause is over (moved forward here instead of waiting), everything syncs.
    bubble.configure(token=BUBBLE_TOKEN)
    conn.execute("update public.sync_queue set next_retry_at = now() - interval '1 second'")
    fresh = enqueue_good(conn, 5, prefix="new")
    summary = run(client, host)
    assert summary["completed"] == 125, summary
    assert_synced(conn, bubble, ids + fresh)


# --- a missing Vault secret ---------------------------------------------------------------------------------


def test_a_missing_vault_secret_raises_naming_it_and_never_its_value(queue_db: Database) -> None:
    service_key = "sb_secret_VAULT_VALUE_never_shown_4411"
    with queue_db.connect() as conn:
        # nothing waiting: nothing to invoke, so nothing is checked (NULL, a notice)
        assert conn.execute("select public.invoke_bubble_sync_processor()").fetchone() == (None,)
        enqueue_good(conn, 2)
        before = snapshot(conn)
        for function in ("invoke_bubble_sync_processor", "invoke_bubble_sync_retry"):
            if function == "invoke_bubble_sync_retry":
                conn.execute("update public.sync_queue set status = 'failed', retry_count = 1")
                before = snapshot(conn)
            with pytest.raises(psycopg.errors.NoDataFound) as info:
                conn.execute(f"select public.{function}()")
            assert (
                info.value.diag.message_primary
                == 'bubble_sync: Vault secret "supabase_url" is missing or empty'
            )
            assert "vault.create_secret" in (info.value.diag.message_hint or "")

        conn.execute("select vault.create_secret(%s, 'service_role_key')", (service_key,))
        conn.execute("select vault.create_secret('', 'supabase_url')")  # empty counts as missing
        with pytest.raises(psycopg.errors.NoDataFound) as info:
            conn.execute("select public.invoke_bubble_sync_retry()")
        assert (
            info.value.diag.message_primary == 'bubble_sync: Vault secret "supabase_url" is missing or empty'
        )
        assert service_key not in str(info.value)

        conn.execute("delete from vault.secrets")
        conn.execute("select vault.create_secret('http://127.0.0.1:54321', 'supabase_url')")
        with pytest.raises(psycopg.errors.NoDataFound) as info:
            conn.execute("select public.invoke_bubble_sync_retry()")
        assert (
            info.value.diag.message_primary
            == 'bubble_sync: Vault secret "service_role_key" is missing or empty'
        )

        # nothing was sent, and the queue is as it was
        assert conn.execute("select count(*) from net.http_request_queue").fetchone() == (0,)
        assert snapshot(conn) == before


def test_a_stale_service_key_in_vault_is_refused_by_the_function_and_shows_only_in_pg_net(
    conn: Conn, host: Host, bubble: BubbleDouble, database: Database
) -> None:
    """A key in Vault that the function no longer accepts (rotated without updating Vault) raises nothing in
    the database: the invocation is queued and its 401 is recorded only in net._http_response; the rows wait,
    untouched. Once Vault holds the current key, the same call syncs them."""
    ids = enqueue_good(conn, 2)
    before = snapshot(conn)
    base = host.url.removesuffix("/functions/v1")
    conn.execute("select vault.create_secret(%s, 'supabase_url')", (base,))
    (key_id,) = (
        conn.execute(
            "select vault.create_secret('sb_secret_STALE_rotated_away_77', 'service_role_key') as id"
        )
        .fetchone()
        .values()
    )
    try:
        with NetWorker(database.admin_dsn):
            stale = wait_for_response(conn, invoke_processor(conn))
            assert (stale["status_code"], stale["error_msg"]) == (401, None), stale
            assert json.loads(stale["content"])["error"] == "unauthorized"
            assert "sb_secret_STALE" not in stale["content"]
            assert snapshot(conn) == before, "a refused invocation touched the queue"

            conn.execute("select vault.update_secret(%s, %s)", (key_id, SECRET_KEY))
            fixed = wait_for_response(conn, invoke_processor(conn))
            assert fixed["status_code"] == 202, fixed
            deadline = time.monotonic() + 10
            while conn.execute(
                "select count(*) as n from public.sync_queue where status <> 'completed'"
            ).fetchone()["n"]:
                assert time.monotonic() < deadline, "the rows did not sync after the key was fixed"
                time.sleep(0.05)
        assert_synced(conn, bubble, ids)
    finally:
        conn.execute("delete from vault.secrets")
        conn.execute("delete from net.http_request_queue")


def invoke_processor(conn: Conn) -> int:
    request_id = conn.execute("select public.invoke_bubble_sync_processor() as id").fetchone()["id"]
    assert request_id is not None
    return int(request_id)


def wait_for_response(conn: Conn, request_id: int, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = conn.execute("select * from net._http_response where id = %s", (request_id,)).fetchone()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"pg_net never answered request {request_id}"
        time.sleep(0.05)


# --- invalid stack config -----------------------------------------------------------------------------------

REF = "abcdefghijklmnopqrst"
SERVICE_KEY = "svc-BADINPUT-SECRET-7f3a"
STACK_BUBBLE_TOKEN = "bubble-BADINPUT-SECRET-91c2"
DB_PASSWORD = "db-BADINPUT-SECRET-44d0"
ACCESS_TOKEN = "sbp_BADINPUT_SECRET_0a1b"
STACK_SECRETS = (SERVICE_KEY, STACK_BUBBLE_TOKEN, DB_PASSWORD, ACCESS_TOKEN)
SECRET_KEYS = ["databaseUrl", "dbPassword", "serviceRoleKey", "supabaseAccessToken", "bubbleApiToken"]
VALID = {
    "projectRef": REF,
    "dbHost": f"db.{REF}.supabase.co",
    "dbPassword": DB_PASSWORD,
    "serviceRoleKey": SERVICE_KEY,
    "bubbleBaseUrl": "https://myapp.bubbleapps.io/version-test/api/1.1",
    "bubbleApiToken": STACK_BUBBLE_TOKEN,
    "supabaseAccessToken": ACCESS_TOKEN,
}

# (overrides, the key the error must name, a fragment of its reason)
INVALID_CONFIG = {
    "cron-minute-out-of-range": (
        {"processorSchedule": "61 * * * *"},
        "processorSchedule",
        "61 is outside 0-59",
    ),
    "cron-zero-step": ({"retrySchedule": "*/0 * * * *"}, "retrySchedule", "step '0' must be a number"),
    "cron-words": ({"processorSchedule": "every minute"}, "processorSchedule", "expected 5 fields"),
    "cron-six-fields": ({"maintenanceSchedule": "0 0 3 * * *"}, "maintenanceSchedule", "expected 5 fields"),
    "cron-reboot": ({"maintenanceSchedule": "@reboot"}, "maintenanceSchedule", "not a recurring schedule"),
    "cron-60-seconds": ({"processorSchedule": "60 seconds"}, "processorSchedule", "1-59 seconds"),
    "ref-upper-case": ({"projectRef": REF.upper()}, "projectRef", "exactly 20 lowercase letters"),
    "ref-too-short": ({"projectRef": "abcdef"}, "projectRef", "(6 characters)"),
    "ref-a-url": ({"projectRef": f"https://{REF}.supabase.co"}, "projectRef", "exactly 20 lowercase letters"),
    "ref-missing": ({"projectRef": None}, "projectRef", "is required"),
    "ref-other-project-host": (
        {"dbHost": "db.zyxwvutsrqponmlkjihg.supabase.co"},
        "dbHost",
        "belongs to project",
    ),
    "bubble-url-not-a-url": (
        {"bubbleBaseUrl": "myapp.bubbleapps.io"},
        "bubbleBaseUrl",
        "http(s) URL with a host",
    ),
    "bubble-url-no-api-path": ({"bubbleBaseUrl": "https://myapp.bubbleapps.io"}, "bubbleBaseUrl", "/api/1.1"),
    "bubble-url-http": (
        {"bubbleBaseUrl": "http://myapp.bubbleapps.io/api/1.1"},
        "bubbleBaseUrl",
        "must use https",
    ),
    "bubble-url-obj-path": (
        {"bubbleBaseUrl": "https://myapp.bubbleapps.io/api/1.1/obj/user"},
        "bubbleBaseUrl",
        "must end in /api/1.1",
    ),
    "supabase-url-ftp": ({"supabaseUrl": "ftp://x.supabase.co"}, "supabaseUrl", "http(s) URL"),
    "supabase-url-path": (
        {"supabaseUrl": f"https://{REF}.supabase.co/rest/v1"},
        "supabaseUrl",
        "without a path",
    ),
    "management-url-http": (
        {"managementApiUrl": "http://api.supabase.com"},
        "managementApiUrl",
        "must use https",
    ),
    "missing-service-role-key": ({"serviceRoleKey": None}, "serviceRoleKey", "pulumi config set --secret"),
    "missing-bubble-token": ({"bubbleApiToken": None}, "bubbleApiToken", "pulumi config set --secret"),
    "blank-bubble-token": ({"bubbleApiToken": "   "}, "bubbleApiToken", "is blank"),
    "missing-db-password": ({"dbPassword": None}, "dbPassword", "is required with dbHost"),
    "missing-access-token": ({"supabaseAccessToken": None}, "supabaseAccessToken", "SUPABASE_ACCESS_TOKEN"),
    "no-database-at-all": ({"dbHost": None, "dbPassword": None}, "databaseUrl", "no database connection"),
    "database-url-bad-port": (
        {
            "dbHost": None,
            "dbPassword": None,
            "databaseUrl": f"postgresql://postgres:{DB_PASSWORD}@h:99999/postgres",
        },
        "databaseUrl",
        "value not shown",
    ),
}


def _values(overrides: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in {**VALID, **overrides}.items() if v is not None}


@pytest.mark.parametrize(("overrides", "key", "fragment"), INVALID_CONFIG.values(), ids=INVALID_CONFIG.keys())
def test_load_config_rejects_naming_the_key(
    overrides: dict[str, str | None], key: str, fragment: str
) -> None:
    values = _values(overrides)
    with pytest.raises(ConfigError) as info:
        load_config(values.get, env={})
    message = str(info.value)
    assert f"{PROJECT}:{key}: " in message and fragment in message, message
    assert [p.key for p in info.value.problems] == [key], message
    for secret in STACK_SECRETS:
        assert secret not in message


@pytest.fixture
def pulumi_program(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("SUPABASE_ACCESS_TOKEN", "SUPABASE_MANAGEMENT_API_URL", "BUBBLE_SYNC_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(REPO)
    saved = saved_pulumi_settings()
    try:
        yield run_program
    finally:
        restore_pulumi_settings(saved)


@pytest.mark.parametrize(("overrides", "key", "fragment"), INVALID_CONFIG.values(), ids=INVALID_CONFIG.keys())
def test_the_program_rejects_before_registering_anything(
    pulumi_program: Any, overrides: dict[str, str | None], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        pulumi_program(_values(overrides), SECRET_KEYS)
    message = str(info.value)
    assert f"{PROJECT}:{key}: " in message and fragment in message, message
    for secret in STACK_SECRETS:
        assert secret not in message
    assert pulumi_program.monitor.registered == []


def test_the_program_under_mocks_registers_resources_with_the_valid_config(pulumi_program: Any) -> None:
    """The control for the test above: the same harness does register resources when nothing is wrong."""
    monitor = pulumi_program(_values({}), SECRET_KEYS)
    assert len(monitor.registered) > 10


def test_every_problem_is_reported_at_once_and_a_plain_text_secret_is_refused(pulumi_program: Any) -> None:
    overrides = {
        "processorSchedule": "* * *",
        "projectRef": "nope",
        "bubbleBaseUrl": "https://x.io",
        "serviceRoleKey": None,
    }
    plain = [k for k in SECRET_KEYS if k != "bubbleApiToken"]  # the Bubble token stored in plain text
    with pytest.raises(ConfigError) as info:
        pulumi_program(_values(overrides), plain)
    keys = [p.key for p in info.value.problems]
    assert keys == ["projectRef", "serviceRoleKey", "bubbleBaseUrl", "bubbleApiToken", "processorSchedule"]
    assert "stored in plain text" in str(info.value)
    for secret in STACK_SECRETS:
        assert secret not in str(info.value)
    assert pulumi_program.monitor.registered == []


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("bubbleBaseUrl", f"https://myapp.bubbleapps.io/api/1.1?api_token={STACK_BUBBLE_TOKEN}"),
        ("bubbleBaseUrl", f"https://me:{STACK_BUBBLE_TOKEN}@myapp.bubbleapps.io/api/1.1"),
        ("supabaseUrl", f"https://postgres:{DB_PASSWORD}@{REF}.supabase.co"),
    ],
    ids=["bubble-api-token-query", "bubble-userinfo", "supabase-userinfo"],
)
def test_a_url_with_a_credential_is_rejected_without_echoing_it(key: str, url: str) -> None:
    values = _values({key: url})
    with pytest.raises(ConfigError) as info:
        load_config(values.get, env={})
    assert f"{PROJECT}:{key}: " in str(info.value)
    assert STACK_BUBBLE_TOKEN not in str(info.value) and DB_PASSWORD not in str(info.value)


# --- bad requests to the function ---------------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}
BAD_REQUESTS = {
    # no or wrong credential: 401 before the body is even read
    "no-credential": ("POST", {}, json.dumps({"action": PROCESS, "wait": True}), 401),
    "wrong-bearer": ("POST", {"Authorization": "Bearer nope"}, json.dumps({"action": PROCESS}), 401),
    "bubble-token-as-key": ("POST", {"apikey": BUBBLE_TOKEN}, json.dumps({"action": PROCESS}), 401),
    "basic-auth": ("POST", {"Authorization": f"Basic {SECRET_KEY}"}, json.dumps({"action": PROCESS}), 401),
    "deep-health-no-credential": ("GET?check=deep", {}, "", 401),
    # a bad body: 400
    "not-json": ("POST", AUTH, "action=process_queue_data_api", 400),
    "empty-body": ("POST", AUTH, "", 400),
    "json-array": ("POST", AUTH, json.dumps([{"action": PROCESS}]), 400),
    "json-string": ("POST", AUTH, json.dumps(PROCESS), 400),
    "unknown-action": ("POST", AUTH, json.dumps({"action": "delete_everything"}), 400),
    "no-action": ("POST", AUTH, json.dumps({"wait": True}), 400),
    "limit-zero": ("POST", AUTH, json.dumps({"action": PROCESS, "limit": 0}), 400),
    "limit-string": ("POST", AUTH, json.dumps({"action": PROCESS, "limit": "5"}), 400),
    "limit-too-big": ("POST", AUTH, json.dumps({"action": PROCESS, "limit": 100_001}), 400),
    "limit-fraction": ("POST", AUTH, json.dumps({"action": PROCESS, "limit": 1.5}), 400),
    "wait-string": ("POST", AUTH, json.dumps({"action": PROCESS, "wait": "yes"}), 400),
    "body-over-64k": ("POST", AUTH, json.dumps({"action": PROCESS, "pad": "x" * 70_000}), 400),
    # a wrong method: 405, credential or not
    "put": ("PUT", AUTH, json.dumps({"action": PROCESS}), 405),
    "delete": ("DELETE", {}, "", 405),
    "patch": ("PATCH", AUTH, json.dumps({"action": PROCESS}), 405),
}


@pytest.mark.parametrize(
    ("method", "headers", "body", "status"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys()
)
def test_a_bad_request_is_refused_before_any_claim(
    conn: Conn,
    client: httpx.Client,
    host: Host,
    bubble: BubbleDouble,
    method: str,
    headers: dict[str, str],
    body: str,
    status: int,
) -> None:
    enqueue_good(conn, 3)
    conn.execute("select bubble_sync.enqueue('profiles', 'retry-me', 'INSERT', '{}'::jsonb)")
    conn.execute(
        "update public.sync_queue set status = 'failed', retry_count = 1, error_message = 'earlier 503'"
        " where record_id = 'retry-me'"
    )
    before = snapshot(conn)
    verb, _, query = method.partition("?")
    url = host.function_url + (f"?{query}" if query else "")
    response = client.request(
        verb, url, headers={"content-type": "application/json", **headers}, content=body
    )
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == {401: "unauthorized", 400: "bad_request", 405: "method_not_allowed"}[status]
    if status == 405:
        assert response.headers["allow"] == "GET, POST"
    no_secret_in(response.text)
    time.sleep(0.05)  # a claim, had one started in the background, would show by now
    assert snapshot(conn) == before, "the queue was touched"
    assert bubble.requests() == []


def test_a_misconfigured_function_answers_500_naming_the_variable_before_any_claim(
    conn: Conn,
    client: httpx.Client,
    tmp_path: Path,
    database: Database,
    bubble: BubbleDouble,
) -> None:
    """The function's own secrets are checked per request, after the caller's credential and body and before
    any claim: a missing Bubble token is named (never a value) and the queue stays as it was."""
    enqueue_good(conn, 2)
    before = snapshot(conn)
    for settings, variable in (
        ({"BUBBLE_API_TOKEN": None}, "BUBBLE_API_TOKEN"),
        ({"BUBBLE_BASE_URL": "ftp://myapp.bubbleapps.io/api/1.1"}, "BUBBLE_BASE_URL"),
        ({"BUBBLE_SYNC_BATCH_SIZE": "lots"}, "BUBBLE_SYNC_BATCH_SIZE"),
    ):
        directory = tmp_path / variable
        directory.mkdir()
        hosts = start_host(directory, database, bubble, **settings)
        broken = next(hosts)
        try:
            answer = client.post(broken.function_url, json={"action": PROCESS, "wait": True}, headers=AUTH)
            assert answer.status_code == 500, answer.text
            assert (answer.json()["error"], answer.json()["variable"]) == ("configuration", variable)
            deep = client.get(f"{broken.function_url}?check=deep", headers=AUTH)
            assert deep.status_code == 503 and variable in deep.json()["config"], deep.text
            unauthorized = client.post(broken.function_url, json={"action": PROCESS})
            assert unauthorized.status_code == 401, "the config was revealed before the credential check"
            no_secret_in(answer.text, deep.text, broken.log())
        finally:
            hosts.close()
    assert snapshot(conn) == before
    assert bubble.requests() == []


def test_the_function_log_holds_no_secret_and_no_payload(host: Host, database: Database) -> None:
    """Runs last among the function's tests: everything above (401s from Bubble included) went through it."""
    log = host.log()
    assert "bubble_sync.run" in log
    no_secret_in(log, extra=(database_password(database),))
    assert "@example.com" not in log, "payload fields were logged"


# --- pg_cron (last: its minute tick, started with the module, has passed by now) ----------------------------


def test_pg_cron_records_the_missing_vault_secret_as_a_failed_run(
    cron_probe: tuple[Database, int, float], cron_db: Database
) -> None:
    database, jobid, scheduled_at = cron_probe
    deadline = scheduled_at + 75
    details: list[tuple[str, str]] = []
    with cron_db.connect() as conn:
        while time.time() < deadline:
            details = conn.execute(
                "select status, return_message from cron.job_run_details where jobid = %s"
                " and status in ('succeeded', 'failed')",
                (jobid,),
            ).fetchall()
            if details:
                break
            time.sleep(0.5)
    assert details, "pg_cron did not run the probe job within 75 s"
    status, message = details[0]
    assert status == "failed", details
    assert 'Vault secret "supabase_url" is missing or empty' in message, message
    with database.connect() as conn:
        waiting = conn.execute("select status, retry_count, error_message from public.sync_queue").fetchall()
        assert waiting == [("pending", 0, None)], "the failed run touched the queue"
        assert conn.execute("select count(*) from net.http_request_queue").fetchone() == (0,)

"""Alerts that reach a person (sql/alerts.sql), against real PostgreSQL, the pg_net double delivering real
HTTP to a local receiver, with an injected clock (p_now: no test waits for minutes to pass): a circuit breaker
that stays open gives one message and its closing one more, never one a minute; each cause says what, since
when and the command to run; a message carries no secret and no payload value; without the Vault secret
alert_webhook_url nothing is posted and the state is still kept."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from components.operator.report import render_status
from components.operator.status import collect_status
from components.sql.params import DEFAULT_PARAMS
from components.sql.templates import CRON_JOBS, QUEUE_FILES
from devstack.pgnet_worker import NetWorker
from tests.conftest import Database, apply_sql
from tests.queue_support import T0

AFTER = "interval '10 minutes'"
BACKLOG = "interval '15 minutes'"
SERVICE_KEY = "svc-SECRET-alerts-51c0"
PAYLOAD_VALUE = "ada-PAYLOAD@example.com"


class Receiver:
    """A local webhook: records each POST body, answers 200 `ok` as Slack does."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/hook-SECRET-path"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"expected {count} messages, got {len(self.bodies)}"
            time.sleep(0.02)
        time.sleep(0.3)  # and no more than that
        return list(self.bodies)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute("select vault.create_secret(%s, 'service_role_key')", (SERVICE_KEY,))
        yield c


def with_webhook(conn: psycopg.Connection[Any], receiver: Receiver) -> None:
    conn.execute("select vault.create_secret(%s, 'alert_webhook_url')", (receiver.url,))


def evaluate(conn: psycopg.Connection[Any], minutes: float, stack: str | None = "prod") -> str:
    row = conn.execute(
        f"select bubble_sync.evaluate_alerts({AFTER}, {BACKLOG}, %s, %s) as did",
        (stack, T0 + timedelta(minutes=minutes)),
    ).fetchone()
    return str(row["did"])


def causes(conn: psycopg.Connection[Any], minutes: float) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        f"select * from bubble_sync.alert_causes({AFTER}, {BACKLOG}, 'prod', %s)",
        (T0 + timedelta(minutes=minutes),),
    ).fetchall()
    return {r["cause"]: r for r in rows}


def open_breaker(conn: psycopg.Connection[Any], at_minutes: float) -> None:
    since = T0 + timedelta(minutes=at_minutes)
    conn.execute(
        "update bubble_sync.bubble_gate set failures_in_a_row = 10, failing_since = %s, opened_at = %s,"
        " last_error = %s",
        (since, since + timedelta(seconds=30), f"Bubble answered 500: bad value {PAYLOAD_VALUE}"),
    )


def close_breaker(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "update bubble_sync.bubble_gate set failures_in_a_row = 0, failing_since = null, opened_at = null,"
        " last_error = null"
    )


def queue_row(conn: psycopg.Connection[Any], status: str, *, minutes: float, retries: int = 0) -> None:
    conn.execute(
        "insert into public.sync_queue (table_name, record_id, operation, payload, status, retry_count,"
        " max_retries, error_message, created_at, updated_at)"
        " values ('profiles', gen_random_uuid()::text, 'INSERT', %s, %s, %s, 3, %s, %s, %s)",
        (
            json.dumps({"email": PAYLOAD_VALUE}),
            status,
            retries,
            f"Bubble answered 400: {PAYLOAD_VALUE}" if status == "failed" else None,
            T0 + timedelta(minutes=minutes),
            T0 + timedelta(minutes=minutes),
        ),
    )


# -- once per change of state -------------------------------------------------------------------------------


def test_a_breaker_that_stays_open_gives_one_message_and_its_closing_one(
    queue_db: Database, conn: psycopg.Connection[Any], receiver: Receiver
) -> None:
    with_webhook(conn, receiver)
    open_breaker(conn, at_minutes=0)
    with NetWorker(queue_db.admin_dsn):
        did = [evaluate(conn, minute) for minute in range(30)]  # one evaluation a minute, as the job
        assert did[:11] == ["unchanged"] * 11, "not before it has been failing longer than alertAfterMinutes"
        assert did[11:] == ["posted: unhealthy"] + ["unchanged"] * 18
        (unhealthy,) = receiver.wait_for(1)
        close_breaker(conn)
        did = [evaluate(conn, minute) for minute in range(30, 40)]
        assert did == ["posted: recovered"] + ["unchanged"] * 9
        messages = receiver.wait_for(2)
    assert len(messages) == 2
    recovered = messages[1]

    assert unhealthy["status"] == "unhealthy" and unhealthy["stack"] == "prod"
    (cause,) = unhealthy["causes"]
    assert cause["cause"] == "bubble_unavailable" and cause["new"] is True
    assert datetime.fromisoformat(cause["since"]) == T0
    assert cause["command"] == "python -m components status --stack prod"
    assert "Bubble has been unavailable since 2025-01-06 09:00 UTC" in cause["what"]
    assert unhealthy["text"].startswith(":red_circle: bubble-sync prod is UNHEALTHY")
    assert "`python -m components status --stack prod`" in unhealthy["text"]

    assert recovered["status"] == "healthy" and recovered["causes"] == []
    assert [c["cause"] for c in recovered["resolved"]] == ["bubble_unavailable"]
    assert recovered["text"].startswith(
        ":large_green_circle: bubble-sync prod recovered at 2025-01-06 09:30 UTC"
    )

    # never a secret, the webhook's own address, a payload value or Bubble's error text
    for message in messages:
        text = json.dumps(message)
        for forbidden in (SERVICE_KEY, "hook-SECRET-path", PAYLOAD_VALUE, "Bubble answered"):
            assert forbidden not in text
    state = conn.execute("select * from bubble_sync.alert_state").fetchone()
    assert (state["announced"], state["announced_at"]) == ([], T0 + timedelta(minutes=30))
    response = conn.execute(
        "select status_code from net._http_response where id = %s", (state["request_id"],)
    ).fetchone()
    assert response["status_code"] == 200


def test_a_new_cause_is_told_a_cause_that_goes_away_is_not(
    conn: psycopg.Connection[Any], receiver: Receiver
) -> None:
    with_webhook(conn, receiver)
    queue_row(conn, "failed", minutes=0, retries=3)
    assert evaluate(conn, 1) == "posted: unhealthy"
    queue_row(conn, "failed", minutes=2, retries=3)  # more of the same cause: nothing new to tell
    assert evaluate(conn, 3) == "unchanged"
    open_breaker(conn, at_minutes=0)
    assert evaluate(conn, 11) == "posted: unhealthy"  # a new cause joins
    close_breaker(conn)
    assert evaluate(conn, 12) == "still unhealthy"  # it went away, the other stands: not told
    open_breaker(conn, at_minutes=0)
    assert evaluate(conn, 13) == "posted: unhealthy"  # back again: told again
    message = conn.execute(
        "select bubble_sync.alert_message(s.causes, '[{\"cause\": \"failed_for_good\"}]', 'prod', %s) as m"
        "  from bubble_sync.alert_state s",
        (T0,),
    ).fetchone()["m"]
    assert {c["cause"]: c["new"] for c in message["causes"]} == {
        "bubble_unavailable": True,
        "failed_for_good": False,
    }
    assert "[new] Bubble has been unavailable" in message["text"]


def test_without_a_webhook_nothing_is_posted_but_the_state_is_kept(
    conn: psycopg.Connection[Any], receiver: Receiver
) -> None:
    open_breaker(conn, at_minutes=0)
    assert evaluate(conn, 11) == "not posted: no webhook (Vault secret alert_webhook_url)"
    assert conn.execute("select count(*) as n from net.http_request_queue").fetchone()["n"] == 0
    state = conn.execute("select * from bubble_sync.alert_state").fetchone()
    assert [c["cause"] for c in state["causes"]] == ["bubble_unavailable"]
    assert (state["changed_at"], state["announced"]) == (T0 + timedelta(minutes=11), [])
    # set later, the webhook hears of what is wrong at the next evaluation
    with_webhook(conn, receiver)
    assert evaluate(conn, 12) == "posted: unhealthy"


def test_a_healthy_install_posts_nothing(conn: psycopg.Connection[Any], receiver: Receiver) -> None:
    with_webhook(conn, receiver)
    assert [evaluate(conn, m) for m in range(3)] == ["unchanged"] * 3
    assert conn.execute("select count(*) as n from net.http_request_queue").fetchone()["n"] == 0


# -- the causes ---------------------------------------------------------------------------------------------


def test_rows_failed_for_good_name_the_requeue(conn: psycopg.Connection[Any]) -> None:
    queue_row(conn, "failed", minutes=-5, retries=1)  # still retrying: not a cause
    assert causes(conn, 0) == {}
    queue_row(conn, "failed", minutes=-3, retries=3)
    queue_row(conn, "failed", minutes=-1, retries=3)
    cause = causes(conn, 0)["failed_for_good"]
    assert cause["since"] == T0 - timedelta(minutes=3)
    assert cause["what"].startswith("2 row(s) failed for good")
    assert cause["command"] == "python -m components requeue --stack prod --all-permanently-failed"
    assert PAYLOAD_VALUE not in cause["what"]


def test_a_backlog_is_a_cause_unless_it_waits_for_bubble(conn: psycopg.Connection[Any]) -> None:
    queue_row(conn, "pending", minutes=0)
    conn.execute("update public.sync_queue set operation = 'BACKFILL'")
    assert "backlog" not in causes(conn, 60), "backfilled rows wait behind every change by design"
    queue_row(conn, "pending", minutes=0)
    assert "backlog" not in causes(conn, 15)
    cause = causes(conn, 16)["backlog"]
    assert cause["since"] == T0
    assert "has waited since 2025-01-06 09:00 UTC" in cause["what"]
    open_breaker(conn, at_minutes=1)
    assert set(causes(conn, 16)) == {"bubble_unavailable"}


def test_a_verification_that_found_differences_names_the_reconcile(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "insert into bubble_sync.mappings (name, table_name, definition) values"
        " ('users', 'profiles', '{}'), ('listings', 'listings', '{}')"
    )
    rows = [
        ("users", -120, 0, None),
        ("users", -60, 2, None),  # the first that found differences since the last clean one
        ("users", -30, 0, "not verified: Bubble unavailable"),  # an error decides nothing
        ("users", 0, 1, None),
        ("listings", 0, 0, None),
        ("gone", 0, 5, None),  # a mapping no longer deployed
    ]
    for mapping, minutes, stale, error in rows:
        conn.execute(
            "insert into bubble_sync.verifications (mapping, started_at, finished_at, checked, stale, error)"
            " values (%s, %s, %s, 100, %s, %s)",
            (mapping, T0 + timedelta(minutes=minutes), T0 + timedelta(minutes=minutes), stale, error),
        )
    found = causes(conn, 1)
    assert set(found) == {"verification:users"}
    cause = found["verification:users"]
    assert cause["since"] == T0 - timedelta(minutes=60)
    assert cause["command"] == "python -m components reconcile --stack prod --mapping users --repair"
    assert "0 missing, 1 stale, 0 orphaned and 0 duplicated of 100 record(s) checked" in cause["what"]
    conn.execute(
        "insert into bubble_sync.verifications (mapping, started_at, finished_at, checked)"
        " values ('users', %s, %s, 100)",
        (T0 + timedelta(minutes=2), T0 + timedelta(minutes=2)),
    )
    assert causes(conn, 3) == {}


def test_a_stack_name_is_optional_in_the_commands(conn: psycopg.Connection[Any]) -> None:
    open_breaker(conn, at_minutes=0)
    rows = conn.execute(
        f"select command from bubble_sync.alert_causes({AFTER}, {BACKLOG}, null, %s)",
        (T0 + timedelta(hours=1),),
    ).fetchall()
    assert [r["command"] for r in rows] == ["python -m components status --stack <stack>"]


@pytest.fixture
def cron_tx(cron_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The `postgres` database (pg_cron's) with our layer and jobs, in a transaction rolled back after."""
    with psycopg.connect(cron_db.dsn, row_factory=dict_row) as c:
        for relative_path in QUEUE_FILES:
            apply_sql(c, relative_path)
        for job in CRON_JOBS:
            c.execute(job.statement(DEFAULT_PARAMS))
        try:
            yield c
        finally:
            c.rollback()


def test_a_failing_cron_job_of_ours_is_a_cause_until_it_succeeds(cron_tx: psycopg.Connection[Any]) -> None:
    c = cron_tx
    c.execute("select cron.schedule('someone-elses-job', '0 0 * * *', 'select 1')")
    jobs = {r["jobname"]: r["jobid"] for r in c.execute("select jobname, jobid from cron.job").fetchall()}
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def run(name: str, minutes_ago: int, status: str) -> None:
        c.execute(
            "insert into cron.job_run_details (jobid, runid, database, username, command, status,"
            " return_message, start_time, end_time)"
            " values (%s, nextval('cron.runid_seq'), current_database(), current_user, 'x', %s, %s, %s, %s)",
            (jobs[name], status, f"ERROR: {PAYLOAD_VALUE}", now - timedelta(minutes=minutes_ago),
             now - timedelta(minutes=minutes_ago)),
        )  # fmt: skip

    def found() -> dict[str, Any]:
        rows = c.execute(
            f"select * from bubble_sync.alert_causes({AFTER}, {BACKLOG}, 'prod', %s)", (now,)
        ).fetchall()
        return {r["cause"]: r for r in rows if r["cause"].startswith("cron_job:")}

    c.execute("delete from public.sync_queue")
    run("bubble_sync.verify", 180, "succeeded")
    run("bubble_sync.verify", 120, "failed")
    run("bubble_sync.verify", 60, "failed")
    run("someone-elses-job", 1, "failed")
    run("bubble-sync-retry", 60 * 30, "failed")  # more than a day ago: not recent
    cause = found()["cron_job:bubble_sync.verify"]
    assert set(found()) == {"cron_job:bubble_sync.verify"}
    assert cause["since"] == now - timedelta(minutes=120)
    assert cause["command"] == "python -m components status --stack prod"
    assert "the last run of cron job bubble_sync.verify failed (at 2025-03-01 11:00 UTC)" in cause["what"]
    assert PAYLOAD_VALUE not in cause["what"]
    run("bubble_sync.verify", 0, "succeeded")
    assert found() == {}


def test_status_shows_the_alerts_state(
    queue_db: Database, conn: psycopg.Connection[Any], receiver: Receiver
) -> None:
    with_webhook(conn, receiver)
    open_breaker(conn, at_minutes=0)
    with NetWorker(queue_db.admin_dsn):
        assert evaluate(conn, 11) == "posted: unhealthy"
        receiver.wait_for(1)
    with psycopg.connect(queue_db.dsn, row_factory=dict_row) as read:
        status = collect_status(read, database="test")
    assert status.alert_webhook is True
    assert [c["cause"] for c in status.alerts["announced"]] == ["bubble_unavailable"]
    out = io.StringIO()
    render_status(status, out)
    section = out.getvalue().split("Alerts (")[1].split("Cron jobs (")[0]
    assert "webhook       Vault secret alert_webhook_url (alertWebhookUrl)" in section
    assert "last message  bubble_unavailable at 2025-01-06 09:11:00+0000, HTTP 200" in section
    assert "hook-SECRET-path" not in out.getvalue()

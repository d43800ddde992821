"""The pg_net 0.20 double (devstack/extensions/pg_net--0.20.4.sql + devstack/pgnet_worker/) behaves
as pg_net does where our pipeline can observe it: sent only after commit, pg_net's defaults, errors
and response rows, one concurrent batch, TTL cleanup, Supabase's grants, and a worker that survives a
database restart.

Why one module: its tests share the `endpoint` and `worker` fixtures and read as one specification of the
double against what pg_net does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack.cluster import Cluster, free_port
from devstack.pgnet_worker import NetWorker
from tests.conftest import Database

SECRET = "s3cret-service-role-key"

# pg_net's detailed_timeout_strerror() format (src/errors.c)
TIMEOUT_MESSAGE = re.compile(
    r"^Timeout of (?P<timeout>\d+) ms reached\. Total time: (?P<total>\d+\.\d{6}) ms "
    r"\(DNS time: \d+\.\d{6} ms, TCP/SSL handshake time: \d+\.\d{6} ms, "
    r"HTTP Request/Response time: (?P<http>\d+\.\d{6}) ms\)$"
)


# -- a local HTTP endpoint -------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Endpoint:
    """A local HTTP server. `/sleep/<seconds>` answers after that long; every other path answers at
    once with a JSON body and an `X-Echo` header. Every request is recorded."""

    port: int
    received: list[Received] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {len(self.received)}")
            time.sleep(0.02)
        return list(self.received)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    state = Endpoint(port=server.server_address[1])
    server.endpoint = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.endpoint.received.append(  # type: ignore[attr-defined]
            Received(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
        )
        if self.path.startswith("/sleep/"):
            time.sleep(float(self.path.removeprefix("/sleep/")))
        payload = json.dumps({"received": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", "yes")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # the worker gave up on a slow answer
            pass


# -- fixtures and helpers -----------------------------------------------------------------------------------


@pytest.fixture
def worker(db: Database) -> Iterator[NetWorker]:
    with NetWorker(db.admin_dsn) as w:
        yield w


def wait_for_response(conn: psycopg.Connection, request_id: int, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with conn.cursor(row_factory=dict_row) as cur:
        while True:
            row = cur.execute("select * from net._http_response where id = %s", (request_id,)).fetchone()
            if row is not None:
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"no response for request {request_id} after {timeout} s")
            time.sleep(0.02)


def http_post(conn: psycopg.Connection, url: str, body: dict[str, Any] | None = None, **named: Any) -> int:
    args = ", ".join(f"{name} := %({name})s" for name in named)
    row = conn.execute(
        f"select net.http_post(%(url)s, %(body)s::jsonb{', ' + args if args else ''})",
        {"url": url, "body": json.dumps(body or {}), **named},
    ).fetchone()
    assert row is not None
    return int(row[0])


# -- tests -------------------------------------------------------------------------------------------------


def test_a_rolled_back_request_is_never_sent(db: Database, worker: NetWorker, endpoint: Endpoint) -> None:
    with db.connect(autocommit=False) as conn:
        rolled_back = http_post(conn, endpoint.url("/rolled-back"))
        conn.rollback()
        marker = http_post(conn, endpoint.url("/committed"))
        conn.commit()
        wait_for_response(conn, marker)
        time.sleep(0.2)  # time for a wrongly sent request to arrive too

        assert [r.path for r in endpoint.received] == ["/committed"]
        row = conn.execute("select count(*) from net._http_response where id = %s", (rolled_back,)).fetchone()
        assert row == (0,)


def test_a_committed_post_arrives_with_its_json_body_and_headers(
    db: Database, worker: NetWorker, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with db.connect() as conn:
        request_id = http_post(
            conn,
            endpoint.url("/functions/v1/bubble_sync"),
            {"hello": "world", "n": 1},
            headers=json.dumps({"Authorization": f"Bearer {SECRET}"}),  # no Content-Type: pg_net adds it
        )
        response = wait_for_response(conn, request_id)

        [received] = endpoint.received
        assert received.method == "POST"
        assert received.path == "/functions/v1/bubble_sync"
        assert json.loads(received.body) == {"hello": "world", "n": 1}
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["Authorization"] == f"Bearer {SECRET}"
        assert received.headers["User-Agent"] == "pg_net/0.20.4"

        assert response["status_code"] == 200
        assert response["content_type"] == "application/json"
        assert response["headers"]["X-Echo"] == "yes"
        assert json.loads(response["content"]) == {"received": "/functions/v1/bubble_sync"}
        assert response["timed_out"] is False
        assert response["error_msg"] is None
        assert conn.execute("select count(*) from net.http_request_queue").fetchone() == (0,)

        result = conn.execute(
            "select status, message, (response).status_code from net._http_collect_response(%s)",
            (request_id,),
        ).fetchone()
        assert result == ("SUCCESS", "ok", 200)
        # as in pg_net 0.20.4, the deprecated wrapper fails after its notice
        with pytest.raises(psycopg.errors.SyntaxError, match="query has no destination"):
            conn.execute("select net.http_collect_response(%s)", (request_id,))

    assert f"request {request_id} POST" in caplog.text  # the worker did log this request...
    assert SECRET not in caplog.text  # ...but never a header value


def test_a_non_json_content_type_raises_pg_nets_error(db: Database, worker: NetWorker) -> None:
    with db.connect() as conn:
        with pytest.raises(
            psycopg.errors.RaiseException, match='^Content-Type header must be "application/json"'
        ):
            http_post(conn, "http://127.0.0.1:1/", headers=json.dumps({"content-type": "text/plain"}))
        assert conn.execute("select count(*) from net.http_request_queue").fetchone() == (0,)


def test_a_slow_endpoint_times_out_with_pg_nets_message(
    db: Database, worker: NetWorker, endpoint: Endpoint
) -> None:
    with db.connect() as conn:
        started = time.monotonic()
        request_id = http_post(conn, endpoint.url("/sleep/3"), timeout_milliseconds=200)
        response = wait_for_response(conn, request_id)
        elapsed = time.monotonic() - started

    assert response["timed_out"] is True
    assert response["status_code"] is None
    assert response["content"] is None
    assert response["headers"] is None
    match = TIMEOUT_MESSAGE.match(response["error_msg"])
    assert match, response["error_msg"]
    assert match["timeout"] == "200"
    assert 200 <= float(match["total"]) < 1000
    assert float(match["http"]) > 0  # the server accepted the connection: time went to the exchange
    assert elapsed < 2.5  # the worker gave up; it did not wait for the 3 s answer


def test_a_refused_connection_records_curls_error(db: Database, worker: NetWorker) -> None:
    with db.connect() as conn:
        request_id = http_post(conn, f"http://127.0.0.1:{free_port()}/")
        response = wait_for_response(conn, request_id)

    assert response["error_msg"] == "Couldn't connect to server"
    assert response["status_code"] is None
    assert response["timed_out"] is False


def test_bad_urls_fail_like_pg_net(db: Database, worker: NetWorker, endpoint: Endpoint) -> None:
    with db.connect() as conn:
        # the request functions check the URL with curl's URL API before queueing anything
        with pytest.raises(
            psycopg.errors.InternalError, match='^invalid URL "localhost:6666": Unsupported URL scheme\n'
        ):
            conn.execute("select net.http_get('localhost:6666')")
        with pytest.raises(psycopg.errors.InternalError, match='^invalid URL "/malformed_url": Bad scheme\n'):
            conn.execute("select net.http_get('/malformed_url')")
        with pytest.raises(psycopg.errors.NotNullViolation, match='null value in column "url"'):
            conn.execute("select net.http_post(null)")

        # rows put into the queue directly reach the worker unchecked: it records curl's error
        # and carries on with the rest of the batch
        ids = conn.execute(
            """
            insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
            values ('GET', 'not a url', '{}', 1000), ('GET', 'ftp://127.0.0.1/file', '{}', 1000)
            returning id
            """
        ).fetchall()
        good = conn.execute("select net.http_get(%s)", (endpoint.url("/after"),)).fetchone()
        assert good is not None
        errors = [wait_for_response(conn, row[0])["error_msg"] for row in ids]
        assert errors == ["URL using bad/illegal format or missing URL", "Unsupported protocol"]
        assert wait_for_response(conn, good[0])["status_code"] == 200


def test_one_batch_sends_its_requests_concurrently(
    db: Database, worker: NetWorker, endpoint: Endpoint
) -> None:
    with db.connect(autocommit=False) as conn:
        ids = [http_post(conn, endpoint.url("/sleep/1"), {"i": i}) for i in range(5)]
        conn.commit()
        committed = time.monotonic()
        responses = [wait_for_response(conn, i) for i in ids]
        elapsed = time.monotonic() - committed
        batches = conn.execute(
            "select count(distinct created) from net._http_response where id = any(%s)", (ids,)
        ).fetchone()

    assert [r["status_code"] for r in responses] == [200] * 5
    # One after another they would take 5 s and arrive 1 s apart; the bounds leave a loaded machine room.
    assert elapsed < 3, f"5 requests of 1 s took {elapsed:.2f} s: not concurrent"
    arrivals = [r.at for r in endpoint.received]
    assert max(arrivals) - min(arrivals) < 0.8
    assert batches == (1,)  # one transaction: the rows share its now()


def test_expired_responses_are_deleted_in_batches(db: Database) -> None:
    # pg_net.ttl set in the database wins over the worker's default, as the real GUC would
    with db.connect_admin() as admin:
        admin.execute(f"alter database \"{db.name}\" set pg_net.ttl = '1 hour'")
    with db.connect() as conn:  # postgres may write the net tables: pg_net grants all to PUBLIC
        conn.execute(
            """
            insert into net._http_response (id, status_code, created)
            values (101, 200, now() - interval '3 hours'), (102, 200, now() - interval '2 hours'),
                   (103, 200, now() - interval '90 minutes'), (104, 200, now() - interval '30 minutes')
            """
        )
        with NetWorker(db.admin_dsn, batch_size=2):  # startup processes the backlog (of expired rows)
            deadline = time.monotonic() + 5
            while conn.execute("select count(*) from net._http_response").fetchone() != (1,):
                assert time.monotonic() < deadline, "expired responses were not all deleted"
                time.sleep(0.05)
        assert conn.execute("select id from net._http_response").fetchall() == [(104,)]


def test_anon_can_call_net_http_post_as_on_supabase(
    db: Database, worker: NetWorker, endpoint: Endpoint
) -> None:
    with db.connect_as("anon") as anon:
        assert anon.execute("select current_user").fetchone() == ("anon",)
        request_id = http_post(anon, endpoint.url("/from-anon"), {"who": "anon"})
        anon.execute("select net.check_worker_is_up()")
        # ...and reads the response table (and the queued headers) too, a known pg_net exposure
        assert wait_for_response(anon, request_id)["status_code"] == 200
    assert [r.path for r in endpoint.received] == ["/from-anon"]


def test_check_worker_is_up_follows_the_worker(db: Database, endpoint: Endpoint) -> None:
    with db.connect() as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="^the pg_net background worker is not up\n"):
            conn.execute("select net.check_worker_is_up()")
        waiting = conn.execute("select net.http_get(%s)", (endpoint.url("/queued-while-down"),)).fetchone()
        assert waiting is not None

        with NetWorker(db.admin_dsn):
            conn.execute("select net.wait_until_running()")
            conn.execute("select net.check_worker_is_up()")
            # what was queued while no worker ran goes out when one starts
            assert wait_for_response(conn, waiting[0])["status_code"] == 200

        deadline = time.monotonic() + 5
        while True:
            try:
                conn.execute("select net.check_worker_is_up()")
            except psycopg.errors.RaiseException:
                break
            assert time.monotonic() < deadline, "check_worker_is_up() still passes after the worker stopped"
            time.sleep(0.05)


def test_http_get_appends_params_as_pg_net_does(db: Database, worker: NetWorker, endpoint: Endpoint) -> None:
    with db.connect() as conn:
        row = conn.execute(
            "select net.http_get(%s, params := %s::jsonb)",
            (endpoint.url("/search?x=1"), json.dumps({"q": "a b&c", "ünï": "✓", "n": 1})),
        ).fetchone()
        assert row is not None
        assert wait_for_response(conn, row[0])["status_code"] == 200

    [received] = endpoint.received
    assert received.method == "GET"
    # appended with "&" after the existing query, each key and value percent-encoded like curl_easy_escape
    # (every byte outside A-Z a-z 0-9 - . _ ~), in jsonb's key order
    assert received.path == "/search?x=1&n=1&q=a%20b%26c&%C3%BCn%C3%AF=%E2%9C%93"


# Expected values are what libcurl 7.88.1's URL API (curl_url_set/curl_url_get with
# CURLU_APPENDQUERY, as pg_net's _encode_url_with_params_array uses it) returns for the same input.
URL_CASES: list[tuple[str, list[str], str]] = [
    ("http://127.0.0.1:8080", [], "http://127.0.0.1:8080/"),
    ("HTTP://LocalHost:8080/a/../b?x=1#frag", ["a=1", "b=%20"], "http://LocalHost:8080/b?x=1&a=1&b=%20#frag"),
    ("http://a/b?", ["a=1"], "http://a/b?a=1"),
    ("http://h:0080/x", [], "http://h:80/x"),
    ("http://h/a/b/../../../../c/./d", [], "http://h/c/d"),
    ("https://h/a?b#c?d", ["a=1"], "https://h/a?b&a=1#c?d"),
    ("localhost:6666", [], 'invalid URL "localhost:6666": Unsupported URL scheme'),
    ("http:x", [], 'invalid URL "http:x": Unsupported number of slashes following scheme'),
    ("http://", [], 'invalid URL "http://": No host part in the URL'),
    ("http://exa mple.com", [], 'invalid URL "http://exa mple.com": Bad hostname'),
    (
        "http://h:65536",
        [],
        'invalid URL "http://h:65536": Port number was not a decimal number between 0 and 65535',
    ),
    ("http://[::1/", [], 'invalid URL "http://[::1/": Bad IPv6 address'),
    ("http://a/b c", [], 'invalid URL "http://a/b c": Bad path'),
    ("http://h/?a b", [], 'invalid URL "http://h/?a b": Bad query'),
]


def test_urls_are_checked_and_normalised_like_libcurl(db: Database) -> None:
    with db.connect() as conn:
        for url, params, expected in URL_CASES:
            try:
                row = conn.execute(
                    "select net._encode_url_with_params_array(%s, %s)", (url, params)
                ).fetchone()
                got = row[0] if row else None
            except psycopg.errors.InternalError as exc:
                got = exc.diag.message_primary
            assert got == expected, url
        assert conn.execute(
            "select net._encode_url_with_params_array(null, null), net._urlencode_string(null)"
        ).fetchone() == (None, None)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of this test's own, so restarting it disturbs no other test."""
    cluster = Cluster(tmp_path / "restart")
    cluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_the_worker_survives_a_database_restart(own_cluster: Cluster, endpoint: Endpoint) -> None:
    own_cluster.create_database("restart_test")
    dsn = own_cluster.dsn("restart_test")
    with NetWorker(own_cluster.admin_dsn("restart_test")):
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = http_post(conn, endpoint.url("/before"))
            assert wait_for_response(conn, before)["status_code"] == 200

        own_cluster.restart()

        # queued at once, probably before the worker is back: its wake is lost, the backlog is not
        with psycopg.connect(dsn, autocommit=True) as conn:
            after = http_post(conn, endpoint.url("/after"))
            assert wait_for_response(conn, after, timeout=10)["status_code"] == 200
            conn.execute("select net.check_worker_is_up()")
    assert [r.path for r in endpoint.received] == ["/before", "/after"]

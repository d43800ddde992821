"""TEST DOUBLE of pg_net 0.20's background worker (supabase/pg_net 0.20.4: src/worker.c, src/core.c,
src/errors.c), for the double extension in devstack/extensions/pg_net--0.20.4.sql.

What it mirrors:
  * the loop: wait for a wake (here a NOTIFY from `net.wake()`, which PostgreSQL delivers only when the
    requesting transaction commits); then, in ONE transaction, delete up to batch_size responses older
    than the TTL, `DELETE ... RETURNING` up to batch_size queue rows ordered by id, send them all at
    once, insert one `net._http_response` row per request, commit; sleep up to 1 s (a wake cuts it
    short) and repeat while the batch took requests or expired responses, then wait for the next wake.
    After every (re)start it processes the backlog first, as pg_net does;
  * the settings: `pg_net.batch_size` and `pg_net.ttl` are read for every batch when set in the
    database (ALTER SYSTEM / ALTER DATABASE ... SET), else the constructor's values apply;
  * the tables are locked with NOWAIT first, so a batch is skipped, not blocked, while the extension
    is being dropped; a missing extension is skipped the same way;
  * libcurl's behaviour where callers can see it: a TOTAL timeout per request (CURLOPT_TIMEOUT_MS,
    0 = none) measured from the start of the batch; redirects followed (at most 30); the request
    headers (`key: value` lines from the jsonb, a line with an empty value is not sent and suppresses
    curl's own header of that name, `User-Agent: pg_net/0.20.4` appended, `Accept: */*` and, with a
    body, `Content-Type: application/x-www-form-urlencoded` unless given); bodies cut at the first NUL;
  * the response row exactly as pg_net fills it. Success: status_code and Content-Type of the last
    response, headers (jsonb, name as sent, last duplicate wins) of the FIRST response of a redirect
    chain (pg_net asks curl for request 0), content NULL when empty, timed_out false, error_msg NULL.
    Timeout: timed_out true and pg_net's "Timeout of N ms reached. Total time: ... (DNS time: ...,
    TCP/SSL handshake time: ..., HTTP Request/Response time: ...)". Other failures: timed_out false
    and the curl_easy_strerror text curl would give, e.g. "Couldn't connect to server";
  * the curl_easy_strerror texts are libcurl 7.88's (Debian 12); newer curl words some differently
    ("Could not connect to server"), and pg_net's own tests accept either.

What it doesn't mirror:
  * it is a client connection (application_name 'pg_net double worker'), not a background worker: it
    serves the one database in its DSN and must be started by the devstack;
  * HTTP goes through httpx (HTTP/1.1 only, no proxies from the environment, certifi's CA bundle)
    instead of libcurl. So DNS time is not measured separately (it is counted in the TCP handshake),
    malformed response headers that curl tolerates (spaces in names, control characters) end as
    "Weird server reply", and request headers h11 refuses to send (bad names, CR/LF in values) end as
    a double-only error_msg starting with "pg_net double worker:";
  * response bytes that are not UTF-8 are stored with U+FFFD instead of raw;
  * where pg_net's worker dies with an ERROR and is restarted into it again, the double logs the
    problem and keeps going: a negative timeout_milliseconds gets curl's "A libcurl function was given
    a bad argument", an invalid pg_net.ttl or pg_net.batch_size falls back to the constructor's value,
    and a `headers` value that is not a JSON object fails every batch, leaving the queue stuck as in
    pg_net;
  * `net.worker_restart()` makes it reconnect at once; pg_net's worker comes back after 1 s.

Header values are never logged: they carry the service-role key.

Run it in the foreground with `python -m devstack.pgnet_worker --dsn DSN`; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

__all__ = ["WAKE_CHANNEL", "NetWorker", "main"]

log = logging.getLogger(__name__)

# Must match net.wake() and net.worker_restart() in devstack/extensions/pg_net--0.20.4.sql.
WAKE_CHANNEL = "pg_net_double_wake"
RESTART_PAYLOAD = "restart"
EXTVERSION = "0.20.4"

_MAX_REDIRECTS = 30  # curl's default CURLOPT_MAXREDIRS since 8.3
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 2.0
_BATCH_PAUSE = 1.0  # pg_net's WORKER_WAIT_ONE_SECOND
_STOP_GRACE = 5.0  # how long stop() lets a batch in flight finish before abandoning it

# curl_easy_strerror texts (libcurl 7.88.1)
UNSUPPORTED_PROTOCOL = "Unsupported protocol"
URL_MALFORMAT = "URL using bad/illegal format or missing URL"
COULDNT_RESOLVE_HOST = "Couldn't resolve host name"
COULDNT_CONNECT = "Couldn't connect to server"
WEIRD_SERVER_REPLY = "Weird server reply"
PARTIAL_FILE = "Transferred a partial file"
TOO_MANY_REDIRECTS = "Number of redirects hit maximum amount"
GOT_NOTHING = "Server returned nothing (no headers, no data)"
SEND_ERROR = "Failed sending data to the peer"
RECV_ERROR = "Failure when receiving data from the peer"
SSL_CONNECT_ERROR = "SSL connect error"
PEER_FAILED_VERIFICATION = "SSL peer certificate or SSH remote key was not OK"
BAD_FUNCTION_ARGUMENT = "A libcurl function was given a bad argument"

# Statements, in the spirit of pg_net's SPI plans (src/core.c).
_TABLES_PRESENT = """
select to_regclass('net.http_request_queue') is not null and to_regclass('net._http_response') is not null
"""
_LOCK_TABLES = "lock table net.http_request_queue, net._http_response in access share mode nowait"
_SETTINGS = "select current_setting('pg_net.ttl', true), current_setting('pg_net.batch_size', true)"
_DELETE_EXPIRED = """
with expired as (
  select ctid from net._http_response where created < now() - %(ttl)s::interval order by created limit %(n)s
)
delete from net._http_response r using expired where r.ctid = expired.ctid
"""
_TAKE_REQUESTS = """
with batch as (select id from net.http_request_queue order by id limit %(n)s)
delete from net.http_request_queue q using batch where q.id = batch.id
returning q.id, q.method, q.url, q.timeout_milliseconds,
          array(select key || ': ' || value from jsonb_each_text(q.headers)), q.body
"""
_INSERT_RESPONSE = """
insert into net._http_response (id, status_code, content, headers, content_type, timed_out, error_msg)
values (%s, %s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class _Request:
    id: int
    method: str
    url: str
    timeout_ms: int
    header_lines: Sequence[str | None]
    body: bytes | None


@dataclass(frozen=True)
class _Response:
    id: int
    status_code: int | None = None
    content: str | None = None
    headers: dict[str, str] | None = None
    content_type: str | None = None
    timed_out: bool = False
    error_msg: str | None = None

    def row(self) -> tuple[Any, ...]:
        headers = Jsonb(self.headers) if self.headers is not None else None
        return (
            self.id,
            self.status_code,
            self.content,
            headers,
            self.content_type,
            self.timed_out,
            self.error_msg,
        )


class _CurlFailure(Exception):
    """A request that fails before anything is sent, with curl's error text."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class NetWorker:
    """Delivers the requests queued by the pg_net double in one database.

    `dsn` should be the bootstrap superuser's (`cluster.admin_dsn(db)`), as pg_net's worker runs as the
    bootstrap user. `application_name` must start with 'pg_net' for `net.check_worker_is_up()` and
    `net.wait_until_running()` to see the worker.
    """

    def __init__(
        self,
        dsn: str,
        *,
        batch_size: int = 200,
        ttl: str = "6 hours",
        application_name: str = "pg_net double worker",
    ) -> None:
        self.dsn = dsn
        self.batch_size = batch_size
        self.ttl = ttl
        self.application_name = application_name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._listening = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping = False
        self._in_batch = False
        self._should_wake = True
        self._restart_requested = False

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> NetWorker:
        """Runs the worker in a background thread; returns once it LISTENs (raises if it cannot)."""
        if self._thread is not None:
            raise RuntimeError("the worker is already running")
        self._listening.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._thread_main, name=self.application_name, daemon=True)
        self._thread.start()
        if not self._listening.wait(timeout):
            self.stop()
            raise TimeoutError(f"the pg_net double worker did not start within {timeout} s")
        if self._startup_error is not None:
            # mypy still sees the None assigned above: the worker thread sets it meanwhile
            self._thread.join()  # type: ignore[unreachable]
            self._thread = None
            raise self._startup_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the worker: a batch in flight may finish (for a few seconds), then it is abandoned and
        its queue rows come back, as when pg_net's worker is killed."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._request_stop)
            except RuntimeError:  # the loop has already finished
                pass
            thread.join(min(_STOP_GRACE, timeout))
            if thread.is_alive():
                try:
                    loop.call_soon_threadsafe(self._abandon)
                except RuntimeError:
                    pass
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("the pg_net double worker did not stop")
        self._thread = None

    def __enter__(self) -> NetWorker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self.run())
        except BaseException as exc:
            if not self._listening.is_set():
                self._startup_error = exc
                self._listening.set()
            else:
                log.exception("pg_net double worker failed")

    def _request_stop(self) -> None:
        """Runs on the worker's loop (signal handler or stop()): idle waits end at once, a batch
        finishes first."""
        self._stopping = True
        if not self._in_batch:
            self._abandon()

    def _abandon(self) -> None:
        self._stopping = True
        if self._in_batch:
            log.warning(
                "abandoning the batch in flight: its requests go back to the queue and may be sent again"
            )
        if self._task is not None:
            self._task.cancel()

    # -- main loop ---------------------------------------------------------------------------------------

    async def run(self, *, retry_first_connect: bool = False, handle_signals: bool = False) -> None:
        """The worker itself, until stopped. The first connection failure is raised unless
        `retry_first_connect`; later ones are logged and retried with a short backoff."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._stopping = False
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._request_stop)
        try:
            async with _http_client() as client:
                await self._connect_loop(client, retry_first_connect=retry_first_connect)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        log.info("pg_net double worker stopped")

    async def _connect_loop(self, client: httpx.AsyncClient, *, retry_first_connect: bool) -> None:
        backoff = _BACKOFF_FIRST
        connected_before = retry_first_connect
        while not self._stopping:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, application_name=self.application_name
                )
            except psycopg.OperationalError as exc:
                if not connected_before:
                    raise
                log.warning(
                    "cannot connect to the database (%s); retrying in %.1f s", _first_line(exc), backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            try:
                async with conn:
                    await conn.execute(f"listen {WAKE_CHANNEL}")
                    connected_before = True
                    backoff = _BACKOFF_FIRST
                    log.info(
                        "pg_net double worker listening (batch_size=%s, ttl=%s)", self.batch_size, self.ttl
                    )
                    self._listening.set()
                    await self._serve(conn, client)
            except Exception as exc:
                if not connected_before:
                    raise
                if isinstance(exc, psycopg.Error) and (conn.broken or conn.closed):
                    log.warning("lost the database connection (%s); reconnecting", _first_line(exc))
                else:  # a bug or a surprise: pg_net's postmaster would restart its worker, so do we
                    log.exception("pg_net double worker failed; reconnecting")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            if self._restart_requested:
                log.info("restarting on net.worker_restart()")

    async def _serve(self, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient) -> None:
        """pg_net's worker loop, until stop or a restart request."""
        # pg_net starts with should_wake set, and sets it again when its worker exits: so every
        # (re)start first takes whatever was queued meanwhile
        self._should_wake = True
        self._restart_requested = False
        while not self._stopping and not self._restart_requested:
            if not self._should_wake:
                await self._wait(conn, timeout=None)
                continue
            self._should_wake = False
            while not self._stopping:
                consumed, expired = await self._run_batch(conn, client)
                if self._stopping:  # asked to stop while the batch ran: it is committed, leave now
                    # mypy still sees the False the loop tested: stop() sets it meanwhile, from another thread
                    break  # type: ignore[unreachable]
                # like WaitLatch(1 s): a wake during the batch or the pause ends the pause early, and
                # leaves should_wake set so the outer loop comes round again
                await self._wait(conn, timeout=_BATCH_PAUSE)
                if self._restart_requested or not (consumed or expired):
                    break

    async def _wait(self, conn: psycopg.AsyncConnection[Any], *, timeout: float | None) -> None:
        """Sleeps until a notification arrives (or `timeout`); notifications received while a batch
        ran are buffered by psycopg and end the wait at once."""
        async with aclosing(conn.notifies(timeout=timeout, stop_after=1)) as notifies:
            async for notify in notifies:
                if notify.payload == RESTART_PAYLOAD:
                    self._restart_requested = True
                self._should_wake = True

    # -- one batch -----------------------------------------------------------------------------------------

    async def _run_batch(
        self, conn: psycopg.AsyncConnection[Any], client: httpx.AsyncClient
    ) -> tuple[int, int]:
        """One transaction: expire responses, take requests, send them, store responses. Returns
        (requests taken, responses expired)."""
        ttl, batch_size = await self._settings(conn)
        self._in_batch = True
        try:
            async with conn.transaction():
                present = await (await conn.execute(_TABLES_PRESENT)).fetchone()
                if not (present and present[0]):
                    log.debug("pg_net is not installed in this database; nothing to do")
                    return 0, 0
                await conn.execute(_LOCK_TABLES)
                expired = (await conn.execute(_DELETE_EXPIRED, {"ttl": ttl, "n": batch_size})).rowcount
                rows = await (await conn.execute(_TAKE_REQUESTS, {"n": batch_size})).fetchall()
                requests = [_Request(row[0], row[1].upper(), row[2], row[3], row[4], row[5]) for row in rows]
                if requests:
                    responses = await asyncio.gather(*(_perform(client, r) for r in requests))
                    async with conn.cursor() as cur:
                        await cur.executemany(_INSERT_RESPONSE, [r.row() for r in responses])
            if requests or expired:
                log.debug("batch: %d requests sent, %d expired responses deleted", len(requests), expired)
            return len(requests), expired
        except psycopg.errors.LockNotAvailable:
            log.debug("pg_net's tables are locked (extension being dropped?); skipping this batch")
            return 0, 0
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            # pg_net's worker would die here and be restarted into the same error; the double stays up
            log.error("batch rolled back: %s", _first_line(exc))
            return 0, 0
        finally:
            self._in_batch = False

    async def _settings(self, conn: psycopg.AsyncConnection[Any]) -> tuple[str, int]:
        """pg_net.ttl and pg_net.batch_size as this session sees them (they follow reloads, like
        pg_net's SIGHUP handling), else the constructor's values."""
        ttl_setting, size_setting = (await (await conn.execute(_SETTINGS)).fetchone()) or (None, None)
        ttl, batch_size = self.ttl, self.batch_size
        if ttl_setting:
            try:
                await conn.execute("select %s::interval", (ttl_setting,))
                ttl = ttl_setting
            except psycopg.DataError:
                log.error("pg_net.ttl = %r is not an interval; using %r", ttl_setting, ttl)
        if size_setting:
            try:
                batch_size = int(size_setting)
                if not 0 <= batch_size <= 32767:
                    raise ValueError
            except ValueError:
                batch_size = self.batch_size
                log.error("pg_net.batch_size = %r is not in 0..32767; using %d", size_setting, batch_size)
        return ttl, batch_size


# -- HTTP, the way pg_net drives libcurl ----------------------------------------------------------------


def _http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=None,  # each request gets its own total deadline (CURLOPT_TIMEOUT_MS) in _perform
        follow_redirects=True,
        max_redirects=_MAX_REDIRECTS,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),  # curl multi: no cap
        trust_env=False,
    )


async def _perform(client: httpx.AsyncClient, request: _Request) -> _Response:
    """Sends one request and describes the outcome as pg_net's insert_response() would. Never raises."""
    timings = _Timings()
    try:
        if request.timeout_ms < 0:
            log.warning(
                "request %d: negative timeout_milliseconds (pg_net's worker would crash-loop)", request.id
            )
            raise _CurlFailure(BAD_FUNCTION_ARGUMENT)
        prepared = _build_request(request, timings)
        deadline = request.timeout_ms / 1000 if request.timeout_ms > 0 else None
        async with asyncio.timeout(deadline):
            response = await client.send(prepared, stream=True)
            try:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
    except TimeoutError:
        result = _Response(request.id, timed_out=True, error_msg=timings.timeout_message(request.timeout_ms))
    except _CurlFailure as failure:
        result = _Response(request.id, error_msg=failure.text)
    except Exception as exc:  # every failure becomes a response row, as in pg_net
        result = _Response(request.id, error_msg=_curl_error_text(exc))
    else:
        result = _success(request.id, response, raw)
    log.debug(
        "request %d %s %s -> %s",
        request.id,
        request.method,
        _loggable_url(request.url),
        result.status_code if result.error_msg is None else result.error_msg,
    )
    return result


def _build_request(request: _Request, timings: _Timings) -> httpx.Request:
    url = _target_url(request.url)
    body = request.body.split(b"\0", 1)[0] if request.body is not None else None  # a C string to curl
    if request.method == "POST" and body is None:
        body = b""  # CURLOPT_POST with CURLOPT_POSTFIELDSIZE 0
    headers = _request_headers(request.header_lines, form_default=body is not None)
    return httpx.Request(
        request.method, url, headers=headers, content=body, extensions={"trace": timings.trace}
    )


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _target_url(raw: str) -> httpx.URL:
    """The URL as curl would take it from CURLOPT_URL, restricted to http and https."""
    match = _SCHEME.match(raw)
    if match is None:
        # curl guesses the scheme of a scheme-less URL ("localhost:6666" means http://localhost:6666)
        if raw.lower().startswith("ftp."):
            raise _CurlFailure(UNSUPPORTED_PROTOCOL)
        raw = "http://" + raw
    elif match.group(1).lower() not in ("http", "https"):
        raise _CurlFailure(UNSUPPORTED_PROTOCOL)  # CURLOPT_PROTOCOLS_STR "http,https"
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in raw):
        raise _CurlFailure(URL_MALFORMAT)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _CurlFailure(URL_MALFORMAT) from None
    if not url.host:
        raise _CurlFailure(URL_MALFORMAT)
    return url


def _request_headers(lines: Sequence[str | None], *, form_default: bool) -> list[tuple[bytes, bytes]]:
    """curl's header list: its own Accept (and form Content-Type when there is a body) unless the
    caller names them, then the caller's `name: value` lines and pg_net's User-Agent."""
    own = {b"accept": (b"Accept", b"*/*")}
    if form_default:
        own[b"content-type"] = (b"Content-Type", b"application/x-www-form-urlencoded")
    custom: list[tuple[bytes, bytes]] = []
    for line in [*lines, f"User-Agent: pg_net/{EXTVERSION}"]:
        if line is None:  # a JSON null header value
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name_bytes = name.strip().encode()
        own.pop(name_bytes.lower(), None)
        value = value.strip(" \t")
        if value:  # curl: "Name:" with nothing after it removes the header instead of sending it
            custom.append((name_bytes, value.encode()))
    return [*own.values(), *custom]


def _success(request_id: int, response: httpx.Response, raw: bytes) -> _Response:
    # pg_net reads the headers of request 0 (the first response of a redirect chain) but the status
    # code and Content-Type of the last one
    first = response.history[0] if response.history else response
    headers: dict[str, str] = {}
    for name, value in first.headers.raw:
        headers[_text(name)] = _text(value)  # jsonb keeps the last of duplicate keys
    content_type = next((_text(v) for n, v in response.headers.raw if n.lower() == b"content-type"), None)
    body = raw.split(b"\0", 1)[0]  # stored from a C string
    return _Response(
        request_id,
        status_code=response.status_code,
        content=_text(body) if body else None,
        headers=headers,
        content_type=content_type,
        timed_out=False,
    )


def _curl_error_text(exc: BaseException) -> str:
    """The curl_easy_strerror text for the curl error this httpx failure corresponds to."""
    if isinstance(exc, httpx.TooManyRedirects):
        return TOO_MANY_REDIRECTS
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UNSUPPORTED_PROTOCOL
    if isinstance(exc, httpx.ConnectError):
        causes = list(_causes(exc))
        if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
            return PEER_FAILED_VERIFICATION
        if any(isinstance(c, ssl.SSLError) for c in causes):
            return SSL_CONNECT_ERROR
        if any(isinstance(c, socket.gaierror) for c in causes):
            return COULDNT_RESOLVE_HOST
        return COULDNT_CONNECT
    if isinstance(exc, httpx.RemoteProtocolError):
        message = str(exc)
        if "without sending a response" in message:
            return GOT_NOTHING
        if "complete message body" in message:
            return PARTIAL_FILE
        return WEIRD_SERVER_REPLY
    if isinstance(exc, httpx.ReadError):
        return RECV_ERROR
    if isinstance(exc, httpx.WriteError):
        return SEND_ERROR
    if isinstance(exc, httpx.LocalProtocolError):
        # h11 refuses to send what curl would (a bad header name, CR/LF in a value); the message is
        # not passed on because it quotes the header
        return (
            "pg_net double worker: a request header cannot be sent over HTTP/1.1 (curl would send it as is)"
        )
    log.warning("unexpected %s while sending a request", type(exc).__name__)
    return f"pg_net double worker: unexpected {type(exc).__name__}"


class _Timings:
    """curl's per-transfer timings, approximated from httpx's trace events (seconds since start)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: dict[str, float] = {}

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        self.marks.setdefault(event, time.monotonic() - self.start)

    def timeout_message(self, timeout_ms: int) -> str:
        """pg_net's detailed_timeout_strerror() (src/errors.c): which step the time went to."""
        total = time.monotonic() - self.start
        pretransfer = self.marks.get("http11.send_request_headers.started", 0.0)
        # httpx resolves and connects in one step: the DNS time is when connecting began
        namelookup = self.marks.get("connection.connect_tcp.started", pretransfer)
        connect = self.marks.get("connection.connect_tcp.complete", pretransfer)
        appconnect = self.marks.get("connection.start_tls.complete", 0.0)
        if namelookup == 0 and connect == 0:  # timed out resolving
            dns, handshake, http = total, 0.0, 0.0
        elif pretransfer == 0:  # timed out in the TCP or TLS handshake
            dns, handshake, http = namelookup, total - namelookup, 0.0
        else:  # timed out in the HTTP exchange
            dns = namelookup
            handshake = (connect - namelookup) + (appconnect - connect if appconnect > 0 else 0.0)
            http = total - pretransfer
        message = (
            f"Timeout of {timeout_ms} ms reached. Total time: {total * 1000:f} ms "
            f"(DNS time: {dns * 1000:f} ms, TCP/SSL handshake time: {handshake * 1000:f} ms, "
            f"HTTP Request/Response time: {http * 1000:f} ms)"
        )
        return message[:255]  # CURL_TIMEOUT_MSG_SIZE


def _causes(exc: BaseException) -> Sequence[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _loggable_url(url: str) -> str:
    """Scheme, host and path only: query strings can carry keys too."""
    return url.split("?", 1)[0].split("#", 1)[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- command line ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.pgnet_worker",
        description="Delivers the HTTP requests queued by the devstack's pg_net double (until SIGTERM).",
    )
    parser.add_argument("--dsn", required=True, help="connection string, normally the bootstrap superuser's")
    parser.add_argument(
        "--batch-size", type=int, default=200, help="pg_net.batch_size when not set in the database"
    )
    parser.add_argument("--ttl", default="6 hours", help="pg_net.ttl when not set in the database")
    parser.add_argument("--application-name", default="pg_net double worker")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs
    worker = NetWorker(
        args.dsn, batch_size=args.batch_size, ttl=args.ttl, application_name=args.application_name
    )
    asyncio.run(worker.run(retry_first_connect=True, handle_signals=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

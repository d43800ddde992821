"""The pg_net double's worker: its connection, LISTEN loop and batch transactions (pg_net's src/worker.c
and the SPI plans of src/core.c)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from contextlib import aclosing
from typing import Any

import httpx
import psycopg

from devstack.pgnet_worker.curl import QueuedRequest, http_client, perform

__all__ = ["WAKE_CHANNEL", "NetWorker"]

# One logger for the whole double, the name its log lines had before it was split into modules.
log = logging.getLogger("devstack.pgnet_worker")

# Must match net.wake() and net.worker_restart() in devstack/extensions/pg_net--0.20.4.sql.
WAKE_CHANNEL = "pg_net_double_wake"
RESTART_PAYLOAD = "restart"

_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 2.0
_BATCH_PAUSE = 1.0  # pg_net's WORKER_WAIT_ONE_SECOND
_STOP_GRACE = 5.0  # how long stop() lets a batch in flight finish before abandoning it

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
            async with http_client() as client:
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
                requests = [
                    QueuedRequest(row[0], row[1].upper(), row[2], row[3], row[4], row[5]) for row in rows
                ]
                if requests:
                    responses = await asyncio.gather(*(perform(client, r) for r in requests))
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

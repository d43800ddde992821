"""Reading Bubble's things for reconcile: searches of the Data API (`GET <base>/obj/<type>?constraints=...`),
each sent on its turn at the gate the sync shares (gate.py), a few in flight at a time, and retried as the
function retries: after a 429 (its Retry-After held by every worker), and after a transient failure (5xx, 408,
no answer), which also counts towards Bubble's circuit breaker. Reconcile never writes to Bubble.

What ends a run (BubbleRefused, BubbleUnavailable; exit 2): the token refused (401, 403), a data type, field
or constraint the Data API does not take (404, 400), an answer that is not a search's, and no answer at all
before Bubble ever answered this run (a wrong --bubble-url or no network: the shared breaker is not told, so a
mistyped URL cannot hold back the live sync).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from components.operator.reconcile.base import BubbleRefused, BubbleUnavailable
from components.operator.reconcile.gate import SharedGate, answer_of
from components.operator.reconcile.settings import TOKEN_ENV, BubbleSettings

__all__ = ["PAGE_SIZE", "BubbleReader", "Page", "Search", "next_page"]

#: Bubble's search answers at most 100 things a page (manual: `limit`, at most 100)
PAGE_SIZE = 100
#: requests in flight at most (the function's runs keep up to 200; reconcile takes a share)
MAX_IN_FLIGHT = 16
#: Bubble's answer time assumed before the first answer (as the function's AUTO_CONCURRENCY)
ASSUMED_LATENCY_S = 0.25
#: transient failures of one request before reconcile gives up (the breaker usually opens first)
MAX_ATTEMPTS = 8
_LATENCY_WEIGHT = 0.1


@dataclass(frozen=True)
class Search:
    """One page of a search: `constraints` as the Data API takes them (JSON), from `cursor`. `tag`: the
    caller's, handed back with the page."""

    data_type: str
    constraints: str
    cursor: int = 0
    sort_field: str | None = None
    tag: Any = None

    def params(self) -> dict[str, str]:
        params = {"constraints": self.constraints, "limit": str(PAGE_SIZE), "cursor": str(self.cursor)}
        if self.sort_field is not None:
            params["sort_field"] = self.sort_field
        return params


@dataclass(frozen=True)
class Page:
    search: Search
    things: list[dict[str, Any]]
    #: things matching the search after this page (Bubble's `remaining`)
    remaining: int


@dataclass(frozen=True)
class _Reply:
    status: int | None
    text: str
    retry_after: int | None
    error: str | None
    seconds: float


class BubbleReader:
    """Sends searches and hands back their pages. Not thread-safe itself: one caller (its own threads only
    wait for HTTP)."""

    def __init__(
        self,
        settings: BubbleSettings,
        gate: SharedGate,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.client = client or httpx.Client(
            headers={"Authorization": f"Bearer {settings.token}"},
            timeout=settings.timeout_seconds,
            trust_env=False,
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
        )
        self.clock = clock
        self.sleep = sleep
        self.max_in_flight = max_in_flight
        #: requests sent (every attempt), and answered with 429
        self.requests = 0
        self.rate_limited = 0
        #: Bubble's answer time, smoothed (seconds); None before the first answer
        self.latency: float | None = None
        self._answered = False
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    @property
    def in_flight_wanted(self) -> int:
        """Requests in flight that keep reconcile's share busy at Bubble's answer time (Little's law, a
        quarter more), between 1 and max_in_flight."""
        per_second = self.settings.per_minute / 60
        if per_second <= 0:
            return self.max_in_flight
        latency = self.latency if self.latency is not None else ASSUMED_LATENCY_S
        return max(1, min(self.max_in_flight, math.ceil(per_second * latency * 1.25)))

    def pages(self, searches: Iterable[Search], expected: int | None = None) -> Iterator[Page]:
        """Each search's page, in the order they come back (not the order given). `expected`: how many
        searches there are, when the caller knows (turns are then reserved a few at a time)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="reconcile-bubble")
        todo = iter(searches)
        retry: deque[tuple[Search, int]] = deque()
        in_flight: dict[Future[_Reply], tuple[Search, int]] = {}
        exhausted = False
        sent = 0
        while True:
            while len(in_flight) < self.in_flight_wanted:
                if retry:
                    search, attempt = retry.popleft()
                elif not exhausted:
                    nxt = next(todo, None)
                    if nxt is None:
                        exhausted = True
                        continue
                    search, attempt = nxt, 1
                else:
                    break
                more = 1 if exhausted else (max(1, expected - sent) if expected is not None else 2)
                self.gate.turn(wanted=len(retry) + more)
                self.requests += 1
                sent += 1
                in_flight[self._pool.submit(self._get, search)] = (search, attempt)
            if not in_flight:
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                search, attempt = in_flight.pop(future)
                page = self._handle(search, attempt, future.result(), retry)
                if page is not None:
                    yield page

    # -- one request ----------------------------------------------------------------------------------------

    def _get(self, search: Search) -> _Reply:
        url = f"{self.settings.base_url}/obj/{quote(search.data_type, safe='')}"
        started = time.monotonic()
        try:
            response = self.client.get(url, params=search.params())
        except httpx.HTTPError as exc:
            what = "no answer within the timeout" if isinstance(exc, httpx.TimeoutException) else "no answer"
            return _Reply(None, "", None, f"{what}: {type(exc).__name__}: {exc}", time.monotonic() - started)
        return _Reply(
            response.status_code,
            response.text,
            _retry_after(response.headers.get("retry-after")),
            None,
            time.monotonic() - started,
        )

    def _handle(
        self, search: Search, attempt: int, reply: _Reply, retry: deque[tuple[Search, int]]
    ) -> Page | None:
        where = f"a search of {search.data_type} at {self.settings.base_url}"
        if reply.status is None and not self._answered:
            raise BubbleUnavailable(
                f"{where}: {reply.error}; check --bubble-url (or the stack's bubbleBaseUrl) and the network"
            )
        if reply.status is not None:
            self._answered = True
            with self._lock:
                self.latency = (
                    reply.seconds
                    if self.latency is None
                    else self.latency + (reply.seconds - self.latency) * _LATENCY_WEIGHT
                )
        answer = answer_of(reply.status)
        message = reply.error if reply.status is None else _said(reply.status, reply.text)
        self.gate.report(reply.status, message, reply.retry_after)
        if answer == "rate_limited":
            self.rate_limited += 1
            retry.append((search, attempt))  # the gate holds every worker back for the Retry-After
            return None
        if answer == "unavailable":
            if attempt >= MAX_ATTEMPTS:
                raise BubbleUnavailable(f"{where} failed {attempt} times in a row, the last: {message}")
            self.sleep(min(2.0 ** (attempt - 1), 30.0))
            retry.append((search, attempt + 1))
            return None
        if reply.status in (401, 403):
            raise BubbleRefused(
                f"Bubble refused the token ({message}): set ${TOKEN_ENV} to this app's Data API token "
                "(Bubble editor > Settings > API; live and version-test share it)"
            )
        if reply.status in (400, 404):
            raise BubbleRefused(
                f"{where} was refused ({message}): the data type must exist and be exposed to the Data API "
                "(Bubble editor > Settings > API), and the key field must be a searchable text field of it"
            )
        if reply.status != 200:
            raise BubbleRefused(f"{where} answered {message}")
        return _page(search, reply.text, where)


def _page(search: Search, text: str, where: str) -> Page:
    try:
        response = json.loads(text)["response"]
        results = response["results"]
        remaining = int(response.get("remaining") or 0)
        if not isinstance(results, list) or not all(
            isinstance(t, dict) and isinstance(t.get("_id"), str) for t in results
        ):
            raise ValueError("results is not a list of things")
    except (ValueError, KeyError, TypeError) as exc:
        raise BubbleRefused(f"{where} answered 200 with no search results ({exc}): {text[:200]!r}") from None
    return Page(search=search, things=results, remaining=remaining)


def _retry_after(value: str | None) -> int | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        return max(0, math.ceil(parsedate_to_datetime(text).timestamp() - time.time()))
    except (TypeError, ValueError):
        return None


def _said(status: int, text: str) -> str:
    """Bubble's answer in a line: its status and message (the error envelope, or a 401's translation)."""
    detail = text.strip()[:200] or "(no body)"
    try:
        parsed = json.loads(text)
        body = parsed.get("body") if isinstance(parsed.get("body"), dict) else parsed
        code = body.get("status") if isinstance(body.get("status"), str) else None
        said = body.get("message") or body.get("translation")
        if isinstance(said, str):
            detail = f"{code}: {said}" if code else said
    except (ValueError, AttributeError):
        pass
    return f"{status} {' '.join(detail.split())[:300]}"


def next_page(search: Search, page: Page) -> Search | None:
    """The search's next page, when Bubble has more."""
    if page.remaining <= 0 or not page.things:
        return None
    return replace(search, cursor=search.cursor + len(page.things))

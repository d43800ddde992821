"""The Bubble double itself: `BubbleDouble` (lifecycle, knobs, inspection, the request log, editing things
behind the client's back) and the handling of one request: routing a path to a `Route`, latency, outage,
auth, rate limit, faults, the Data API operations on the store, bulk calls and `/meta`. The HTTP side is in
`server.py`, the `/_double/` admin endpoints in `admin.py`.

Why one module (over 400 lines): the request pipeline and the control methods are one class sharing the knobs,
the store and the request log under one lock; splitting the class would scatter that state.
"""

from __future__ import annotations

import copy
import hmac
import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from email.utils import formatdate
from typing import Any, TypeVar
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode

from devstack.bubble_double.admin import handle_admin
from devstack.bubble_double.knobs import FaultRule, TokenBucket, validated_knobs
from devstack.bubble_double.meta import meta_document
from devstack.bubble_double.replies import (
    BubbleError,
    Reply,
    Request,
    error_reply,
    invalid_data,
    json_body,
    json_reply,
    status_name,
)
from devstack.bubble_double.server import Server
from devstack.bubble_double.store import Store
from devstack.bubble_double.things import ENVS, now_iso

_T = TypeVar("_T")

MAX_BULK_LINES = 1000  # Bubble's documented bulk maximum
LOG_MAX_ENTRIES = 100_000  # enough for a benchmark run; older entries are dropped and counted
BODY_SUMMARY_CHARS = 200
# The knobs that describe the app itself (AppRules), not the double's behaviour.
_APP_RULE_KNOBS = ("schema", "used_email_answer", "user_email_search", "user_email_patch", "null_modify")
# Bubble's 401 body (captured responses): not the {statusCode, body} envelope of other errors.
UNAUTHORIZED_BODY: dict[str, Any] = {
    "error_class": "Unauthorized",
    "args": {},
    "message": None,
    "translation": "Unauthorized: invalid or missing API token",
}
_API_ROUTE_RE = re.compile(r"^(?P<test>/version-test)?/api/1\.1/(?P<rest>.*)$")


@dataclass(frozen=True)
class Route:
    """A Data API path: its environment, then the data type and the id or "bulk" (`/obj/...`), or neither
    (`/meta`)."""

    env: str
    type: str | None
    target: str | None = None

    @property
    def meta(self) -> bool:
        return self.type is None


def _route(path: str) -> Route | None:
    """The Route of a Data API path (`/obj/<type>[/<id>|/bulk]` or `/meta`), None for anything else."""
    match = _API_ROUTE_RE.match(path)
    if match is None:
        return None
    env = "test" if match["test"] else "live"
    if match["rest"] == "meta":
        return Route(env, None)
    if not match["rest"].startswith("obj/"):
        return None
    parts = [unquote(part) for part in match["rest"][len("obj/") :].split("/")]
    if not 1 <= len(parts) <= 2 or any(not part for part in parts):
        return None
    return Route(env, parts[0], parts[1] if len(parts) == 2 else None)


def _body_summary(body: bytes) -> str | None:
    if not body:
        return None
    text = body[: BODY_SUMMARY_CHARS * 4].decode("utf-8", errors="replace")
    return text if len(text) <= BODY_SUMMARY_CHARS else text[:BODY_SUMMARY_CHARS] + "…"


def _redacted_query(query: str) -> str:
    # Bubble also accepts the token as ?api_token=...; keep it out of the log like the header.
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(key == "api_token" for key, _ in pairs):
        return query
    return urlencode([(k, "[redacted]" if k == "api_token" else v) for k, v in pairs])


class BubbleDouble:
    """A TEST DOUBLE of the Bubble Data API served over HTTP on a background thread.

    >>> with BubbleDouble(token="t" * 32, latency_ms=5) as bubble:  # doctest: +SKIP
    ...     httpx.post(f"{bubble.url}/api/1.1/obj/user", json={...}, headers=...)
    ...     bubble.records("user")
    """

    def __init__(self, *, token: str, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._store = Store()
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_MAX_ENTRIES)
        self._logged = 0
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._token = ""
        self._latency_ms = 0.0
        self._latency_jitter_ms = 0.0
        self._rate_limit_per_minute = 0.0
        self._rate_limit_burst: float | None = None
        self._faults: list[FaultRule] = []
        self._outage_status: int | None = None
        self._seed: int | None = None
        self._retry_after = "seconds"
        self._bulk_ms_per_line = 0.0
        self._delete_status = 204
        self._meta_exposed = True
        self._fault_rng = random.Random()
        self._jitter_rng = random.Random()
        self._bucket: TokenBucket | None = None
        self.configure(token=token, **knobs)

    # lifecycle

    def start(self) -> None:
        """Binds and starts serving on a background thread; the socket is listening on return."""
        if self._server is not None:
            raise RuntimeError("the Bubble double is already running")
        self._stopping.clear()
        self._server = Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for the loop to notice
            name="bubble-double",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops serving, drops open connections and wakes requests sleeping on latency or hangs."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> BubbleDouble:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """`http://host:port`; callers append `/api/1.1` or `/version-test/api/1.1`."""
        if self._server is None:
            raise RuntimeError("the Bubble double is not running")
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # typed as maybe bytes too; an AF_INET(6) server's address is text
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    # control and inspection

    def configure(self, **knobs: Any) -> None:
        """Changes knobs at run time; raises ValueError (and changes nothing) on a bad value."""
        checked = validated_knobs(knobs)
        with self._lock:
            rules = {name: checked.pop(name) for name in _APP_RULE_KNOBS if name in checked}
            if rules:
                self._store.rules = replace(self._store.rules, **rules)
            for name, value in checked.items():
                setattr(self, f"_{name}", value)
            if "seed" in checked:
                self._reseed()
            if {"rate_limit_per_minute", "rate_limit_burst"} & checked.keys():
                self._reset_bucket()

    def config(self) -> dict[str, Any]:
        """The current knobs, without the token."""
        with self._lock:
            return {
                "latency_ms": self._latency_ms,
                "latency_jitter_ms": self._latency_jitter_ms,
                "rate_limit_per_minute": self._rate_limit_per_minute,
                "rate_limit_burst": self._rate_limit_burst,
                "faults": [asdict(rule) for rule in self._faults],
                "outage_status": self._outage_status,
                "seed": self._seed,
                "retry_after": self._retry_after,
                "bulk_ms_per_line": self._bulk_ms_per_line,
                "delete_status": self._delete_status,
                "meta_exposed": self._meta_exposed,
                **{name: copy.deepcopy(getattr(self._store.rules, name)) for name in _APP_RULE_KNOBS},
            }

    def reset(self) -> None:
        """Clears data, the request log, faults and an outage, refills the bucket and reseeds; other knobs
        stay."""
        with self._lock:
            self._store.clear()
            self._log.clear()
            self._logged = 0
            self._faults = []
            self._outage_status = None
            self._reseed()
            self._reset_bucket()

    def records(self, type: str, env: str = "live") -> list[dict[str, Any]]:
        """Copies of every stored thing of `type` in `env` ("live" or "test"), in creation order."""
        _check_env(env)
        with self._lock:
            return copy.deepcopy(list(self._store.table(env, type).values()))

    def record(self, type: str, thing_id: str, env: str = "live") -> dict[str, Any] | None:
        """A copy of one thing as a GET returns it, or None when `env` has no thing of `type` with that id."""
        _check_env(env)
        with self._lock:
            return copy.deepcopy(self._store.table(env, type).get(thing_id))

    def requests(self) -> list[dict[str, Any]]:
        """Copies of the request log entries, oldest first."""
        return self.request_log()[0]

    def request_log(self) -> tuple[list[dict[str, Any]], int]:
        """Copies of the request log entries, oldest first, and how many older entries were dropped."""
        with self._lock:
            return copy.deepcopy(list(self._log)), self._logged - len(self._log)

    # editing things behind the client's back, as an editor or a workflow in Bubble would. These requests are
    # not Data API requests: no token, latency, rate limit, fault or log entry, but the app's rules (schema,
    # field types, relations, unique emails) hold. A refusal raises ValueError with Bubble's message.

    def add(self, type: str, fields: dict[str, Any], env: str = "live") -> str:
        """Creates a thing of `type` with `fields` (display names, as a create body) and returns its id."""
        return _plainly(lambda: self.edit_create(type, fields, env))

    def modify(self, type: str, thing_id: str, fields: dict[str, Any], env: str = "live") -> None:
        """Changes the given fields of a thing (a null empties one) and its Modified Date, as a PATCH."""
        _plainly(lambda: self.edit_modify(type, thing_id, fields, env))

    def delete(self, type: str, thing_id: str, env: str = "live") -> None:
        """Deletes a thing; a relation that named it keeps the id, as nothing in Bubble rewrites it."""
        _plainly(lambda: self.edit_delete(type, thing_id, env))

    def edit_create(self, type_: str, fields: Any, env: str) -> str:
        """`add`, raising Bubble's error (`BubbleError`) for the admin endpoints to answer."""
        return self._edit(type_, env, lambda: self._store.create(env, type_, fields))

    def edit_modify(self, type_: str, thing_id: str, fields: Any, env: str) -> None:
        self._edit(type_, env, lambda: self._store.update(env, type_, thing_id, fields, replace=False))

    def edit_delete(self, type_: str, thing_id: str, env: str) -> None:
        self._edit(type_, env, lambda: self._store.delete(env, type_, thing_id))

    def _edit(self, type_: str, env: str, operation: Callable[[], _T]) -> _T:
        _check_env(env)
        with self._lock:
            self._store.check_type(type_)
            return operation()

    def _reseed(self) -> None:
        self._fault_rng.seed(self._seed)
        self._jitter_rng.seed(None if self._seed is None else self._seed + 1)

    def _reset_bucket(self) -> None:
        self._bucket = None
        if self._rate_limit_per_minute > 0:
            self._bucket = TokenBucket(self._rate_limit_per_minute, self._rate_limit_burst, time.monotonic())

    # request handling (called from handler threads)

    def handle(self, request: Request) -> Reply:
        if request.path.startswith("/_double/"):
            return handle_admin(self, request)
        started = time.monotonic()
        route = _route(request.path)
        fault: str | None = None
        if route is None:
            reply = error_reply(BubbleError(404, "NOT_FOUND", f"no Data API route for {request.path}"))
        else:
            reply, fault = self._handle_obj(request, route)
        self._record(request, route, reply, fault, started)
        return reply

    def _handle_obj(self, request: Request, route: Route) -> tuple[Reply, str | None]:
        """The reply and the name of the fault that shaped it ("outage" or a rule's kind), if one did."""
        with self._lock:
            delay = self._latency_ms + self._jitter_rng.uniform(0, self._latency_jitter_ms)
            token = self._token
        # Sleep without the lock so a slow request never holds up others.
        if delay > 0:
            self._stopping.wait(delay / 1000)

        # Read after the latency: a request answered once the outage has begun fails, as its log time says.
        with self._lock:
            outage_status = self._outage_status
        if outage_status is not None:
            # Bubble is down: whatever answers checks no token and counts nothing against the rate limit.
            error = BubbleError(outage_status, status_name(outage_status), f"outage: {outage_status}")
            return error_reply(error), "outage"

        # A real app answers /meta without a token (a public client's notes of a real branch); a wrong token
        # is still refused there, as on every other route (the double's choice, UNCONFIRMED).
        tokenless_meta = route.meta and request.authorization is None
        if not tokenless_meta and not self._authorized(request.authorization, token):
            return json_reply(401, UNAUTHORIZED_BODY), None

        with self._lock:
            wait = self._bucket.take(time.monotonic()) if self._bucket is not None else None
            fault = None if wait is not None else self._pick_fault(request.method, request.path)
        if wait is not None:
            retry_after = max(1, math.ceil(wait))
            error = BubbleError(429, "TOO_MANY_REQUESTS", f"rate limit exceeded; retry in {retry_after} s")
            return error_reply(error, self._retry_after_header(retry_after)), None

        if fault is not None and fault.kind == "status":
            error = BubbleError(fault.status, status_name(fault.status), f"injected fault: {fault.status}")
            return error_reply(error), fault.kind
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.hang_seconds)
        if route.target == "bulk" and request.method == "POST":
            with self._lock:
                per_line = self._bulk_ms_per_line
            # Bubble works through a bulk call line by line (up to 4 minutes for 1,000 lines: manual).
            if per_line > 0:
                self._stopping.wait(per_line * _line_count(request.body) / 1000)
            if fault is not None and fault.kind == "bulk_capacity":
                # manual: a capacity or system failure gives one error and no per-line results
                line = json.dumps({"status": "error", "message": "Bulk request failed: capacity exceeded"})
                return Reply(200, line.encode(), content_type="text/plain; charset=utf-8"), fault.kind

        try:
            with self._lock:
                reply = self._meta(request, route) if route.meta else self._operate(request, route)
        except BubbleError as exc:
            reply = error_reply(exc)
        if fault is not None and fault.kind == "close_after_store":
            reply.drop = True
        return reply, fault.kind if fault else None

    def _retry_after_header(self, seconds: int) -> dict[str, str]:
        if self._retry_after == "absent":
            return {}
        if self._retry_after == "date":
            return {"Retry-After": formatdate(time.time() + seconds, usegmt=True)}
        return {"Retry-After": str(seconds)}

    @staticmethod
    def _authorized(header: str | None, token: str) -> bool:
        scheme, _, credential = (header or "").partition(" ")
        # compare_digest on bytes: constant time, and it accepts non-ASCII input.
        return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), token.encode())

    def _pick_fault(self, method: str, path: str) -> FaultRule | None:
        for rule in self._faults:
            if rule.spent or not rule.matches(method, path):
                continue
            if rule.probability < 1.0 and self._fault_rng.random() >= rule.probability:
                continue
            rule.fired += 1
            return rule
        return None

    def _meta(self, request: Request, route: Route) -> Reply:
        if request.method != "GET":
            raise BubbleError(
                405, "METHOD_NOT_ALLOWED", f"{request.method} is not supported on {request.path}"
            )
        if not self._meta_exposed or self._store.rules.schema is None:
            # An app that does not describe itself (knob meta_exposed, or no schema: an app nobody
            # described); callers probe the Data API instead. What such an app answers is UNCONFIRMED.
            raise BubbleError(404, "NOT_FOUND", "this app does not expose /meta")
        return json_reply(200, meta_document(self._store.rules.types, route.env))

    def _operate(self, request: Request, route: Route) -> Reply:
        method, env, target = request.method, route.env, route.target
        type_ = str(route.type)
        self._store.check_type(type_)
        if target is None and method == "GET":
            params = {
                key: values[0] for key, values in parse_qs(request.query, keep_blank_values=True).items()
            }
            return json_reply(200, {"response": self._store.search(env, type_, params)})
        if target is None and method == "POST":
            return json_reply(
                201, {"status": "success", "id": self._store.create(env, type_, json_body(request))}
            )
        if target == "bulk" and method == "POST":
            return self._bulk(request, env, type_)
        if target is not None and method == "GET":
            return json_reply(200, {"response": copy.deepcopy(self._store.get(env, type_, target))})
        if target is not None and method in ("PATCH", "PUT"):
            self._store.update(env, type_, target, json_body(request), replace=method == "PUT")
            return Reply(204)
        if target is not None and method == "DELETE":
            self._store.delete(env, type_, target)
            return Reply(self._delete_status)  # knob delete_status: 204 (default) or 200, no body either way
        raise BubbleError(405, "METHOD_NOT_ALLOWED", f"{method} is not supported on {request.path}")

    def _bulk(self, request: Request, env: str, type_: str) -> Reply:
        if not request.content_type.lower().startswith("text/plain"):
            raise invalid_data("bulk requests need Content-Type: text/plain (one JSON object per line)")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise invalid_data(f"the body is not UTF-8: {exc}") from exc
        # A trailing newline ends the last line; it does not start an empty one.
        lines = text.rstrip("\r\n").splitlines()
        if not lines:
            raise invalid_data("the bulk body has no lines")
        if len(lines) > MAX_BULK_LINES:
            raise invalid_data(f"at most {MAX_BULK_LINES} lines per bulk call, got {len(lines)}")
        results = self._store.bulk(env, type_, lines)
        body = "\n".join(json.dumps(result) for result in results).encode()
        return Reply(200, body, content_type="text/plain; charset=utf-8")

    def _record(
        self,
        request: Request,
        route: Route | None,
        reply: Reply,
        fault: str | None,
        started: float,
    ) -> None:
        entry = {
            "time": now_iso(),
            "method": request.method,
            "path": request.path,
            "query": _redacted_query(request.query),
            "env": route.env if route else None,
            "type": route.type if route else None,
            "status": reply.status,
            "responded": not reply.drop,
            "fault": fault,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
            "body_bytes": len(request.body),
            "body": _body_summary(request.body),
            "connection": request.connection,
        }
        with self._lock:
            self._log.append(entry)
            self._logged += 1


def _line_count(body: bytes) -> int:
    return len(body.rstrip(b"\r\n").splitlines())


def _check_env(env: str) -> None:
    if env not in ENVS:
        raise ValueError(f"env must be one of {ENVS}, got {env!r}")


def _plainly(operation: Callable[[], _T]) -> _T:
    """Runs an edit for a Python caller: Bubble's refusal becomes a ValueError carrying its message."""
    try:
        return operation()
    except BubbleError as exc:
        raise ValueError(exc.message) from exc

"""A TEST DOUBLE of Bubble.io's Data API, for tests, the local dev stack and benchmarks only.

This is NOT Bubble and NOT a client of Bubble: no product code may import or depend on it. It serves
the subset of the Data API that bubble-sync uses, shaped after the Bubble manual and the notes in
`reference/supabase-facts.md` §6, plus knobs to make it slow, rate-limited or faulty on purpose.

Environments: `/api/1.1/obj/...` is "live" and `/version-test/api/1.1/obj/...` is "test"; each has its own
data store, as on Bubble.

| Request                                       | Answer                                                     |
|-----------------------------------------------|------------------------------------------------------------|
| `POST   <prefix>/obj/<type>` JSON object      | 201 `{"status": "success", "id": "<id>"}`                  |
| `GET    <prefix>/obj/<type>/<id>`             | 200 `{"response": {...fields, "_id": ...}}`                |
| `PATCH  <prefix>/obj/<type>/<id>` JSON object | 204, merges the fields                                     |
| `PUT    <prefix>/obj/<type>/<id>` JSON object | 204, replaces the fields                                   |
| `DELETE <prefix>/obj/<type>/<id>`             | 204                                                        |
| `GET    <prefix>/obj/<type>?constraints=[..]` | 200 `{"response": {cursor, results, count, remaining}}`    |
| `POST   <prefix>/obj/<type>/bulk` text/plain  | 200 text/plain, one `{"status": ...}` line per input line  |

* IDs look like Bubble's: `<13-digit ms timestamp>x<18 digits>`. Records carry `_id`, `Created Date` and
  `Modified Date` (ISO 8601, UTC, milliseconds) next to their fields; clients may not set those three.
* Search: `constraints` is a JSON array of `{"key", "constraint_type", "value"}`. Supported types:
  `equals`, `not equal`, `is_empty`, `is_not_empty`, `in`, `not in`, `text contains`, `not text contains`,
  `greater than`, `less than`, `contains`, `not contains`. `limit` defaults to 100 and is capped at 100;
  `cursor` is the 0-based start. Results come in creation order unless `sort_field` (and
  `descending=true`) is given; `additional_sort_fields` is ignored. `count` is the page size and
  `remaining` the number of matches after this page.
* Bulk: at most 1,000 lines; a failing line (bad JSON, not an object, duplicate email, ...) gets
  `{"status": "error", "message": ...}` and the other lines still succeed.
* Type `user`: the `email` field must look like an email and be unique per environment, ignoring case.
  It is a plain field here; real Bubble keeps user emails under `authentication`.
* Every `/obj` request needs `Authorization: Bearer <token>`, compared in constant time. Bubble's
  `?api_token=` alternative is not accepted (it is only redacted from the log).

Errors use the envelope from the Bubble manual, `{"statusCode": 404, "body": {"status": "MISSING_DATA",
"message": "..."}}`. Only `MISSING_DATA` is quoted from Bubble; the other status strings are this double's
choice and UNCONFIRMED: `UNAUTHORIZED` (401), `INVALID_DATA` (400), `NOT_VALID_EMAIL` (400), `USED_EMAIL`
(400, duplicate email), `TOO_MANY_REQUESTS` (429), `NOT_FOUND` (404, no such route), `METHOD_NOT_ALLOWED`
(405), `PAYLOAD_TOO_LARGE` (413); injected faults use the HTTP status name, e.g. `SERVICE_UNAVAILABLE`.

Knobs, settable at construction, with `configure(...)` or `POST /_double/config`:

* `latency_ms`, `latency_jitter_ms`: each `/obj` request sleeps latency plus a uniform 0..jitter.
* `rate_limit_per_minute` (0 = off), `rate_limit_burst`: a token bucket refilled at rate/60 per second
  holding at most `burst` tokens (default `max(1, rate/60)`). Without a token the answer is 429 with an
  integer `Retry-After` (seconds until a token is available, at least 1); nothing is stored. A bulk call
  is one request.
* `faults`: a list of rules `{"kind": "status" | "hang" | "close_after_store", "status": 503,
  "hang_seconds": 30, "probability": 1, "count": N, "method": "POST", "path_regex": "..."}`. Rules are
  tried in order and at most one applies per request. `count` limits how many times a rule fires (then it
  is spent); `path_regex` is searched in the path without the query. `status` answers that status and
  stores nothing; `hang` sleeps, then processes normally; `close_after_store` processes the request
  (storing what it stores) and closes the connection without any response. Note: Deno's fetch re-sends
  a request once when a *pooled* keep-alive connection closes before the response (denoland/deno#32566),
  so from Deno this fault usually shows up as a second request, not as an error.
* `seed`: seeds the random choices (fault probabilities, jitter) so tests are deterministic.
* `token`: the API token (never echoed back).

Order of a `/obj` request: latency, auth (401), rate limit (429), fault, operation. Faults and the rate
limit therefore never consume anything for unauthorised requests.

Admin endpoints under `/_double/` (no auth; bind to localhost only): `GET health`, `GET records?env=live|test
&type=user`, `GET requests`, `GET config`, `POST config` (JSON knobs), `POST reset` (clears data, log and
faults; keeps the other knobs). Request log entries, oldest first, hold `time` (when answered), `method`,
`path`, `query`, `env`, `type`, `status`, `responded` (false when the connection was dropped), `fault`,
`duration_ms`, `body_bytes`, `body` (the first 200 characters) and `connection` (a serial per TCP
connection, to check keep-alive); never the Authorization header.

Run it from the command line with `python -m devstack.bubble_double --port 0`, the token in
`BUBBLE_DOUBLE_TOKEN` (or `--token`, which wins but shows up in `ps`). Once listening it prints one line,
`BUBBLE_URL=http://127.0.0.1:<port>`, and it exits cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import copy
import hmac
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

__all__ = ["BubbleDouble", "FaultRule", "main"]

ENVS = ("live", "test")
MAX_LIMIT = 100  # Bubble's documented maximum page size
MAX_BULK_LINES = 1000  # Bubble's documented bulk maximum
MAX_BODY_BYTES = 16 * 1024 * 1024  # far above any real payload; only guards against runaway clients
LOG_MAX_ENTRIES = 100_000  # enough for a benchmark run; older entries are dropped and counted
BODY_SUMMARY_CHARS = 200
BUILTIN_FIELDS = frozenset({"_id", "Created Date", "Modified Date"})
KNOB_NAMES = (
    "token",
    "latency_ms",
    "latency_jitter_ms",
    "rate_limit_per_minute",
    "rate_limit_burst",
    "faults",
    "seed",
)
FAULT_KINDS = ("status", "hang", "close_after_store")
CONSTRAINT_TYPES = frozenset(
    {
        "equals",
        "not equal",
        "is_empty",
        "is_not_empty",
        "in",
        "not in",
        "text contains",
        "not text contains",
        "greater than",
        "less than",
        "contains",
        "not contains",
    }
)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OBJ_ROUTE_RE = re.compile(r"^(?P<test>/version-test)?/api/1\.1/obj/(?P<rest>.*)$")


# --- errors and replies ------------------------------------------------------------------------------


class BubbleError(Exception):
    """An error answered with Bubble's `{"statusCode", "body": {"status", "message"}}` envelope."""

    def __init__(self, status_code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.status = status
        self.message = message

    def envelope(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "body": {"status": self.status, "message": self.message}}


def _status_name(code: int) -> str:
    try:
        return HTTPStatus(code).name
    except ValueError:
        return "ERROR"


def _invalid(message: str) -> BubbleError:
    return BubbleError(400, "INVALID_DATA", message)


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Set by the close_after_store fault: the handler closes the socket instead of answering.
    drop: bool = False


def _json_reply(status: int, payload: Any) -> _Reply:
    return _Reply(status, json.dumps(payload).encode())


def _error_reply(error: BubbleError, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(error.status_code, json.dumps(error.envelope()).encode(), headers=headers or {})


# --- knobs -------------------------------------------------------------------------------------------


def _number(name: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return float(value)


@dataclass
class FaultRule:
    """One injected fault; see the module docstring for the meaning of each field."""

    kind: str
    status: int = 503
    hang_seconds: float = 30.0
    probability: float = 1.0
    count: int | None = None
    method: str | None = None
    path_regex: str | None = None
    fired: int = 0

    @classmethod
    def from_dict(cls, raw: Any) -> FaultRule:
        if isinstance(raw, FaultRule):
            return FaultRule(**{**asdict(raw), "fired": 0})
        if not isinstance(raw, dict):
            raise ValueError(f"a fault rule must be an object, got {raw!r}")
        unknown = set(raw) - {
            "kind",
            "status",
            "hang_seconds",
            "probability",
            "count",
            "method",
            "path_regex",
        }
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        kind = raw.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {kind!r}")
        status = raw.get("status", 503)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"fault status must be an integer 400..599, got {status!r}")
        probability = _number("probability", raw.get("probability", 1.0))
        if probability > 1:
            raise ValueError(f"probability must be in 0..1, got {probability!r}")
        count = raw.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError(f"count must be a non-negative integer or omitted, got {count!r}")
        method = raw.get("method")
        if method is not None and not isinstance(method, str):
            raise ValueError(f"method must be a string, got {method!r}")
        path_regex = raw.get("path_regex")
        if path_regex is not None:
            try:
                re.compile(path_regex)
            except (re.error, TypeError) as exc:
                raise ValueError(f"path_regex does not compile: {exc}") from exc
        return cls(
            kind=kind,
            status=status,
            hang_seconds=_number("hang_seconds", raw.get("hang_seconds", 30.0)),
            probability=probability,
            count=count,
            method=method.upper() if method else None,
            path_regex=path_regex,
        )

    @property
    def spent(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None


def _validated_knobs(raw: dict[str, Any]) -> dict[str, Any]:
    """Checks every knob before any is applied, so a bad call changes nothing."""
    unknown = set(raw) - set(KNOB_NAMES)
    if unknown:
        raise ValueError(f"unknown knobs {sorted(unknown)}; known: {list(KNOB_NAMES)}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "token":
            if not isinstance(value, str) or not value:
                raise ValueError("token must be a non-empty string")
            out[name] = value
        elif name in ("latency_ms", "latency_jitter_ms", "rate_limit_per_minute"):
            out[name] = _number(name, value)
        elif name == "rate_limit_burst":
            # Below one token the bucket could never admit a request.
            out[name] = None if value is None else _number(name, value, minimum=1.0)
        elif name == "faults":
            if not isinstance(value, list | tuple):
                raise ValueError("faults must be a list of rules")
            out[name] = [FaultRule.from_dict(rule) for rule in value]
        elif name == "seed":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"seed must be an integer or null, got {value!r}")
            out[name] = value
    return out


class TokenBucket:
    """Admits a request per token; tokens refill continuously at `per_minute / 60` per second."""

    def __init__(self, per_minute: float, burst: float | None, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> float | None:
        """Takes a token and returns None, or returns the seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


# --- the data store ----------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id() -> str:
    return f"{int(time.time() * 1000):013d}x{10**17 + secrets.randbelow(9 * 10**17)}"


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _same(a: Any, b: Any) -> bool:
    # Python says True == 1; JSON-typed data should not.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


@dataclass(frozen=True)
class _Constraint:
    key: str
    kind: str
    value: Any

    def matches(self, record: dict[str, Any]) -> bool:
        present = self.key in record
        value = record.get(self.key)
        kind = self.kind
        if kind == "is_empty":
            return _is_empty(value)
        if kind == "is_not_empty":
            return not _is_empty(value)
        if kind == "equals":
            return present and _same(value, self.value)
        if kind == "not equal":
            return not (present and _same(value, self.value))
        if kind in ("in", "not in"):
            found = present and any(_same(value, item) for item in self.value)
            return found if kind == "in" else not found
        if kind in ("text contains", "not text contains"):
            # Bubble's text search is case-insensitive (UNCONFIRMED for the Data API).
            found = isinstance(value, str) and str(self.value).lower() in value.lower()
            return found if kind == "text contains" else not found
        if kind in ("contains", "not contains"):
            found = isinstance(value, list) and any(_same(item, self.value) for item in value)
            return found if kind == "contains" else not found
        if not (present and _comparable(value, self.value)):
            return False
        return value > self.value if kind == "greater than" else value < self.value


def _parse_constraints(raw: str | None) -> list[_Constraint]:
    if raw is None or raw == "":
        return []
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise _invalid(f"constraints is not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise _invalid("constraints must be a JSON array")
    parsed = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise _invalid(f"each constraint needs a string key: {item!r}")
        kind = item.get("constraint_type")
        if kind not in CONSTRAINT_TYPES:
            raise _invalid(f"unsupported constraint_type {kind!r}")
        if kind not in ("is_empty", "is_not_empty") and "value" not in item:
            raise _invalid(f"constraint {kind!r} on {item['key']!r} needs a value")
        value = item.get("value")
        if kind in ("in", "not in") and not isinstance(value, list):
            raise _invalid(f"constraint {kind!r} needs a list value")
        parsed.append(_Constraint(item["key"], kind, value))
    return parsed


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _invalid(f"{name} must be an integer, got {raw!r}") from exc
    if value < 0:
        raise _invalid(f"{name} must not be negative, got {value}")
    return value


class _Store:
    """Things per (environment, type), in creation order. Not thread-safe: callers hold the lock."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def table(self, env: str, type_: str) -> dict[str, dict[str, Any]]:
        return self._tables.setdefault((env, type_), {})

    def clear(self) -> None:
        self._tables.clear()

    def _check_fields(self, env: str, type_: str, fields: Any, own_id: str | None) -> dict[str, Any]:
        if not isinstance(fields, dict):
            raise _invalid("the body must be a JSON object of field: value")
        builtin = BUILTIN_FIELDS.intersection(fields)
        if builtin:
            raise _invalid(f"built-in fields cannot be set: {sorted(builtin)}")
        if type_ == "user" and fields.get("email") is not None:
            email = fields["email"]
            if not isinstance(email, str) or not _EMAIL_RE.match(email):
                raise BubbleError(400, "NOT_VALID_EMAIL", f"{email!r} is not a valid email address")
            for other_id, other in self.table(env, type_).items():
                other_email = other.get("email")
                if (
                    other_id != own_id
                    and isinstance(other_email, str)
                    and other_email.casefold() == email.casefold()
                ):
                    raise BubbleError(400, "USED_EMAIL", f"a user with email {email!r} already exists")
        return fields

    def create(self, env: str, type_: str, fields: Any) -> str:
        fields = self._check_fields(env, type_, fields, None)
        table = self.table(env, type_)
        thing_id = _new_id()
        while thing_id in table:
            thing_id = _new_id()
        stamp = _now_iso()
        table[thing_id] = {**fields, "_id": thing_id, "Created Date": stamp, "Modified Date": stamp}
        return thing_id

    def get(self, env: str, type_: str, thing_id: str) -> dict[str, Any]:
        thing = self.table(env, type_).get(thing_id)
        if thing is None:
            raise BubbleError(
                404,
                "MISSING_DATA",
                f"Missing object of type {type_}: object with id {thing_id} does not exist",
            )
        return thing

    def update(self, env: str, type_: str, thing_id: str, fields: Any, *, replace: bool) -> None:
        thing = self.get(env, type_, thing_id)
        fields = self._check_fields(env, type_, fields, thing_id)
        kept = {key: thing[key] for key in ("_id", "Created Date")}
        base = {} if replace else thing
        self.table(env, type_)[thing_id] = {**base, **fields, **kept, "Modified Date": _now_iso()}

    def delete(self, env: str, type_: str, thing_id: str) -> None:
        self.get(env, type_, thing_id)
        del self.table(env, type_)[thing_id]

    def search(self, env: str, type_: str, params: dict[str, str]) -> dict[str, Any]:
        constraints = _parse_constraints(params.get("constraints"))
        limit = min(_int_param(params, "limit", MAX_LIMIT), MAX_LIMIT)
        cursor = _int_param(params, "cursor", 0)
        matches = [t for t in self.table(env, type_).values() if all(c.matches(t) for c in constraints)]
        sort_field = params.get("sort_field")
        if sort_field:
            descending = params.get("descending", "false").lower() == "true"
            present = [t for t in matches if not _is_empty(t.get(sort_field))]
            missing = [t for t in matches if _is_empty(t.get(sort_field))]
            try:
                present.sort(key=lambda t: t[sort_field], reverse=descending)
            except TypeError as exc:
                raise _invalid(f"cannot sort on {sort_field!r}: mixed value types") from exc
            matches = present + missing
        page = matches[cursor : cursor + limit]
        return {
            "cursor": cursor,
            "results": copy.deepcopy(page),
            "count": len(page),
            "remaining": max(0, len(matches) - cursor - len(page)),
        }

    def bulk(self, env: str, type_: str, lines: list[str]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            try:
                if not line.strip():
                    raise _invalid(f"line {number} is empty")
                try:
                    fields = json.loads(line)
                except ValueError as exc:
                    raise _invalid(f"line {number} is not valid JSON: {exc}") from exc
                results.append({"status": "success", "id": self.create(env, type_, fields)})
            except BubbleError as exc:
                results.append({"status": "error", "message": exc.message})
        return results


# --- the double --------------------------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    path: str
    query: str
    authorization: str | None
    content_type: str
    body: bytes
    connection: int


def _route(path: str) -> tuple[str, str, str | None] | None:
    """Returns (env, type, id or "bulk" or None) for a Data API path, None for anything else."""
    match = _OBJ_ROUTE_RE.match(path)
    if match is None:
        return None
    parts = [unquote(part) for part in match["rest"].split("/")]
    if not 1 <= len(parts) <= 2 or any(not part for part in parts):
        return None
    env = "test" if match["test"] else "live"
    return env, parts[0], parts[1] if len(parts) == 2 else None


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
        self._store = _Store()
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_MAX_ENTRIES)
        self._logged = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._token = ""
        self._latency_ms = 0.0
        self._latency_jitter_ms = 0.0
        self._rate_limit_per_minute = 0.0
        self._rate_limit_burst: float | None = None
        self._faults: list[FaultRule] = []
        self._seed: int | None = None
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
        self._server = _Server((self._host, self._port), self)
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
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    # control and inspection

    def configure(self, **knobs: Any) -> None:
        """Changes knobs at run time; raises ValueError (and changes nothing) on a bad value."""
        checked = _validated_knobs(knobs)
        with self._lock:
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
                "seed": self._seed,
            }

    def reset(self) -> None:
        """Clears data, the request log and faults, refills the bucket and reseeds; other knobs stay."""
        with self._lock:
            self._store.clear()
            self._log.clear()
            self._logged = 0
            self._faults = []
            self._reseed()
            self._reset_bucket()

    def records(self, type: str, env: str = "live") -> list[dict[str, Any]]:
        """Copies of every stored thing of `type` in `env` ("live" or "test"), in creation order."""
        if env not in ENVS:
            raise ValueError(f"env must be one of {ENVS}, got {env!r}")
        with self._lock:
            return copy.deepcopy(list(self._store.table(env, type).values()))

    def requests(self) -> list[dict[str, Any]]:
        """Copies of the request log entries, oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._log))

    def _reseed(self) -> None:
        self._fault_rng.seed(self._seed)
        self._jitter_rng.seed(None if self._seed is None else self._seed + 1)

    def _reset_bucket(self) -> None:
        self._bucket = None
        if self._rate_limit_per_minute > 0:
            self._bucket = TokenBucket(self._rate_limit_per_minute, self._rate_limit_burst, time.monotonic())

    # request handling (called from handler threads)

    def handle(self, request: _Request) -> _Reply:
        if request.path.startswith("/_double/"):
            return self._handle_admin(request)
        started = time.monotonic()
        route = _route(request.path)
        fault: FaultRule | None = None
        if route is None:
            reply = _error_reply(BubbleError(404, "NOT_FOUND", f"no Data API route for {request.path}"))
        else:
            reply, fault = self._handle_obj(request, route)
        self._record(request, route, reply, fault, started)
        return reply

    def _handle_obj(
        self, request: _Request, route: tuple[str, str, str | None]
    ) -> tuple[_Reply, FaultRule | None]:
        with self._lock:
            delay = self._latency_ms + self._jitter_rng.uniform(0, self._latency_jitter_ms)
            token = self._token
        # Sleep without the lock so a slow request never holds up others.
        if delay > 0:
            self._stopping.wait(delay / 1000)

        if not self._authorized(request.authorization, token):
            return _error_reply(BubbleError(401, "UNAUTHORIZED", "missing or invalid API token")), None

        with self._lock:
            wait = self._bucket.take(time.monotonic()) if self._bucket is not None else None
            fault = None if wait is not None else self._pick_fault(request.method, request.path)
        if wait is not None:
            retry_after = max(1, math.ceil(wait))
            error = BubbleError(429, "TOO_MANY_REQUESTS", f"rate limit exceeded; retry in {retry_after} s")
            return _error_reply(error, {"Retry-After": str(retry_after)}), None

        if fault is not None and fault.kind == "status":
            error = BubbleError(fault.status, _status_name(fault.status), f"injected fault: {fault.status}")
            return _error_reply(error), fault
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.hang_seconds)

        try:
            with self._lock:
                reply = self._operate(request, *route)
        except BubbleError as exc:
            reply = _error_reply(exc)
        if fault is not None and fault.kind == "close_after_store":
            reply.drop = True
        return reply, fault

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

    def _operate(self, request: _Request, env: str, type_: str, target: str | None) -> _Reply:
        method = request.method
        if target is None and method == "GET":
            params = {
                key: values[0] for key, values in parse_qs(request.query, keep_blank_values=True).items()
            }
            return _json_reply(200, {"response": self._store.search(env, type_, params)})
        if target is None and method == "POST":
            return _json_reply(
                201, {"status": "success", "id": self._store.create(env, type_, _json_body(request))}
            )
        if target == "bulk" and method == "POST":
            return self._bulk(request, env, type_)
        if target is not None and method == "GET":
            return _json_reply(200, {"response": copy.deepcopy(self._store.get(env, type_, target))})
        if target is not None and method in ("PATCH", "PUT"):
            self._store.update(env, type_, target, _json_body(request), replace=method == "PUT")
            return _Reply(204)
        if target is not None and method == "DELETE":
            self._store.delete(env, type_, target)
            return _Reply(204)
        raise BubbleError(405, "METHOD_NOT_ALLOWED", f"{method} is not supported on {request.path}")

    def _bulk(self, request: _Request, env: str, type_: str) -> _Reply:
        if not request.content_type.lower().startswith("text/plain"):
            raise _invalid("bulk requests need Content-Type: text/plain (one JSON object per line)")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _invalid(f"the body is not UTF-8: {exc}") from exc
        # A trailing newline ends the last line; it does not start an empty one.
        lines = text.rstrip("\r\n").splitlines()
        if not lines:
            raise _invalid("the bulk body has no lines")
        if len(lines) > MAX_BULK_LINES:
            raise _invalid(f"at most {MAX_BULK_LINES} lines per bulk call, got {len(lines)}")
        results = self._store.bulk(env, type_, lines)
        body = "\n".join(json.dumps(result) for result in results).encode()
        return _Reply(200, body, content_type="text/plain; charset=utf-8")

    def _record(
        self,
        request: _Request,
        route: tuple[str, str, str | None] | None,
        reply: _Reply,
        fault: FaultRule | None,
        started: float,
    ) -> None:
        entry = {
            "time": _now_iso(),
            "method": request.method,
            "path": request.path,
            "query": _redacted_query(request.query),
            "env": route[0] if route else None,
            "type": route[1] if route else None,
            "status": reply.status,
            "responded": not reply.drop,
            "fault": fault.kind if fault else None,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
            "body_bytes": len(request.body),
            "body": _body_summary(request.body),
            "connection": request.connection,
        }
        with self._lock:
            self._log.append(entry)
            self._logged += 1

    def _handle_admin(self, request: _Request) -> _Reply:
        name = request.path[len("/_double/") :].rstrip("/")
        params = {key: values[0] for key, values in parse_qs(request.query).items()}
        action = (request.method, name)
        try:
            if action == ("GET", "health"):
                return _json_reply(200, {"status": "ok"})
            if action == ("GET", "records"):
                env = params.get("env", "live")
                if env not in ENVS or not params.get("type"):
                    raise _invalid("records needs ?type=<type> and optionally env=live|test")
                return _json_reply(200, {"records": self.records(params["type"], env)})
            if action == ("GET", "requests"):
                with self._lock:
                    entries, dropped = copy.deepcopy(list(self._log)), self._logged - len(self._log)
                return _json_reply(200, {"requests": entries, "dropped": dropped})
            if action == ("GET", "config"):
                return _json_reply(200, {"config": self.config()})
            if action == ("POST", "config"):
                knobs = _json_body(request)
                if not isinstance(knobs, dict):
                    raise _invalid("config needs a JSON object of knobs")
                try:
                    self.configure(**knobs)
                except ValueError as exc:
                    raise _invalid(str(exc)) from exc
                return _json_reply(200, {"config": self.config()})
            if action == ("POST", "reset"):
                self.reset()
                return _json_reply(200, {"status": "ok"})
        except BubbleError as exc:
            return _error_reply(exc)
        return _error_reply(BubbleError(404, "NOT_FOUND", f"no admin route {request.method} {request.path}"))


def _json_body(request: _Request) -> Any:
    if not request.body.strip():
        return {}
    try:
        return json.loads(request.body)
    except ValueError as exc:
        raise _invalid(f"the body is not valid JSON: {exc}") from exc


# --- HTTP plumbing -----------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], double: BubbleDouble) -> None:
        self.double = double
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._connection_serial = 0
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, sock: socket.socket) -> int:
        with self._connections_lock:
            self._connections.add(sock)
            self._connection_serial += 1
            return self._connection_serial

    def untrack(self, sock: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(sock)

    def close_connections(self) -> None:
        # Keep-alive connections would otherwise go on being served after stop().
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or disconnect mid-request are expected here, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _BodyError(Exception):
    def __init__(self, error: BubbleError) -> None:
        super().__init__(error.message)
        self.error = error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    server_version = "BubbleDouble/1.0"
    timeout = 120  # idle keep-alive limit; longer than Deno's (hyper's) 90 s pool idle timeout
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm meets the
        # client's delayed ACK and every response stalls for ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_number = self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the double keeps its own request log

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BodyError as exc:
            # The rest of the stream cannot be trusted, so answer and close.
            self.close_connection = True
            self._send(_error_reply(exc.error, {"Connection": "close"}))
            return
        request = _Request(
            method=self.command,
            path=split.path,
            query=split.query,
            authorization=self.headers.get("Authorization"),
            content_type=self.headers.get("Content-Type", ""),
            body=body,
            connection=self.connection_number,
        )
        reply = self.server.double.handle(request)
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if not raw_length:
            return b""
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise _BodyError(_invalid(f"bad Content-Length {raw_length!r}")) from exc
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BodyError(BubbleError(413, "PAYLOAD_TOO_LARGE", f"body of {length} bytes refused"))
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BodyError(_invalid("malformed chunked body")) from exc
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers, unused
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(BubbleError(413, "PAYLOAD_TOO_LARGE", "chunked body too large"))
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            # A 204 has no body and, per RFC 9110, no Content-Length.
            if reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.status != 204 and reply.body:
                self.wfile.write(reply.body)
        except OSError:
            # The client gave up (e.g. timed out during a hang); nothing left to tell it.
            self.close_connection = True


# --- command line ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.bubble_double",
        description="Serve a TEST DOUBLE of the Bubble Data API until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", help="API token; prefer the BUBBLE_DOUBLE_TOKEN environment variable")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit-per-minute", type=float, default=0.0)
    parser.add_argument("--rate-limit-burst", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    token = args.token or os.environ.get("BUBBLE_DOUBLE_TOKEN")
    if not token:
        parser.error("no token: set BUBBLE_DOUBLE_TOKEN (preferred) or pass --token")
    try:
        double = BubbleDouble(
            token=token,
            host=args.host,
            port=args.port,
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            rate_limit_per_minute=args.rate_limit_per_minute,
            rate_limit_burst=args.rate_limit_burst,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    double.start()
    try:
        print(f"BUBBLE_URL={double.url}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.2):
            pass
    finally:
        double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

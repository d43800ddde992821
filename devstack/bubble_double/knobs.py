"""Knobs of the Bubble double: `FaultRule` (one injected fault), `validated_knobs` (checks every knob
passed to `BubbleDouble(...)`, `configure(...)` or `POST /_double/config` before any is applied) and
`TokenBucket`, the rate limiter. Bad values raise `ValueError`; nothing here knows about HTTP.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from devstack.bubble_double.app_rules import (
    NULL_MODIFIES,
    USED_EMAIL_ANSWERS,
    USER_EMAIL_PATCHES,
    USER_EMAIL_SEARCHES,
)
from devstack.bubble_double.schema import parse_schema

KNOB_NAMES = (
    "token",
    "latency_ms",
    "latency_jitter_ms",
    "rate_limit_per_minute",
    "rate_limit_burst",
    "faults",
    "outage_status",
    "seed",
    "schema",
    "used_email_answer",
    "user_email_search",
    "user_email_patch",
    "null_modify",
    "retry_after",
    "bulk_ms_per_line",
    "delete_status",
    "meta_exposed",
)
FAULT_KINDS = ("status", "hang", "close_after_store", "bulk_capacity")
# How a 429 may say when to come back: Bubble does not document a Retry-After (facts-confirmed-2026-11.md).
RETRY_AFTER_FORMS = ("seconds", "date", "absent")
# The status of a successful DELETE. The stored manual text lists the request without its answer; a
# third-party OpenAPI of the Data API (api-evangelist/bubble) says 204, so 204 is the default and 200 (with no
# body) the other plausible answer.
DELETE_STATUSES = (204, 200)


def _number(name: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return float(value)


@dataclass
class FaultRule:
    """One injected fault; see the package docstring for the meaning of each field."""

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


_CHOICES = {
    "used_email_answer": USED_EMAIL_ANSWERS,
    "user_email_search": USER_EMAIL_SEARCHES,
    "user_email_patch": USER_EMAIL_PATCHES,
    "null_modify": NULL_MODIFIES,
    "retry_after": RETRY_AFTER_FORMS,
    "delete_status": DELETE_STATUSES,
}


def validated_knobs(raw: dict[str, Any]) -> dict[str, Any]:
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
        elif name == "outage_status":
            # A server error only: an outage is Bubble failing, not Bubble refusing the request.
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599
            ):
                raise ValueError(f"outage_status must be an integer 500..599 or null, got {value!r}")
            out[name] = value
        elif name == "schema":
            out[name] = None if value is None else parse_schema(value)
        elif name in _CHOICES:
            # a bool is no choice: True == 1 would otherwise pass for a status
            if value not in _CHOICES[name] or isinstance(value, bool):
                raise ValueError(f"{name} must be one of {_CHOICES[name]}, got {value!r}")
            out[name] = value
        elif name == "meta_exposed":
            if not isinstance(value, bool):
                raise ValueError(f"meta_exposed must be true or false, got {value!r}")
            out[name] = value
        elif name == "bulk_ms_per_line":
            out[name] = _number(name, value)
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

"""What every profile's figures are made of: percentiles, a sustained rate, and what kind of Bubble request
a logged one was. Pure functions."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["percentile", "request_kind", "steady_throughput", "summary"]


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in 0..100."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if math.isinf(ordered[hi]):
        return math.inf
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, Any]:
    def finite(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else value

    return {
        "n": len(values),
        "p50": finite(percentile(values, 50)),
        "p95": finite(percentile(values, 95)),
        "p99": finite(percentile(values, 99)),
        "max": finite(max(values)) if values else None,
    }


def steady_throughput(times: list[float]) -> float | None:
    """Rows per second between the 10th and the 90th percentile of completion times (ramp-up and tail cut)."""
    if len(times) < 10:
        return None
    ordered = sorted(times)
    lo, hi = int(0.1 * len(ordered)), int(0.9 * len(ordered))
    span = ordered[hi] - ordered[lo]
    return (hi - lo) / span if span > 0 else None


def request_kind(request: dict[str, Any]) -> str:
    """A logged `/obj` request as the tables count it: create, bulk create, search, get, patch, delete..."""
    path: str = request["path"]
    method: str = request["method"]
    if path.endswith("/bulk"):
        return "bulk create"
    if method == "POST":
        return "create"
    if method == "GET":
        return "search" if request.get("query") else "get"
    return method.lower()

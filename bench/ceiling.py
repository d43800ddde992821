"""The machine's ceiling: what the Bubble double serves alone, without the function (plan profiles)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.profiles import Settings
from bench.stack import BUBBLE_PREFIX, REPO_ROOT
from devstack.bubble_double import BubbleDouble
from devstack.functions import deno_binary


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def double_ceiling(
    double: BubbleDouble, token: str, settings: Settings, thing: tuple[str, dict[str, object]] | None = None
) -> dict[str, Any]:
    """What the double serves alone on this machine: single creates from `ceiling_concurrency` loops for
    `ceiling_seconds` (bench/double_load.ts), its rate limit off meanwhile. `thing`: the data type and
    fields to create (default: users as the single-type profiles send them)."""
    _log(
        f"measuring the Bubble double alone: {settings.ceiling_concurrency} creates in flight for"
        f" {settings.ceiling_seconds:g} s"
    )
    double.configure(rate_limit_per_minute=0)
    try:
        done = subprocess.run(
            [
                deno_binary(),
                "run",
                "--allow-net",
                str(REPO_ROOT / "bench" / "double_load.ts"),
                double.url.rstrip("/") + BUBBLE_PREFIX,
                token,
                str(settings.ceiling_concurrency),
                str(settings.ceiling_seconds),
                *((thing[0], json.dumps(thing[1])) if thing else ()),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=settings.ceiling_seconds + 60,
        )
    finally:
        double.configure(
            rate_limit_per_minute=settings.rate_limit_per_minute, rate_limit_burst=settings.rate_limit_burst
        )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "concurrency": settings.ceiling_concurrency,
        "seconds": measured["seconds"],
        "requests": measured["requests"],
        "ok": measured["ok"],
        "requests_per_s": measured["ok"] / measured["seconds"],
    }

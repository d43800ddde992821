"""The function host's log read back: its invocation lines and each run's summary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_INVOCATION = re.compile(r"^invocation function=bubble_sync (?P<fields>.*)$")
_RUN_SUMMARY = '{"event":"bubble_sync.run"'


def read_host_log(logs: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The function host's invocation lines (status, cpu_ms, wall_ms, end) and the runs' summaries."""
    invocations: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    path = logs / "functions_host.log"
    if not path.exists():
        return invocations, summaries
    for line in path.read_text(errors="replace").splitlines():
        found = _INVOCATION.match(line.strip())
        if found:
            fields = dict(part.split("=", 1) for part in found["fields"].split() if "=" in part)
            invocations.append(
                {
                    "status": int(fields.get("status", 0)),
                    "cpu_ms": int(fields.get("cpu_ms", 0)),
                    "wall_ms": int(fields.get("wall_ms", 0)),
                    "end": fields.get("end", ""),
                }
            )
        at = line.find(_RUN_SUMMARY)
        if at >= 0:
            try:
                summaries.append(json.loads(line[at:]))
            except ValueError:
                pass
    return invocations, summaries

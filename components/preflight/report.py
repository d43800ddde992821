"""Preflight's output: one line per check (`render_text`), or one JSON document (`render_json`), and the
exit code the results make (`exit_code`). The results are already redacted (checks.run_groups)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from components.preflight.checks import CheckResult, Status

__all__ = ["EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "exit_code", "render_json", "render_text"]

#: every check passed (warnings and skips allowed)
EXIT_OK = 0
#: at least one check failed
EXIT_FAILED = 1
#: the stack config could not be read or is invalid; no check ran
EXIT_CONFIG = 2

_MARKS = {Status.OK: "✓", Status.FAILED: "✗", Status.WARNING: "!", Status.SKIPPED: "-"}


def exit_code(results: Sequence[CheckResult]) -> int:
    return EXIT_FAILED if any(r.status is Status.FAILED for r in results) else EXIT_OK


def line(result: CheckResult) -> str:
    """`✓ title[: detail]`, `✗ title: detail — fix: fix`, `! title: detail[ — fix: fix]`,
    `- title: skipped (why)`."""
    mark = _MARKS[result.status]
    if result.status is Status.SKIPPED:
        return f"{mark} {result.title}: skipped ({result.detail})"
    text = f"{mark} {result.title}" + (f": {result.detail}" if result.detail else "")
    if result.fix and result.status in (Status.FAILED, Status.WARNING):
        text += f" — fix: {result.fix}"
    return text


def render_text(results: Sequence[CheckResult], *, stack: str) -> str:
    counts = {status: sum(r.status is status for r in results) for status in Status}
    summary = (
        f"preflight of stack {stack}: {counts[Status.OK]} ok, {counts[Status.FAILED]} failed, "
        f"{counts[Status.WARNING]} warnings, {counts[Status.SKIPPED]} skipped (exit {exit_code(results)})"
    )
    return "\n".join([*(line(r) for r in results), summary]) + "\n"


def render_json(results: Sequence[CheckResult], *, stack: str) -> str:
    document = {
        "ok": exit_code(results) == EXIT_OK,
        "stack": stack,
        "exit_code": exit_code(results),
        "checks": [
            {
                "id": r.id,
                "group": r.group,
                "title": r.title,
                "status": r.status.value,
                "detail": r.detail,
                "fix": r.fix,
            }
            for r in results
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

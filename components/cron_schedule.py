"""pg_cron schedules: `validate_schedule(expr)` says why pg_cron would refuse one, before anything is
deployed."""

from __future__ import annotations

import re

__all__ = ["validate_schedule"]

_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    # 0 and 7 are both Sunday, as in Vixie cron (which pg_cron's parser comes from).
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_SECONDS = re.compile(r"^\s*(\d+)\s*seconds?\s*$")
_SPECIALS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def validate_schedule(expr: str) -> str | None:
    """Why `expr` is not a schedule pg_cron accepts, or None if it is.

    Follows pg_cron's parser (`src/entry.c`, from Vixie cron): five fields of numbers, `*`, ranges
    `a-b`, steps `*/n` and `a-b/n` (not `a/n`), lists `a,b`, month and weekday names; the `@daily`
    style shorthands; and the interval form `'[1-59] seconds'` (pg_cron 1.5+; Supabase runs 1.6).
    """
    if expr.strip() in _SPECIALS:
        return None
    if expr.strip().startswith("@"):
        return f"{expr.strip()!r} is not a recurring schedule; use one of {', '.join(_SPECIALS)}"
    seconds = _SECONDS.match(expr)
    if seconds:
        n = int(seconds.group(1))
        return None if 1 <= n <= 59 else f"interval schedules must be 1-59 seconds, got {n}"
    fields = expr.split()
    if len(fields) != 5:
        return (
            f"expected 5 fields (minute hour day-of-month month day-of-week) or '[1-59] seconds', "
            f"got {len(fields)} in {expr!r}"
        )
    for text, (label, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        reason = _check_cron_field(text, low, high, names)
        if reason:
            return f"{label} field {text!r}: {reason} (in {expr!r})"
    return None


def _check_cron_field(text: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    def value(token: str) -> int | str:
        if token.isdigit():
            n = int(token)
            return n if low <= n <= high else f"{n} is outside {low}-{high}"
        if token.lower() in names:
            return names.index(token.lower()) + low
        return f"{token!r} is not a number" + (" or a name" if names else "")

    for item in text.split(","):
        if not item:
            return "empty list item"
        base, slash, step = item.partition("/")
        if slash:
            if not step.isdigit() or not 1 <= int(step) <= high:
                return f"step {step!r} must be a number from 1 to {high}"
            if base != "*" and "-" not in base:
                return "a step needs '*' or a range before it (e.g. */5 or 0-30/5)"
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        first = value(start)
        if isinstance(first, str):
            return first
        if dash:
            last = value(end)
            if isinstance(last, str):
                return last
            if last < first:
                return f"range {base!r} runs backwards"
    return None

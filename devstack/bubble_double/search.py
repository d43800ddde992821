"""Search on the Bubble double: `parse_constraints` reads a search's `constraints` parameter into
`Constraint`s, each of which tells whether a stored thing matches, as Bubble's constraint types do; and
`int_param` reads `limit` and `cursor`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devstack.bubble_double.replies import invalid_data
from devstack.bubble_double.things import user_email

MAX_LIMIT = 100  # Bubble's documented maximum page size
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


def is_empty(value: Any) -> bool:
    """Empty as a search sees a field: null, "" or []."""
    return value is None or value == "" or value == []


def _same(a: Any, b: Any) -> bool:
    # Python says True == 1; JSON-typed data should not.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and bool(a == b)
    return bool(a == b)


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


@dataclass(frozen=True)
class Constraint:
    key: str
    kind: str
    value: Any

    def matches(self, record: dict[str, Any]) -> bool:
        kind = self.kind
        value: Any  # a field's value, whatever JSON holds; the built-in email a string or None
        if self.key == "email" and "authentication" in record:
            # a user's built-in email, compared as Bubble keeps emails: without regard to case
            present, value = True, user_email(record)
            if kind == "equals" and isinstance(value, str) and isinstance(self.value, str):
                return value.casefold() == self.value.casefold()
        else:
            present, value = self.key in record, record.get(self.key)
        if kind == "is_empty":
            return is_empty(value)
        if kind == "is_not_empty":
            return not is_empty(value)
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
        return bool(value > self.value if kind == "greater than" else value < self.value)


def parse_constraints(raw: str | None) -> list[Constraint]:
    if raw is None or raw == "":
        return []
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise invalid_data(f"constraints is not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise invalid_data("constraints must be a JSON array")
    parsed = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise invalid_data(f"each constraint needs a string key: {item!r}")
        kind = item.get("constraint_type")
        if kind not in CONSTRAINT_TYPES:
            raise invalid_data(f"unsupported constraint_type {kind!r}")
        if kind not in ("is_empty", "is_not_empty") and "value" not in item:
            raise invalid_data(f"constraint {kind!r} on {item['key']!r} needs a value")
        value = item.get("value")
        if kind in ("in", "not in") and not isinstance(value, list):
            raise invalid_data(f"constraint {kind!r} needs a list value")
        parsed.append(Constraint(item["key"], kind, value))
    return parsed


def int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid_data(f"{name} must be an integer, got {raw!r}") from exc
    if value < 0:
        raise invalid_data(f"{name} must not be negative, got {value}")
    return value

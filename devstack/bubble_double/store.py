"""The data store of the Bubble double: `_Store` keeps things per (environment, type) in creation order and
implements create, get, update, delete, search and bulk with Bubble's checks (built-in fields, user
emails); `_parse_constraints` and `_Constraint` read and apply search constraints. It raises
`BubbleError` for the double to answer and is not thread-safe: the caller holds the lock.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devstack.bubble_double.replies import BubbleError, _invalid

MAX_LIMIT = 100  # Bubble's documented maximum page size
BUILTIN_FIELDS = frozenset({"_id", "Created Date", "Modified Date"})
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

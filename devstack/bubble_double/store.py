"""The data store of the Bubble double: `Store` keeps things per (environment, type) in creation order and
implements create, get, update, delete, search and bulk with Bubble's checks (built-in fields, the app's
schema and its field types, relations, user emails); `AppRules` holds the app's schema and the answers
Bubble's manual leaves open; `_parse_constraints` and `_Constraint` read and apply search constraints. It
raises `BubbleError` for the double to answer and is not thread-safe: the caller holds the lock.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devstack.bubble_double.replies import BubbleError, invalid_data
from devstack.bubble_double.schema import FieldType, check_value, field_id, field_types

ENVS = ("live", "test")  # `/api/1.1` and `/version-test/api/1.1`, each with its own data, as on Bubble
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
# The built-in fields of type user that a create or modify body may carry (manual: "Creating users").
USER_CREDENTIALS = ("email", "password")

# How a Bubble app may answer a create whose email is taken. Bubble documents the code USED_EMAIL, not the
# HTTP status nor where the code sits (facts-confirmed-2026-11.md), so the double can answer each way.
USED_EMAIL_ANSWERS = ("code", "message", "worded", "conflict")
# How a search with the constraint key `email` on users may behave (undocumented): it matches the built-in
# email, finds nothing, or is refused as an incompatible constraint (404 NOT_FOUND, the manual's answer to
# those).
USER_EMAIL_SEARCHES = ("builtin", "empty", "refused")
# Whether PATCH /obj/user/<id> may change the built-in email and password (undocumented; one public client
# says it may not).
USER_EMAIL_PATCHES = ("refuse", "accept")
# What a modify (PATCH or PUT) with a field set to null does. The manual is silent; a public Bubble client's
# notes of a real app say a PATCH with null clears the field (204, and the field is gone when read back), so
# "clear" is the default and "refuse" (400) the other plausible answer.
NULL_MODIFIES = ("clear", "refuse")


@dataclass
class AppRules:
    """What the double's app knows and how it answers where the manual is silent (each a knob)."""

    #: data type -> {field display name: field type}; None: any type with any field (an app nobody described)
    schema: dict[str, dict[str, str]] | None = None
    used_email_answer: str = "code"
    user_email_search: str = "builtin"
    user_email_patch: str = "refuse"
    null_modify: str = "clear"
    #: per type, each field's type, from the schema
    types: dict[str, dict[str, FieldType]] = field(default_factory=dict)
    #: per type, the search keys that name a field: display names and Bubble's ids (`supabase_id_text`)
    search_keys: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.types = field_types(self.schema or {})
        self.search_keys = {
            type_: {
                **{name: name for name in fields},
                **{field_id(name, kind): name for name, kind in fields.items()},
            }
            for type_, fields in self.types.items()
        }

    def used_email(self, email: str) -> BubbleError:
        """The refusal of a create (or bulk line) whose email another user has."""
        if self.used_email_answer == "message":
            return BubbleError(400, "INVALID_DATA", f"USED_EMAIL: a user with email {email!r} already exists")
        if self.used_email_answer == "worded":
            return BubbleError(400, "INVALID_DATA", "This email is already taken by another account")
        if self.used_email_answer == "conflict":
            return BubbleError(409, "CONFLICT", f"email {email!r} is already in use")
        return BubbleError(400, "USED_EMAIL", f"a user with email {email!r} already exists")


def user_email(thing: dict[str, Any]) -> str | None:
    """A user's email where Bubble returns it: `authentication.email.email` (manual; captured responses)."""
    email = thing.get("authentication", {}).get("email", {}).get("email")
    return email if isinstance(email, str) else None


def missing_data(type_: str, thing_id: str) -> BubbleError:
    """The manual's answer to a GET by an id no thing of the type has (Data API requests, "Retrieve record by
    ID"): 404 `{"status": "MISSING_DATA", "message": "Missing object of type rentalunit: object with id …
    does not exist"}`. The double gives it to a modify and a delete of such an id too."""
    message = f"Missing object of type {type_}: object with id {thing_id} does not exist"
    return BubbleError(404, "MISSING_DATA", message)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id() -> str:
    return f"{int(time.time() * 1000):013d}x{10**17 + secrets.randbelow(9 * 10**17)}"


def _is_empty(value: Any) -> bool:
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
class _Constraint:
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
        return bool(value > self.value if kind == "greater than" else value < self.value)


def _parse_constraints(raw: str | None) -> list[_Constraint]:
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
        parsed.append(_Constraint(item["key"], kind, value))
    return parsed


def _int_param(params: dict[str, str], name: str, default: int) -> int:
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


class Store:
    """Things per (environment, type), in creation order. Not thread-safe: callers hold the lock.

    Lookups a real app answers from its database indexes are indexed here too, so the double's own speed does
    not fall as it fills (a 100,000-row backfill): users by email, and the fields searched with `equals` or
    `in` on text, indexed from their first search on and kept as things change."""

    def __init__(self) -> None:
        self._tables: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        # (env, type) -> casefolded email -> user id
        self._emails: dict[tuple[str, str], dict[str, str]] = {}
        # (env, type) -> field -> text value -> ids in creation order (a dict used as an ordered set)
        self._indexes: dict[tuple[str, str], dict[str, dict[str, dict[str, None]]]] = {}
        # (env, type) -> id -> creation serial (puts ids from an index back in creation order)
        self._serials: dict[tuple[str, str], dict[str, int]] = {}
        self._next_serial = 0
        self.rules = AppRules()

    def table(self, env: str, type_: str) -> dict[str, dict[str, Any]]:
        return self._tables.setdefault((env, type_), {})

    def _indexed(self, env: str, type_: str, thing_id: str, thing: dict[str, Any], add: bool) -> None:
        """Adds a thing to (or removes it from) the email index and every field index of its table."""
        email = user_email(thing) if type_ == "user" else None
        if email is not None:
            emails = self._emails.setdefault((env, type_), {})
            if add:
                emails[email.casefold()] = thing_id
            elif emails.get(email.casefold()) == thing_id:
                del emails[email.casefold()]
        for name, index in self._indexes.get((env, type_), {}).items():
            value = thing.get(name)
            if not isinstance(value, str):
                continue
            if add:
                index.setdefault(value, {})[thing_id] = None
            else:
                index.get(value, {}).pop(thing_id, None)

    def _field_index(self, env: str, type_: str, name: str) -> dict[str, dict[str, None]]:
        indexes = self._indexes.setdefault((env, type_), {})
        if name not in indexes:
            index: dict[str, dict[str, None]] = {}
            for thing_id, thing in self.table(env, type_).items():
                value = thing.get(name)
                if isinstance(value, str):
                    index.setdefault(value, {})[thing_id] = None
            indexes[name] = index
        return indexes[name]

    def _candidates(self, env: str, type_: str, constraints: list[_Constraint]) -> list[dict[str, Any]]:
        """The things that may match: from a field index when a constraint is `equals` or `in` on text (only
        a text value can equal a text), else all of them; in creation order either way."""
        table = self.table(env, type_)
        for c in constraints:
            if type_ == "user" and c.key == "email":
                continue  # a user's email lives under authentication
            values = [c.value] if c.kind == "equals" else c.value if c.kind == "in" else None
            if values is None or not all(isinstance(v, str) for v in values):
                continue
            index = self._field_index(env, type_, c.key)
            ids = {thing_id for value in values for thing_id in index.get(value, {})}
            serials = self._serials.get((env, type_), {})
            return [table[thing_id] for thing_id in sorted(ids, key=serials.__getitem__)]
        return list(table.values())

    def check_type(self, type_: str) -> None:
        """An app with a schema knows its types: any other is not found (the answer is UNCONFIRMED)."""
        schema = self.rules.schema
        if schema is not None and type_ not in schema:
            message = f"data type {type_!r} does not exist or is not exposed to the Data API"
            raise BubbleError(404, "NOT_FOUND", message)

    def clear(self) -> None:
        self._tables.clear()
        self._emails.clear()
        self._indexes.clear()
        self._serials.clear()

    def _check_fields(self, env: str, type_: str, fields: Any, own_id: str | None) -> dict[str, Any]:
        """The fields as stored: values checked against the schema's field types (dates in Bubble's form), a
        null kept as None for the caller to empty the field, a user's email moved under `authentication`
        and its password not kept."""
        if not isinstance(fields, dict):
            raise invalid_data("the body must be a JSON object of field: value")
        builtin = BUILTIN_FIELDS.intersection(fields)
        if builtin:
            raise invalid_data(f"built-in fields cannot be set: {sorted(builtin)}")
        known = None if self.rules.schema is None else self.rules.types.get(type_, {})
        credentials = USER_CREDENTIALS if type_ == "user" else ()
        checked: dict[str, Any] = {}
        for key, value in fields.items():
            if key in credentials:
                continue
            if known is not None and key not in known:
                # manual (CONFIRMED, facts-confirmed-2026-12.md): bodies take the names a GET returns; any
                # other key, a field id such as `x_text` included, is refused with this exact body
                raise BubbleError(400, "ERROR", f"Unrecognized field: {key}")
            if value is None:
                if own_id is not None and self.rules.null_modify == "refuse":
                    raise invalid_data(f"Invalid data for field {key}: null")  # UNCONFIRMED wording
                checked[key] = None
                continue
            checked[key] = value if known is None else check_value(key, known[key], value, self._exists(env))
        if type_ != "user":
            return checked
        if own_id is not None and any(key in fields for key in USER_CREDENTIALS):
            if self.rules.user_email_patch == "refuse":
                raise invalid_data("the email and password of a user cannot be changed through the Data API")
        email = fields.get("email")
        if email is None:
            if own_id is None:
                raise invalid_data("an email is required to create a user")  # manual: "Creating users"
            return checked
        if not isinstance(email, str) or not _EMAIL_RE.match(email):
            raise BubbleError(400, "NOT_VALID_EMAIL", f"{email!r} is not a valid email address")
        other_id = self._emails.get((env, type_), {}).get(email.casefold())
        if other_id is not None and other_id != own_id:
            raise self.rules.used_email(email)
        checked["authentication"] = {"email": {"email": email, "email_confirmed": False}}
        return checked

    def _exists(self, env: str) -> Callable[[str, str], bool]:
        """Whether a thing of a type has an id, in `env`: a relation names a thing of its own environment."""
        return lambda type_, thing_id: thing_id in self._tables.get((env, type_), {})

    def create(self, env: str, type_: str, fields: Any) -> str:
        # A null in a create leaves the field empty: Bubble omits empty fields from what it returns.
        fields = {k: v for k, v in self._check_fields(env, type_, fields, None).items() if v is not None}
        table = self.table(env, type_)
        thing_id = _new_id()
        while thing_id in table:
            thing_id = _new_id()
        stamp = now_iso()
        table[thing_id] = {**fields, "_id": thing_id, "Created Date": stamp, "Modified Date": stamp}
        self._next_serial += 1
        self._serials.setdefault((env, type_), {})[thing_id] = self._next_serial
        self._indexed(env, type_, thing_id, table[thing_id], add=True)
        return thing_id

    def get(self, env: str, type_: str, thing_id: str) -> dict[str, Any]:
        thing = self.table(env, type_).get(thing_id)
        if thing is None:
            raise missing_data(type_, thing_id)
        return thing

    def update(self, env: str, type_: str, thing_id: str, fields: Any, *, replace: bool) -> None:
        thing = self.get(env, type_, thing_id)
        fields = self._check_fields(env, type_, fields, thing_id)
        kept = {key: thing[key] for key in ("_id", "Created Date", "authentication") if key in thing}
        if "authentication" in fields:
            kept["authentication"] = fields["authentication"]
        base = {} if replace else thing
        self._indexed(env, type_, thing_id, thing, add=False)
        merged = {**base, **fields, **kept, "Modified Date": now_iso()}
        # A null empties the field, and an empty field is left out of what Bubble returns.
        self.table(env, type_)[thing_id] = {k: v for k, v in merged.items() if v is not None}
        self._indexed(env, type_, thing_id, self.table(env, type_)[thing_id], add=True)

    def delete(self, env: str, type_: str, thing_id: str) -> None:
        thing = self.get(env, type_, thing_id)
        self._indexed(env, type_, thing_id, thing, add=False)
        del self.table(env, type_)[thing_id]
        self._serials.get((env, type_), {}).pop(thing_id, None)

    def search(self, env: str, type_: str, params: dict[str, str]) -> dict[str, Any]:
        constraints = [self._resolved(type_, c) for c in _parse_constraints(params.get("constraints"))]
        if type_ == "user" and any(c.key == "email" for c in constraints):
            if self.rules.user_email_search == "refused":
                raise BubbleError(404, "NOT_FOUND", "incompatible constraint on field email")
            if self.rules.user_email_search == "empty":
                return {"cursor": 0, "results": [], "count": 0, "remaining": 0}
        limit = min(_int_param(params, "limit", MAX_LIMIT), MAX_LIMIT)
        cursor = _int_param(params, "cursor", 0)
        matches = [
            t for t in self._candidates(env, type_, constraints) if all(c.matches(t) for c in constraints)
        ]
        sort_field = params.get("sort_field")
        if sort_field:
            descending = params.get("descending", "false").lower() == "true"
            present = [t for t in matches if not _is_empty(t.get(sort_field))]
            missing = [t for t in matches if _is_empty(t.get(sort_field))]
            try:
                present.sort(key=lambda t: t[sort_field], reverse=descending)
            except TypeError as exc:
                raise invalid_data(f"cannot sort on {sort_field!r}: mixed value types") from exc
            matches = present + missing
        page = matches[cursor : cursor + limit]
        return {
            "cursor": cursor,
            "results": copy.deepcopy(page),
            "count": len(page),
            "remaining": max(0, len(matches) - cursor - len(page)),
        }

    def _resolved(self, type_: str, constraint: _Constraint) -> _Constraint:
        """Search constraints take display names and ids alike (manual); with a schema, others are refused."""
        if self.rules.schema is None or constraint.key in BUILTIN_FIELDS:
            return constraint
        if type_ == "user" and constraint.key == "email":
            return constraint
        name = self.rules.search_keys.get(type_, {}).get(constraint.key)
        if name is None:
            raise invalid_data(f"Unrecognized field: {constraint.key}")
        return _Constraint(name, constraint.kind, constraint.value)

    def bulk(self, env: str, type_: str, lines: list[str]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            try:
                if not line.strip():
                    raise invalid_data(f"line {number} is empty")
                try:
                    fields = json.loads(line)
                except ValueError as exc:
                    raise invalid_data(f"line {number} is not valid JSON: {exc}") from exc
                results.append({"status": "success", "id": self.create(env, type_, fields)})
            except BubbleError as exc:
                results.append({"status": "error", "message": exc.message})
        return results

"""The data store of the Bubble double: `Store` keeps things per (environment, type) in creation order and
implements create, get, update, delete, search and bulk with Bubble's checks (built-in fields, the app's
schema and its field types, relations, user emails), following the app's `AppRules` (`app_rules.py`);
search constraints are read and matched in `search.py`. It raises `BubbleError` for the double to answer
and is not thread-safe: the caller holds the lock.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from devstack.bubble_double.app_rules import AppRules
from devstack.bubble_double.replies import BubbleError, invalid_data
from devstack.bubble_double.schema import check_value
from devstack.bubble_double.search import MAX_LIMIT, Constraint, int_param, is_empty, parse_constraints
from devstack.bubble_double.things import BUILTIN_FIELDS, missing_data, new_id, now_iso, user_email

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The built-in fields of type user that a create or modify body may carry (manual: "Creating users").
USER_CREDENTIALS = ("email", "password")


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

    def _candidates(self, env: str, type_: str, constraints: list[Constraint]) -> list[dict[str, Any]]:
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
        thing_id = new_id()
        while thing_id in table:
            thing_id = new_id()
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
        constraints = [self._resolved(type_, c) for c in parse_constraints(params.get("constraints"))]
        if type_ == "user" and any(c.key == "email" for c in constraints):
            if self.rules.user_email_search == "refused":
                raise BubbleError(404, "NOT_FOUND", "incompatible constraint on field email")
            if self.rules.user_email_search == "empty":
                return {"cursor": 0, "results": [], "count": 0, "remaining": 0}
        limit = min(int_param(params, "limit", MAX_LIMIT), MAX_LIMIT)
        cursor = int_param(params, "cursor", 0)
        matches = [
            t for t in self._candidates(env, type_, constraints) if all(c.matches(t) for c in constraints)
        ]
        sort_field = params.get("sort_field")
        if sort_field:
            descending = params.get("descending", "false").lower() == "true"
            present = [t for t in matches if not is_empty(t.get(sort_field))]
            missing = [t for t in matches if is_empty(t.get(sort_field))]
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

    def _resolved(self, type_: str, constraint: Constraint) -> Constraint:
        """Search constraints take display names and ids alike (manual); with a schema, others are refused."""
        if self.rules.schema is None or constraint.key in BUILTIN_FIELDS:
            return constraint
        if type_ == "user" and constraint.key == "email":
            return constraint
        name = self.rules.search_keys.get(type_, {}).get(constraint.key)
        if name is None:
            raise invalid_data(f"Unrecognized field: {constraint.key}")
        return Constraint(name, constraint.kind, constraint.value)

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

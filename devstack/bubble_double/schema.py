"""The app's data types, as the double's `schema` knob describes them: `parse_schema` checks the knob,
`FieldType` is one field's type (plain, a relation to another data type, or a list of either), `field_id`
is the id Bubble gives a field next to its display name, and `check_value` refuses a value of the wrong type
the way the double's Bubble does. Nothing here knows about HTTP or the store.

Sources: Bubble's manual, Data API requests ("The field to change and new value. Must match field type";
"The keys should match the names of the keys returned via a GET request"); the shared reference's notes
(facts-confirmed-2026-12.md: a relation field takes the thing's `_id`, a list field a JSON array, dates as
ISO 8601 strings); and `/api/1.1/meta` as public Bubble clients read it (`meta.py`), which spells a field's
type `text`, `number`, `boolean`, `date`, `image`, `file`, `geographic_address`, `user`,
`custom.<type>` and `list.<any of those>`. Where Bubble's wording of a refusal is not documented, the
message is this double's own (marked UNCONFIRMED below).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devstack.bubble_double.replies import BubbleError, invalid_data

# Field types that hold a value of their own rather than another thing's id.
PLAIN_KINDS = ("text", "number", "boolean", "date", "image", "file", "geographic_address")
_LIST = "list."
_CUSTOM = "custom."


@dataclass(frozen=True)
class FieldType:
    """One field's type: `base` is a plain kind or, for a relation, the data type whose ids it holds."""

    base: str
    relation: bool = False
    is_list: bool = False

    @property
    def bubble_type(self) -> str:
        """The type as `/meta` spells it: `text`, `list.text`, `user`, `custom.listing`, `list.user`."""
        base = f"{_CUSTOM}{self.base}" if self.relation and self.base != "user" else self.base
        return f"{_LIST}{base}" if self.is_list else base

    def describe(self) -> str:
        """What a value of this type is, for a refusal: `a number`, `a list of text`, `the unique id of a
        user`."""
        if self.relation:
            return (
                f"a list of unique ids of {self.base}" if self.is_list else f"the unique id of a {self.base}"
            )
        if self.is_list:
            return f"a list of {self.base}"
        return f"{'an' if self.base[0] in 'aeiou' else 'a'} {self.base}"


def field_id(name: str, field_type: FieldType) -> str:
    """Bubble's id of a field (`first_name_text`, `host_user`, `photos_list_image`): the display name in
    lower case with `_` for spaces, then the type with `_` for dots. Searches accept it; bodies do not."""
    return f"{name.lower().replace(' ', '_')}_{field_type.bubble_type.replace('.', '_')}"


def parse_kind(kind: Any, types: set[str]) -> FieldType:
    """A kind of the schema knob: a plain kind, a data type of the schema (`user`, `listing`, or Bubble's
    `custom.listing`), or `list.` and one of those. Raises ValueError otherwise."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"a field kind must be a non-empty string, got {kind!r}")
    is_list = kind.startswith(_LIST)
    base = kind[len(_LIST) :] if is_list else kind
    if base in PLAIN_KINDS:
        return FieldType(base, is_list=is_list)
    target = base[len(_CUSTOM) :] if base.startswith(_CUSTOM) else base
    if target in types:
        return FieldType(target, relation=True, is_list=is_list)
    raise ValueError(
        f"unknown field kind {kind!r}: not one of {PLAIN_KINDS}, a data type of the schema "
        f"({sorted(types)}), nor list.<one of those>"
    )


def parse_schema(value: Any) -> dict[str, dict[str, str]]:
    """The `schema` knob, `{type: [display names]}` (text fields) or `{type: {display name: kind}}`, checked
    (every kind known, every relation naming a type of the schema) and returned with lists made objects."""
    if not isinstance(value, dict) or not all(isinstance(t, str) and t for t in value):
        raise ValueError(f"schema must map data type names to their fields, got {value!r}")
    schema: dict[str, dict[str, str]] = {}
    for type_, fields in value.items():
        if isinstance(fields, list | tuple):
            fields = {name: "text" for name in fields}
        if not isinstance(fields, dict) or not all(isinstance(n, str) and n for n in fields):
            raise ValueError(f"schema[{type_!r}] must be a list of field names or a name: kind object")
        for name, kind in fields.items():
            try:
                parse_kind(kind, set(value))
            except ValueError as exc:
                raise ValueError(f"schema[{type_!r}][{name!r}]: {exc}") from exc
        schema[type_] = dict(fields)
    return schema


def field_types(schema: dict[str, dict[str, str]]) -> dict[str, dict[str, FieldType]]:
    """Per data type, each field's `FieldType` (the knob already checked by `parse_schema`)."""
    types = set(schema)
    return {
        t: {name: parse_kind(kind, types) for name, kind in fields.items()} for t, fields in schema.items()
    }


def _wrong(name: str, field_type: FieldType, value: Any) -> BubbleError:
    # UNCONFIRMED wording: the manual says a value "must match field type" and shows no refusal. The status
    # INVALID_DATA is what a real app answered to an option-set value it did not know (a public Bubble
    # client's notes of a real branch); the message is this double's, naming the field as Bubble's do.
    return invalid_data(f"Invalid data for field {name}: {_shown(value)} is not {field_type.describe()}")


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 80 else text[:80] + "…"


_REFUSED = object()  # what `_plain` answers for a value that does not fit


def _date(value: Any) -> str | None:
    """A date as Bubble returns its own (`2026-12-05T09:13:51.123Z`, UTC, milliseconds), or None if the
    value is not a date. Taken: an ISO 8601 string (facts-confirmed-2026-12.md) or a number of milliseconds
    since 1970 (manual, "Sending data": dates go as a string or a timestamp)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        try:
            moment = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # like PostgreSQL's timestamp: read as UTC
    else:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(kind: str, value: Any) -> Any:
    """The value as stored, or `_REFUSED` when it does not fit the kind."""
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return value if ok else _REFUSED
    if kind == "boolean":
        return value if isinstance(value, bool) else _REFUSED
    if kind == "date":
        stamp = _date(value)
        return _REFUSED if stamp is None else stamp
    if kind == "geographic_address":
        # manual, "Sending data": an address as a string (Bubble geocodes it) or {address, lat, lng}
        if isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("address"), str)):
            return value
        return _REFUSED
    return value if isinstance(value, str) else _REFUSED  # text, image, file (a URL)


def check_value(name: str, field_type: FieldType, value: Any, exists: Callable[[str, str], bool]) -> Any:
    """The value as the field stores it (dates in Bubble's form), or a 400 naming the field. A relation
    takes the unique id (`_id`) of an existing thing of its type, which `exists(type, id)` tells."""
    items = value if field_type.is_list else [value]
    if field_type.is_list and not isinstance(value, list):
        raise _wrong(name, field_type, value)
    stored = []
    for item in items:
        if field_type.relation:
            if not isinstance(item, str):
                raise _wrong(name, field_type, item)
            if not exists(field_type.base, item):
                # UNCONFIRMED: the manual does not say how Bubble refuses an id that names no thing of the
                # field's type. The double answers 400 INVALID_DATA, worded after the manual's MISSING_DATA
                # example ("object with id … does not exist"), and stores nothing.
                raise invalid_data(
                    f"Invalid data for field {name}: object with id {item} of type {field_type.base} "
                    "does not exist"
                )
            stored.append(item)
            continue
        checked = _plain(field_type.base, item)
        if checked is _REFUSED:
            raise _wrong(name, FieldType(field_type.base), item)
        stored.append(checked)
    return stored if field_type.is_list else stored[0]

"""What preflight knows of a Bubble app's data types, and whether a mapped column fits the field it fills.
Pure: no I/O (components/preflight/mappings.py asks the app and the database).

Where the types come from, best first:

* `GET <bubbleBaseUrl>/meta`, which a Bubble app answers with its Data API's description (not in Bubble's
  manual; the shape is taken from what public clients of it read, and from the project's Bubble double):

      {"get": ["user", "listing"], "post": [...], "app_data": {...},
       "types": {"listing": {"display": "Listing",
                             "fields": [{"id" | "key": "title_text", "display": "Title", "type": "text"},
                                        {"id": "host_user", "display": "Host", "type": "user"},
                                        {"id": "photos_list_image", "display": "Photos",
                                         "type": "list.image"},
                                        {"id": "venue_custom_venue", "display": "Venue",
                                         "type": "custom.venue"},
                                        ...]}}}

  `types` is keyed by the type's Data API name (`listing`, `user`, `tbl.order`); field `type`s are `text`,
  `number`, `date`, `boolean` (`yes_no` accepted too), `geographic_address`, `file`, `image`, `user`,
  `custom.<type>`, `option.<set>`, `api.<call>` and `list.<any of those>`. `get`, when present, lists the
  types the Data API exposes. `parse_meta` takes it tolerantly (a field's id under `id` or `key`, its name
  under `display` or `name`; fields as a list or keyed by id) and answers None for anything else.
* Otherwise a probe per type: a search with `limit=1`. A 404 says the Data API does not expose the type; a
  thing returned shows the fields it carries and, by its values, their JSON kinds; a field missing there may
  just be empty on that thing (Bubble leaves empty fields out), so that is a warning, not a failure.

A column's kind is what bubble_sync.mapped_payload sends for its type (docs/mappings.md, "What is queued"):
text, number, boolean, date, a list of one of those, or a reference (a `ref` field: a Bubble id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BubbleField",
    "BubbleType",
    "Fit",
    "column_kind",
    "fit",
    "fit_value",
    "parse_meta",
]

#: PostgreSQL types (format_type of the base type, without modifiers) by the kind Bubble gets
_KINDS = {
    "text": "text", "character varying": "text", "character": "text", "citext": "text", "uuid": "text",
    "smallint": "number", "integer": "number", "bigint": "number", "numeric": "number", "real": "number",
    "double precision": "number",
    "boolean": "boolean",
    "timestamp with time zone": "date", "timestamp without time zone": "date", "date": "date",
}  # fmt: skip
#: Bubble field types, by the column kinds that fill them as they are
_FITS = {"text": {"text"}, "number": {"number"}, "boolean": {"boolean", "yes_no"}, "date": {"date"}}
#: Bubble field types a text value fills only in a form of its own: a warning, naming the form
_TEXT_IN_A_FORM = {
    "file": "a file field takes a URL",
    "image": "an image field takes a URL",
    "geographic_address": "an address field takes an address Bubble can geocode",
}


@dataclass(frozen=True)
class BubbleField:
    display: str
    type: str
    key: str = ""


@dataclass(frozen=True)
class BubbleType:
    name: str
    display: str
    #: by display name (what a mapping names and a GET returns)
    fields: Mapping[str, BubbleField]
    #: False when /meta's `get` leaves the type out: the Data API does not expose it
    exposed: bool = True


@dataclass(frozen=True)
class Fit:
    """`ok`, `warning` or `failed`, and why (empty when ok)."""

    status: str
    why: str = ""


def parse_meta(body: Any) -> dict[str, BubbleType] | None:
    """The app's types from a /meta answer (already JSON-decoded), or None when it is not that shape."""
    if isinstance(body, Mapping) and isinstance(body.get("response"), Mapping) and "types" not in body:
        body = body["response"]  # Bubble wraps other answers in {"response": ...}: accepted here too
    if not isinstance(body, Mapping) or not isinstance(body.get("types"), Mapping):
        return None
    exposed = body.get("get")
    listed = {str(t) for t in exposed} if isinstance(exposed, list) else None
    types: dict[str, BubbleType] = {}
    for name, spec in body["types"].items():
        if not isinstance(spec, Mapping):
            return None
        raw = spec.get("fields", [])
        items = list(raw.items()) if isinstance(raw, Mapping) else [(None, f) for f in raw or []]
        fields: dict[str, BubbleField] = {}
        for key, item in items:
            if not isinstance(item, Mapping):
                return None
            display = item.get("display", item.get("name"))
            if not isinstance(display, str):
                return None
            field_key = item.get("key", item.get("id", key))
            fields[display] = BubbleField(display, str(item.get("type", "")), str(field_key or ""))
        display = spec.get("display")
        types[str(name)] = BubbleType(
            str(name),
            display if isinstance(display, str) else str(name),
            fields,
            exposed=listed is None or str(name) in listed,
        )
    return types


def column_kind(
    base_type: str, element_type: str | None, *, is_enum: bool, element_is_enum: bool
) -> str | None:
    """`text`, `number`, `boolean`, `date`, `list.<one of those>`, or None (Bubble takes no such value).
    `base_type`: format_type of the column's type, a domain resolved to its base, without modifiers;
    `element_type`: an array's element type (then `base_type` is the array's)."""
    if element_type is not None:
        inner = "text" if element_is_enum else _KINDS.get(element_type)
        return None if inner is None else f"list.{inner}"
    return "text" if is_enum else _KINDS.get(base_type)


def fit(kind: str, bubble_type: str, *, ref_type: str | None = None) -> Fit:
    """Whether a column of `kind` fills a field of `bubble_type`. `ref_type`: for a reference column, the
    Bubble type of the mapping it refers to (None: a plain column)."""
    if ref_type is not None:
        target = bubble_type.removeprefix("custom.")
        if bubble_type.startswith("list."):
            return Fit("failed", f"a list of {bubble_type[5:]}, the column holds one reference")
        if target == ref_type:
            return Fit("ok")
        return Fit("failed", f"the column refers to a {ref_type} thing, the field holds {bubble_type}")
    if kind.startswith("list."):
        if not bubble_type.startswith("list."):
            return Fit("failed", "the column holds a list, the field one value")
        return fit(kind[5:], bubble_type[5:])
    if bubble_type.startswith("list."):
        return Fit("failed", "the field holds a list, the column one value")
    if bubble_type in _FITS.get(kind, set()):
        return Fit("ok")
    if kind == "text" and bubble_type.startswith("option."):
        return Fit("warning", "an option set field takes the display text of one of its options")
    if kind == "text" and bubble_type in _TEXT_IN_A_FORM:
        return Fit("warning", _TEXT_IN_A_FORM[bubble_type])
    if bubble_type == "user" or bubble_type.startswith("custom."):
        return Fit("failed", "a reference field takes a Bubble id: map the column with `ref: <mapping>`")
    return Fit("failed", "Bubble refuses such a value (400) and the row fails for good")


def fit_value(kind: str, value: Any, *, is_ref: bool = False) -> Fit:
    """Whether a value a thing carries (a probe's sample) has the JSON kind a column of `kind` sends."""
    if value is None:
        return Fit("ok")
    if kind.startswith("list."):
        if not isinstance(value, list):
            return Fit("failed", f"the thing holds {_json_kind(value)} there, the column a list")
        return next((f for f in (fit_value(kind[5:], v) for v in value) if f.status != "ok"), Fit("ok"))
    wanted = "text" if is_ref or kind in ("text", "date") else kind
    found = _json_kind(value)
    return (
        Fit("ok") if found == wanted else Fit("failed", f"the thing holds {found} there, the column {kind}")
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"

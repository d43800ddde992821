"""The body of `GET /api/1.1/meta` (and `/version-test/api/1.1/meta`): the data types the double's app exposes
and their fields, in the shape Bubble's own `/meta` has.

Sources. Bubble's manual mentions the API's Swagger/meta description but does not document its body; a
third-party OpenAPI of the Data API (api-evangelist/bubble, `openapi/bubble-data-api-openapi.yml`) lists
`GET /meta` with an untyped object. The shape below follows what public Bubble clients read from real apps,
which agree with each other:

* a public Bubble client's notes of a real app (observed on a branch): "`get` lists the exposed types by
  Data API path, `post` lists workflow objects named by `endpoint`, `types` gives each exposed or referenced
  type's fields as `{id, display, type}` objects (built-in fields included, `_id` as `unique ID`, deleted
  fields left out) and `app_data.use_captions_for_get` says whether the Data API keys fields by display name";
* a Bubble piece written for Activepieces' framework, and other clients, type the answer as `{get: string[],
  post, types: {<type>: {display, fields: {id, display, type}[]}}, app_data: {appname, favicon, app_version,
  use_captions_for_get}}`;
* a Bubble plugin drawing a diagram from a real app's `/meta` shows the built-in fields a type lists:
  `Created Date : date; Modified Date : date; Created By : user; unique ID : text` on a custom type and no
  `Created By` on User; it shows neither `Slug` nor a user's email, so the double lists neither.

A third-party description this work was briefed with names a field's id `key`; every client above reads
`id`, so the double follows them. Field ids are Bubble's (`first_name_text`, `host_user`,
`photos_list_image`), and `use_captions_for_get` is true because the double keys fields by display name, as
the mappings require.
"""

from __future__ import annotations

from typing import Any

from devstack.bubble_double.schema import FieldType, field_id

APP_NAME = "bubble-double"
# Bubble's built-in fields as /meta lists them (id, display, type), after the type's own fields.
_BUILTINS = (("Created Date", "Created Date", "date"), ("Modified Date", "Modified Date", "date"))
_CREATED_BY = ("Created By", "Created By", "user")
_UNIQUE_ID = ("_id", "unique ID", "text")


def _display(type_: str) -> str:
    # The schema knob names types by their Data API path; Bubble's display name is the caption the path was
    # made from (lower case, spaces removed), so the double capitalises the path: user -> User.
    return type_[:1].upper() + type_[1:]


def _field(field_id_: str, display: str, bubble_type: str) -> dict[str, str]:
    return {"id": field_id_, "display": display, "type": bubble_type}


def meta_document(types: dict[str, dict[str, FieldType]], env: str) -> dict[str, Any]:
    """The `/meta` answer for an app whose data types (all exposed to the Data API) are `types`."""
    described: dict[str, Any] = {}
    for type_, fields in types.items():
        own = [_field(field_id(name, kind), name, kind.bubble_type) for name, kind in fields.items()]
        builtins = [*_BUILTINS, *(() if type_ == "user" else (_CREATED_BY,)), _UNIQUE_ID]
        described[type_] = {"display": _display(type_), "fields": own + [_field(*b) for b in builtins]}
    return {
        "get": list(types),
        "post": [],  # the double serves no Workflow API
        "types": described,
        "app_data": {
            "appname": APP_NAME,
            "favicon": "",
            "app_version": env,
            "use_captions_for_get": True,
        },
    }

"""What Bubble's Data API takes as a data type's name and as a field's name, for every config value that names
one (`bubbleDataType`, `bubbleExternalKeyField`, and each mapping's `dataType`, `keyField`, fields and
`onDelete.set`). Pure Python: nothing happens at import.
"""

from __future__ import annotations

import re

__all__ = ["DATA_TYPE", "FIELD_NAME", "field_id_problem"]

#: a data type's API name (`user`, `signup_log`)
DATA_TYPE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
#: a Bubble field key as the Data API spells it (`supabase_id`, `Supabase ID`)
FIELD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,99}$")
# A Bubble field's id rather than its name: the name, spaces as _, then the field's type (`supabase_id_text`).
# Create and modify bodies refuse ids (400 "Unrecognized field"), though searches accept them.
_FIELD_ID = re.compile(
    r"^[a-z0-9_]+_(text|number|boolean|date|date_range|image|file|geographic_address|user|"
    r"list_[a-z0-9_]+|option_[a-z0-9_]+|custom_[a-z0-9_]+)$"
)


def field_id_problem(field: str) -> str | None:
    """Why `field` cannot be used, when it looks like a field's id rather than its display name; else None."""
    match = _FIELD_ID.match(field)
    if match is None:
        return None
    name = field[: match.start(1) - 1]
    return (
        f"{field!r} looks like the field's id (its name plus the type suffix _{match[1]}): Bubble's Data "
        f"API takes a field's display name, as a GET of the thing returns it, in create and modify "
        f"bodies and refuses the id with 400 'Unrecognized field'. Set the display name, e.g. {name!r}"
    )

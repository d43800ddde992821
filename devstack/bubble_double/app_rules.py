"""The Bubble double's app: `AppRules` holds its schema and the answers Bubble's manual leaves open (each a
knob, with its allowed values here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.bubble_double.replies import BubbleError
from devstack.bubble_double.schema import FieldType, field_id, field_types

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

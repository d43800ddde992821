"""What a stored thing of the Bubble double looks like: its environments, its id and built-in fields, its
dates, where a user's email sits, and the answer to an id no thing has."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from devstack.bubble_double.replies import BubbleError

ENVS = ("live", "test")  # `/api/1.1` and `/version-test/api/1.1`, each with its own data, as on Bubble
BUILTIN_FIELDS = frozenset({"_id", "Created Date", "Modified Date"})


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


def new_id() -> str:
    """An id like Bubble's: `<13-digit ms timestamp>x<18 digits>`."""
    return f"{int(time.time() * 1000):013d}x{10**17 + secrets.randbelow(9 * 10**17)}"

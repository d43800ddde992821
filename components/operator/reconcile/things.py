"""Where Bubble's things wait while reconcile compares: a temporary table of the session (reconcile_things,
sql/operator_reconcile.sql), so 100,000 things cost the client no memory, the database hands a chunk's things
to bubble_sync.compare_with_bubble itself, and whatever ends the run (Ctrl-C included) leaves nothing behind.

A thing is kept with the fields a comparison reads (`_id`, the key field, `Created Date`, the mappings'
fields, a user's built-in email), not the rest Bubble returns with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from components.operator.reconcile.queries import reconcile_query

__all__ = ["CREATED_DATE", "ThingStore", "kept_fields"]

#: Bubble's creation time of a thing (a built-in field): the order scans read things in
CREATED_DATE = "Created Date"


def kept_fields(key_field: str, fields: Iterable[str]) -> frozenset[str]:
    """The fields of a thing a comparison reads: `fields` (the mappings' Bubble fields) and the built-ins."""
    return frozenset({"_id", key_field, CREATED_DATE, "authentication", "email", *fields})


def _slim(thing: dict[str, Any], keep: frozenset[str]) -> dict[str, Any]:
    slim = {k: v for k, v in thing.items() if k in keep}
    authentication = slim.get("authentication")
    if isinstance(authentication, dict):  # a user's email, not the rest of how it signs in
        email = (
            (authentication.get("email") or {}).get("email")
            if isinstance(authentication.get("email"), dict)
            else None
        )
        slim["authentication"] = {"email": {"email": email}}
    return slim


class ThingStore:
    """The session's things, by data type and key field."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        conn.execute(reconcile_query("things_table"))
        conn.execute(reconcile_query("things_index"))

    def add(
        self, data_type: str, key_field: str, things: Sequence[dict[str, Any]], keep: frozenset[str]
    ) -> None:
        """Keeps `things` (a search's results); a thing read before is replaced."""
        if not things:
            return
        self.conn.execute(
            reconcile_query("add_things"),
            {
                "data_type": data_type,
                "key_field": key_field,
                "things": Jsonb([_slim(t, keep) for t in things]),
            },
        )

    def analyze(self) -> None:
        """Statistics for the planner, once a scan has filled the table."""
        self.conn.execute(reconcile_query("analyze_things"))

    def forget(self, data_type: str, key_field: str, keys: Sequence[str]) -> None:
        """Drops the things read for these keys (before they are read again)."""
        self.conn.execute(
            reconcile_query("forget_things"),
            {"data_type": data_type, "key_field": key_field, "keys": list(keys)},
        )

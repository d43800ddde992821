"""What every part of the backfill shares: `BackfillError`, a table's name as SQL reads it, and running one
query with its rows as dicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from components.errors import BubbleSyncError

__all__ = ["BackfillError", "qualified_name", "run_query"]


class BackfillError(BubbleSyncError):
    """A flag does not fit the database, or the database is not ready for a backfill. The message names the
    flag (or the step to take) and holds no secret; nothing was queued."""


def qualified_name(schema: str, table: str) -> str:
    """schema.table as SQL reads it, quoting only the parts that need quotes."""
    return ".".join(
        part if re.fullmatch(r"[a-z_][a-z0-9_$]*", part) else sql.Identifier(part).as_string(None)
        for part in (schema, table)
    )


def run_query(
    conn: psycopg.Connection[Any], query: str | sql.Composed, params: Mapping[str, Any] | None = None
) -> psycopg.Cursor[dict[str, Any]]:
    """Runs one query, its rows as dicts whatever the connection's row factory."""
    return conn.cursor(row_factory=dict_row).execute(query, params)

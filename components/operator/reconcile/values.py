"""--show-values: for the stale records shown as examples, each differing field's value in Supabase (as the
trigger converts it for Bubble; a reference: the Bubble id its record is linked to) and in Bubble, read by
the database (sql/operator_reconcile.sql, stale_values). Shown only: whether they differ is
bubble_sync.compare_with_bubble's to say, and it said so.

Never a secret: a field or column whose name looks like a credential (password, token, secret, hash, salt,
otp, api key, private key: the names bubble_sync.change_payload keeps out of a payload by default) is shown as
hidden, and a long value is cut.
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
from psycopg.rows import dict_row

from components.operator.reconcile.findings import FieldValues, MappingFindings
from components.operator.reconcile.source import Target

__all__ = ["HIDDEN", "MAX_VALUE_CHARS", "add_values", "shown"]

HIDDEN = "(hidden)"
MAX_VALUE_CHARS = 80
_CREDENTIAL = re.compile(r"passw|token|secret|hash|salt|otp|api_?key|private_?key", re.IGNORECASE)


def add_values(conn: psycopg.Connection[Any], target: Target, findings: MappingFindings) -> None:
    """Fills findings.values for the stale examples."""
    query = target.compose("stale_values")
    for d in findings.examples("stale"):
        rows = (
            conn.cursor(row_factory=dict_row)
            .execute(
                query,
                target.params(record_id=d.record_id, bubble_id=d.bubble_ids[0], fields=list(d.fields)),
            )
            .fetchall()
        )
        findings.values[d.record_id] = [
            FieldValues(
                field=r["field"],
                column=r["column_name"],
                source=r["source_value"],
                bubble=r["bubble_value"],
                hidden=bool(_CREDENTIAL.search(r["field"]) or _CREDENTIAL.search(r["column_name"])),
            )
            for r in rows
        ]


def shown(value: Any, hidden: bool) -> str:
    """A value as the report prints it: JSON, cut to MAX_VALUE_CHARS; `empty` for none."""
    if hidden:
        return HIDDEN
    if value is None:
        return "empty"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"

"""What a mapping means for a backfill of its table: its key, its columns and its row filter, as its trigger
(bubble_sync.enqueue_mapped) queues them, checked against the table before anything is queued. The database
converts the payload as the trigger does (bubble_sync.enqueue_backfill finds the mapping by table_name)."""

from __future__ import annotations

from collections.abc import Mapping as MappingType
from typing import Any

import psycopg

from components.mappings import Mapping
from components.operator.backfill.base import BackfillError, run_query
from components.operator.backfill.flags import (
    describe_triggers,
    did_you_mean,
    require_unique,
    signup_triggers,
)
from components.operator.queries import backfill_query

__all__ = ["check_mapping", "refuse_without_inserts"]


def refuse_without_inserts(mapping: Mapping) -> str | None:
    """Why the mapping cannot be backfilled, or None: a backfilled row is a create, and a mapping that does
    not sync inserts never creates a record in Bubble; its backfill would."""
    if "insert" in mapping.operations:
        return None
    return (
        f"mapping {mapping.name} syncs {', '.join(mapping.operations) or 'nothing'} but not inserts: a "
        "backfill creates the records in Bubble, which its trigger never does"
    )


def check_mapping(
    conn: psycopg.Connection[Any],
    mapping: Mapping,
    table: MappingType[str, Any],
    columns: MappingType[str, str],
    label: str,
) -> list[str]:
    """Raises BackfillError when the table does not fit the mapping; returns the warnings."""
    flag = f"--mapping {mapping.name}"
    if table["queue_table_name"] != mapping.queue_table:
        raise BackfillError(  # the mapping's rows would not meet its trigger's (nor its conversion)
            f"{flag}: its rows carry table_name {mapping.queue_table}, the queue names {label} "
            f"{table['queue_table_name']}: run `pulumi up` for this stack"
        )
    for column in (mapping.key, *mapping.columns):
        if column not in columns:
            raise BackfillError(
                f"{flag}: {label} has no column {column}{did_you_mean(column, columns)}; the mapping "
                "names it (`pulumi preview` says the same of the stack's config)"
            )
    require_unique(conn, table["oid"], mapping.key, label, f"{flag}: its key {mapping.key}")
    warnings = []
    enabled = run_query(
        conn, backfill_query("mapping_trigger"), {"oid": table["oid"], "name": mapping.trigger_name}
    ).fetchone()
    if enabled is None or enabled["enabled"] == "D":
        what = "is not on" if enabled is None else "is disabled on"
        warnings.append(
            f"the mapping's trigger {mapping.trigger_name} {what} {label}: records changed after the "
            "backfill are not queued; `pulumi up` attaches it"
        )
    triggers = signup_triggers(conn, table["oid"])
    if triggers:
        warnings.append(
            f"{label} also has signup triggers of its own ({describe_triggers(triggers)}); `pulumi up` takes "
            "them over (a record must be queued once)"
        )
    return warnings

"""status's view of the queue per mapping: `queue_by_mapping` groups the rows that sql/operator_status.sql's
`queue_by_table` counts per table_name by the mapping whose table_name they carry (every deployed mapping is
listed, with zeros when it has no rows), then the tables no mapping names under their own name (a stack
without mappings: its signup table, say). Pure: the reading is status.py's, the printing report.py's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from components.mappings import Mapping as SyncMapping

__all__ = ["COUNTS", "queue_by_mapping"]

#: the numbers of each entry, as queue_by_table names them
COUNTS = (
    "pending",
    "processing",
    "retrying",
    "failed_for_good",
    "completed_24h",
    "oldest_pending_age",
    "latency_p50",
    "latency_p95",
)
_ZERO: dict[str, Any] = {
    "pending": 0,
    "processing": 0,
    "retrying": 0,
    "failed_for_good": 0,
    "completed_24h": 0,
    "oldest_pending_age": None,
    "latency_p50": None,
    "latency_p95": None,
}


def queue_by_mapping(
    rows: Iterable[Mapping[str, Any]], mappings: Iterable[SyncMapping]
) -> list[dict[str, Any]]:
    """One entry per mapping (in the order given), then one per table no mapping names (by name): `mapping`
    (None for those), `table_name`, `data_type` (the mapping's Bubble type, else None) and COUNTS."""
    by_table = {row["table_name"]: row for row in rows}
    entries = []
    for m in mappings:
        row = by_table.pop(m.queue_table, None)
        entries.append(
            {"mapping": m.name, "table_name": m.queue_table, "data_type": m.data_type, **_counts(row)}
        )
    for table_name in sorted(by_table):
        entries.append(
            {"mapping": None, "table_name": table_name, "data_type": None, **_counts(by_table[table_name])}
        )
    return entries


def _counts(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return dict(_ZERO)
    counts = {name: row[name] for name in COUNTS}
    for name in ("latency_p50", "latency_p95"):  # percentile_cont answers a double precision
        counts[name] = None if counts[name] is None else float(counts[name])
    return counts

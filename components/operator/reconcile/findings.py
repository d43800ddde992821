"""What a run found, per mapping: the differences bubble_sync.compare_with_bubble named, by kind, with what
the report shows (counts, up to 20 examples each, the stale fields) and what --repair needs (every record).

  missing     the source row is synced and Bubble has no thing with its key
  stale       Bubble's thing differs in some fields
  orphaned    a thing carries the key of a record whose source row is gone or filtered out
  duplicated  several things carry one record's key (the one the queue links is kept: `kept`)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from components.mappings import Mapping

__all__ = ["EXAMPLES", "KINDS", "Difference", "FieldValues", "MappingFindings"]

KINDS = ("missing", "stale", "orphaned", "duplicated")
#: examples shown per kind
EXAMPLES = 20


@dataclass(frozen=True)
class Difference:
    record_id: str
    kind: str
    #: stale: the Bubble fields that differ
    fields: tuple[str, ...] = ()
    #: the things concerned (orphaned, duplicated: all of them; stale: the one compared)
    bubble_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldValues:
    """--show-values: one stale field's value in Supabase (as the trigger converts it) and in Bubble."""

    field: str
    column: str
    source: Any
    bubble: Any
    hidden: bool = False


@dataclass
class MappingFindings:
    mapping: Mapping
    #: source records compared (the mapping's where and --where hold)
    records: int = 0
    #: Bubble things read that carry the mapping's keys
    things: int = 0
    #: orphans Bubble holds archived, as the mapping's onDelete set says: not differences
    archived: int = 0
    #: differences the first look saw and a second look did not (the sync was applying them)
    settled: int = 0
    differences: dict[str, dict[str, Difference]] = field(default_factory=lambda: {k: {} for k in KINDS})
    #: duplicated record -> the thing kept (the linked one, else the first Bubble answered)
    kept: dict[str, str] = field(default_factory=dict)
    #: --show-values: stale record -> its fields' values
    values: dict[str, list[FieldValues]] = field(default_factory=dict)

    def add(self, differences: Iterable[Difference]) -> None:
        for d in differences:
            self.differences[d.kind][d.record_id] = d

    def drop(self, record_ids: Iterable[str]) -> None:
        """Forgets what was found for these records (they are about to be compared again)."""
        for record_id in record_ids:
            for by_record in self.differences.values():
                by_record.pop(record_id, None)
            self.kept.pop(record_id, None)
            self.values.pop(record_id, None)

    def count(self, kind: str) -> int:
        return len(self.differences[kind])

    @property
    def total(self) -> int:
        return sum(self.count(kind) for kind in KINDS)

    def record_ids(self, kind: str | None = None) -> list[str]:
        """The records that differ (in `kind`, or in any), in order."""
        kinds = KINDS if kind is None else (kind,)
        return sorted({r for k in kinds for r in self.differences[k]})

    def examples(self, kind: str, limit: int = EXAMPLES) -> list[Difference]:
        by_record = self.differences[kind]
        return [by_record[r] for r in sorted(by_record)[:limit]]

    def stale_fields(self) -> Counter[str]:
        return Counter(f for d in self.differences["stale"].values() for f in d.fields)

    def key(self, record_id: str) -> str:
        """The record's stable key in Bubble, as the report names it."""
        return f"{self.mapping.queue_table}:{record_id}"

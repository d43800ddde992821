"""Finding what differs, mapping by mapping (`Examiner.run`):

1. Bubble's things are read into the session's store: every thing of the mapping's data type carrying a key
   (a scan, fetch.py), or, for a run limited by --where, the things of the records it selects (`in` searches,
   chunk by chunk).
2. The source records are walked in keyset chunks of the key (the mapping's where and --where applied), and
   bubble_sync.compare_with_bubble compares each chunk with its things.
3. Things no chunk took name records whose row is gone or filtered out: compared on their own (orphans).
4. A second look: the records that differed are read again by their keys and compared again, so a change the
   sync applied meanwhile (or a thing a scan missed while Bubble changed under it) is not reported.
5. Orphans Bubble holds archived, as the mapping's soft delete (onDelete set) says, are not differences; a
   duplicated record keeps the thing the queue links (else the first Bubble answered).

Nothing is written anywhere but the session's temporary table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any

import psycopg

from components.operator.progress_line import ProgressLine, counted, rate_and_eta
from components.operator.reconcile.bubble import BubbleReader
from components.operator.reconcile.fetch import look_up, scan
from components.operator.reconcile.findings import MappingFindings
from components.operator.reconcile.source import Target
from components.operator.reconcile.things import ThingStore, kept_fields

__all__ = ["Examiner"]


class Examiner:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        reader: BubbleReader,
        store: ThingStore,
        progress: ProgressLine,
        *,
        chunk_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn = conn
        self.reader = reader
        self.store = store
        self.progress = progress
        self.chunk_size = chunk_size
        self.clock = clock

    def run(self, targets: Sequence[Target], *, scan_bubble: bool) -> list[MappingFindings]:
        """Every target's findings. `scan_bubble`: read every thing of the types (a whole run); else only the
        things of the records compared (a run limited by --where: no orphans are looked for)."""
        found = [MappingFindings(t.mapping, records=t.count(self.conn)) for t in targets]
        if scan_bubble:
            self._scan(targets)
        for target, findings in zip(targets, found, strict=True):
            self._compare_source(target, findings, look_up_things=not scan_bubble)
            if scan_bubble:
                self._compare_orphans(target, findings)
            findings.things = target.things(self.conn)
        for target, findings in zip(targets, found, strict=True):
            findings.settled += self.second_look(target, findings, findings.record_ids())
        return found

    def second_look(self, target: Target, findings: MappingFindings, record_ids: Sequence[str]) -> int:
        """Reads the things of `record_ids` again and compares them again; what still differs replaces what
        was found for them (also after a repair). Returns how many of them no longer differ."""
        before = set(findings.record_ids()) & set(record_ids)
        if record_ids:
            m = target.mapping
            keys = [target.prefix + r for r in record_ids]
            self.store.forget(m.data_type, m.key_field, keys)
            reading = self._reading(f"second look at {m.name}", self.clock())
            look_up(self.reader, self.store, m.data_type, m.key_field, keys, _keep(target), reading)
            findings.drop(record_ids)
            for chunk in _chunks(record_ids, self.chunk_size):
                findings.add(target.compare(self.conn, chunk))
        self._settle(target, findings)
        findings.things = target.things(self.conn)
        return len(before - set(findings.record_ids()))

    # -- the steps ------------------------------------------------------------------------------------------

    def _scan(self, targets: Sequence[Target]) -> None:
        """One scan per data type and key field, however many mappings share them."""

        def group(t: Target) -> tuple[str, str]:
            return (t.mapping.data_type, t.mapping.key_field)

        for (data_type, key_field), sharing in groupby(sorted(targets, key=group), key=group):
            every = list(sharing)
            keep = kept_fields(key_field, (name for t in every for name in t.bubble_fields))
            started = self.clock()
            read = scan(self.reader, self.store, data_type, key_field, keep,
                        self._reading(f"reading Bubble's {data_type}", started))  # fmt: skip
            self.store.analyze()
            self.progress.note(
                f"read {counted(read, 'thing')} of {data_type} in {self.clock() - started:.1f} s "
                f"({counted(self.reader.requests, 'Bubble request')} so far)"
            )

    def _compare_source(self, target: Target, findings: MappingFindings, *, look_up_things: bool) -> None:
        m = target.mapping
        started, compared = self.clock(), 0
        for chunk in target.chunks(self.conn, self.chunk_size):
            if look_up_things:
                keys = [target.prefix + r for r in chunk]
                look_up(self.reader, self.store, m.data_type, m.key_field, keys, _keep(target))
            findings.add(target.compare(self.conn, chunk))
            compared += len(chunk)
            self.progress.show(
                f"comparing {m.name}: {compared:,}/{counted(findings.records, 'record')}, "
                f"{counted(findings.total, 'difference')}; "
                f"{counted(self.reader.requests, 'Bubble request')}; "
                f"{rate_and_eta(compared, findings.records, self.clock() - started, 'records')}"
            )
        self.progress.show(
            f"comparing {m.name}: {compared:,}/{counted(findings.records, 'record')}, "
            f"{counted(findings.total, 'difference')}",
            force=True,
        )
        findings.records = max(findings.records, compared)

    def _compare_orphans(self, target: Target, findings: MappingFindings) -> None:
        for chunk in _chunks(target.uncompared(self.conn), self.chunk_size):
            findings.add(target.compare(self.conn, chunk))

    def _settle(self, target: Target, findings: MappingFindings) -> None:
        """Archived orphans are no difference; a duplicated record's kept thing."""
        orphans = findings.differences["orphaned"]
        archived = target.archived(self.conn, [b for d in orphans.values() for b in d.bubble_ids])
        for record_id, d in list(orphans.items()):
            if d.bubble_ids and set(d.bubble_ids) <= archived:
                del orphans[record_id]
                findings.archived += 1
        duplicated = findings.differences["duplicated"]
        links = target.links(self.conn, list(duplicated))
        for record_id, d in duplicated.items():
            linked = links.get(record_id)
            findings.kept[record_id] = linked if linked in d.bubble_ids else d.bubble_ids[0]

    def _reading(self, what: str, started: float) -> Callable[[int, int | None], None]:
        def show(read: int, total: int | None) -> None:
            of = f"/{total:,}" if total is not None else ""
            self.progress.show(
                f"{what}: {read:,}{of} things, {counted(self.reader.requests, 'Bubble request')}; "
                f"{rate_and_eta(read, total, self.clock() - started, 'things')}",
                force=total is not None and read >= total,
            )

        return show


def _keep(target: Target) -> frozenset[str]:
    return kept_fields(target.mapping.key_field, target.bubble_fields)


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]

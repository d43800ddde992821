"""--repair: the differences turned into queue rows, through the queue's own functions (never a request to
Bubble from here), then followed until the sync has applied them.

  missing     INSERT (a create) when the mapping syncs inserts, else UPDATE when it syncs updates (a mapped
              UPDATE of a thing Bubble lacks creates it); the payload is what the mapping's trigger queues for
              the row as it is now (bubble_sync.mapped_payload), through bubble_sync.enqueue, so a change
              already waiting for the record folds in
  stale       UPDATE the same way, when the mapping syncs updates: the function modifies the linked thing (or
              the one found by key) with every mapped field
  orphaned    DELETE, as the trigger queues when a row leaves the synced rows, when the mapping syncs deletes
              and its onDelete does something (delete, or set: a soft delete); else left, and reported
  duplicated  the thing the queue links (bubble_sync.links) is kept, else the first Bubble answered; the
              others are reported, and deleted only with --delete-duplicates, by rows of
              bubble_sync.enqueue_delete_duplicate (a deployment of an earlier release lacks it: refused)

Each batch of 500 records is one transaction: Ctrl-C loses at most the batch in flight, which rolls back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from components.operator.progress_line import ProgressLine, counted, eta
from components.operator.queries import one_row
from components.operator.reconcile.findings import MappingFindings
from components.operator.reconcile.queries import reconcile_query
from components.operator.reconcile.source import Target

__all__ = [
    "BATCH",
    "STALL_SECONDS",
    "MappingRepair",
    "describe_plan",
    "follow",
    "plan_repairs",
    "queue_repairs",
]

#: records per transaction while queueing
BATCH = 500
#: nothing applied for this long while repairs wait: say where to look
STALL_SECONDS = 120.0


@dataclass
class MappingRepair:
    target: Target
    inserts: list[str] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    #: (record id, Bubble id of a duplicate to delete)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    #: what is not repaired, and why
    left: list[str] = field(default_factory=list)
    #: rows queued (a record no longer as it was compared is skipped by the queries)
    queued: int = 0

    @property
    def name(self) -> str:
        return self.target.mapping.name

    @property
    def to_queue(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.deletes) + len(self.duplicates)

    @property
    def record_ids(self) -> list[str]:
        return sorted({*self.inserts, *self.updates, *self.deletes, *(r for r, _ in self.duplicates)})


def plan_repairs(
    pairs: Sequence[tuple[Target, MappingFindings]], *, delete_duplicates: bool
) -> list[MappingRepair]:
    """What --repair queues for each mapping (in the order given: referenced mappings first)."""
    plans = []
    for target, found in pairs:
        m = target.mapping
        plan = MappingRepair(target)
        missing, stale = found.record_ids("missing"), found.record_ids("stale")
        if "insert" in m.operations:
            plan.inserts = missing
        elif "update" in m.operations:
            plan.updates = missing
        elif missing:
            plan.left.append(f"{len(missing):,} missing: mapping {m.name} syncs neither inserts nor updates")
        if "update" in m.operations:
            plan.updates = sorted({*plan.updates, *stale})
        elif stale:
            plan.left.append(f"{len(stale):,} stale: mapping {m.name} does not sync updates")
        orphaned = found.record_ids("orphaned")
        if orphaned and "delete" in m.operations and m.on_delete.action != "ignore":
            plan.deletes = orphaned
        elif orphaned:
            why = "onDelete is ignore" if "delete" in m.operations else "it does not sync deletes"
            plan.left.append(f"{len(orphaned):,} orphaned: mapping {m.name} keeps them ({why})")
        duplicated = found.differences["duplicated"]
        extra = [
            (r, b) for r, d in sorted(duplicated.items()) for b in d.bubble_ids if b != found.kept.get(r)
        ]
        if extra and delete_duplicates:
            plan.duplicates = extra
        elif extra:
            plan.left.append(
                f"{len(duplicated):,} duplicated: the linked thing of each is kept, and "
                f"{counted(len(extra), 'other')} left (--delete-duplicates deletes them)"
            )
        plans.append(plan)
    return plans


def describe_plan(plans: Sequence[MappingRepair]) -> str:
    lines = []
    for plan in plans:
        parts = [
            f"{len(plan.inserts):,} INSERT" if plan.inserts else "",
            f"{len(plan.updates):,} UPDATE" if plan.updates else "",
            f"{len(plan.deletes):,} DELETE" if plan.deletes else "",
            f"{len(plan.duplicates):,} deletes of duplicates" if plan.duplicates else "",
        ]
        queued = ", ".join(p for p in parts if p) or "nothing"
        lines.append(f"repair {plan.name}: queue {queued}")
        lines.extend(f"  left: {why}" for why in plan.left)
    return "\n".join(lines)


def queue_repairs(
    conn: psycopg.Connection[Any], plans: Sequence[MappingRepair], progress: ProgressLine
) -> None:
    """Queues every plan, BATCH records a transaction; `plan.queued` grows as each commits."""
    for plan in plans:
        t = plan.target
        for operation, ids in (("INSERT", plan.inserts), ("UPDATE", plan.updates)):
            for batch in _batches(ids):
                plan.queued += _one(
                    conn, t.compose("repair_upsert"), t.params(operation=operation, record_ids=batch)
                )
                progress.show(f"queueing repairs of {plan.name}: {plan.queued:,}/{plan.to_queue:,}")
        for batch in _batches(plan.deletes):
            plan.queued += _one(conn, t.compose("repair_delete"), t.params(record_ids=batch))
        for start in range(0, len(plan.duplicates), BATCH):
            with conn.transaction():
                for record_id, bubble_id in plan.duplicates[start : start + BATCH]:
                    conn.execute(
                        reconcile_query("repair_delete_duplicate"),
                        t.params(record_id=record_id, bubble_id=bubble_id),
                    )
            plan.queued += len(plan.duplicates[start : start + BATCH])
        progress.show(f"queueing repairs of {plan.name}: {plan.queued:,}/{plan.to_queue:,}", force=True)


def follow(
    conn: psycopg.Connection[Any],
    plans: Sequence[MappingRepair],
    progress: ProgressLine,
    *,
    poll_seconds: float = 1.0,
    stall_seconds: float = STALL_SECONDS,
    status_hint: str = "python -m components status",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Polls the repaired records until none has a row still to be applied; their counts: synced, failed (for
    good), outstanding."""
    started = last_change = clock()
    last_done, warned = -1, False
    while True:
        polled = clock()
        counts = {"synced": 0, "failed": 0, "outstanding": 0}
        for plan in plans:
            if plan.record_ids:
                row = one_row(
                    conn.cursor(row_factory=dict_row).execute(
                        reconcile_query("repair_progress"),
                        {"queue_table": plan.target.mapping.queue_table, "record_ids": plan.record_ids},
                    )
                )
                for name in counts:
                    counts[name] += row[name]
        done = counts["synced"] + counts["failed"]
        total = done + counts["outstanding"]
        rate = done / max(clock() - started, 1e-9)
        when = (
            "0s" if counts["outstanding"] == 0 else (eta(counts["outstanding"] / rate) if rate > 0 else "-")
        )
        progress.show(
            f"syncing repairs: {counts['synced']:,}/{total:,} synced, {counts['failed']:,} failed; "
            f"{rate:,.0f} records/s, ETA {when}",
            force=counts["outstanding"] == 0,
        )
        if counts["outstanding"] == 0:
            return counts
        if done != last_done:
            last_change, last_done, warned = clock(), done, False
        elif not warned and clock() - last_change >= stall_seconds:
            warned = True
            progress.note(
                f"nothing applied for {eta(clock() - last_change)} while {counts['outstanding']:,} repairs "
                f"wait: is the processor running? `{status_hint}` says why"
            )
        # a poll reads every repaired record's rows: for a large repair, poll less often than it costs
        sleep(max(poll_seconds, 4 * (clock() - polled)))


def _batches(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]


def _one(conn: psycopg.Connection[Any], query: Any, params: dict[str, Any]) -> int:
    with conn.transaction():
        queued: int = one_row(
            conn.cursor(row_factory=dict_row).execute(
                query, {**params, "record_ids": list(params["record_ids"])}
            )
        )["queued"]
        return queued

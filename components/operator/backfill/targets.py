"""What a run backfills: `--from TABLE` (a table the stack maps takes its mapping), `--mapping NAME` (one
deployed mapping) or `--mapping all` (every deployed mapping, referenced mappings first: a listing's row must
find its host's row in the queue, to wait for it, rather than fail to find the host in Bubble). The
deployed mappings come from the database (components/operator/mappings.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from components.mappings import Mapping
from components.operator.backfill.base import BackfillError
from components.operator.backfill.mapped import refuse_without_inserts
from components.operator.mappings import mapping_names, reference_order

__all__ = ["ALL", "Targets", "choose_targets"]

#: --mapping's value for every deployed mapping (a mapping named `all` is backfilled with --from its table)
ALL = "all"


@dataclass(frozen=True)
class Targets:
    """A run: one --from table (mapped or not), or mappings in the order they are queued."""

    source: str | None = None
    mappings: tuple[Mapping, ...] = ()
    #: why mappings of `--mapping all` are left out
    notes: tuple[str, ...] = field(default=())


def choose_targets(
    deployed: Sequence[Mapping],
    *,
    source: str | None,
    mapping: str | None,
    key: str | None,
    fields: Sequence[str] | None,
) -> Targets:
    """Raises BackfillError naming the flag that does not fit, and what is deployed."""
    deployed_names = mapping_names(deployed)
    if source is not None and mapping is not None:
        raise BackfillError("--from and --mapping exclude each other: a mapping names its table itself")
    if source is None and mapping is None:
        choices = f"; or --mapping NAME or --mapping {ALL} (deployed: {deployed_names})" if deployed else ""
        raise BackfillError(f"give the table to backfill with --from TABLE{choices}")
    if source is not None:
        return Targets(source=source)
    assert mapping is not None
    if key is not None or fields is not None:
        raise BackfillError(
            f"--mapping {mapping} takes the key and the fields from the mapping (what its trigger queues): "
            "leave out --key and --fields"
        )
    if mapping == ALL:
        if not deployed:
            raise BackfillError(
                f"--mapping {ALL}: this database has no deployed mappings (bubble_sync.mappings is empty or "
                "missing): `pulumi up` a stack with bubble-sync:mappings, or give --from TABLE"
            )
        chosen, notes = [], []
        for m in reference_order(deployed):
            why = refuse_without_inserts(m)
            if why is None:
                chosen.append(m)
            else:
                notes.append(f"{why}: left out")
        if not chosen:
            raise BackfillError(f"--mapping {ALL}: no mapping syncs inserts ({'; '.join(notes)})")
        return Targets(mappings=tuple(chosen), notes=tuple(notes))
    found = next((m for m in deployed if m.name == mapping), None)
    if found is None:
        raise BackfillError(
            f"--mapping {mapping}: no such mapping in this database (deployed: {deployed_names})"
        )
    why = refuse_without_inserts(found)
    if why is not None:
        raise BackfillError(f"--mapping {mapping}: {why}")
    return Targets(mappings=(found,))

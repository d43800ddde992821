"""What a run says: per mapping, each kind of difference with its count and up to 20 example keys (the stale
fields; with --show-values, their values), as text (`render_findings`) or as one JSON document
(`findings_json`); and the line that sums a run up (`summary`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from components.operator.progress_line import counted
from components.operator.reconcile.findings import KINDS, Difference, MappingFindings
from components.operator.reconcile.values import HIDDEN, shown

__all__ = ["RunFigures", "findings_json", "render_findings", "summary"]


@dataclass(frozen=True)
class RunFigures:
    """How much a run cost."""

    seconds: float
    bubble_requests: int
    rate_limited: int

    def per_record(self, records: int) -> float:
        return self.bubble_requests / records if records else 0.0


def render_findings(found: Sequence[MappingFindings]) -> str:
    lines: list[str] = []
    for f in found:
        m = f.mapping
        head = (
            f"mapping {m.name} ({m.qualified_table} -> Bubble {m.data_type}, key field {m.key_field}): "
            f"{counted(f.records, 'record')}, {counted(f.things, 'thing')}"
        )
        if f.total == 0:
            lines.append(f"{head}: in sync")
        else:
            lines.append(f"{head}: {counted(f.total, 'difference')}")
            for kind in KINDS:
                if f.count(kind):
                    lines.extend(_kind_lines(f, kind))
        notes = []
        if f.archived:
            notes.append(
                f"{f.archived:,} records deleted in Supabase are archived in Bubble, as onDelete sets"
            )
        if f.settled:
            notes.append(
                f"{f.settled:,} differences seen at first were gone on a second look (the sync applied them)"
            )
        lines.extend(f"  ({note})" for note in notes)
    return "\n".join(lines) + "\n"


def _kind_lines(f: MappingFindings, kind: str) -> list[str]:
    examples = f.examples(kind)
    more = f.count(kind) - len(examples)
    label = f"  {kind:<10} {f.count(kind):>6,}  "
    lines = []
    if kind == "stale":
        lines.append(label + ", ".join(f"{f.key(d.record_id)} ({', '.join(d.fields)})" for d in examples)
                     + (f", and {more:,} more" if more else ""))  # fmt: skip
        fields = ", ".join(f"{name} {count:,}" for name, count in f.stale_fields().most_common())
        lines.append(f"  {'':<10} {'':>6}  fields: {fields}")
        for d in examples:
            for v in f.values.get(d.record_id, ()):
                lines.append(
                    f"  {'':<10} {'':>6}    {f.key(d.record_id)} {v.field}: "
                    f"Supabase {shown(v.source, v.hidden)}, Bubble {shown(v.bubble, v.hidden)}"
                )
        return lines
    lines.append(
        label + ", ".join(_example(f, kind, d) for d in examples) + (f", and {more:,} more" if more else "")
    )
    return lines


def _example(f: MappingFindings, kind: str, d: Difference) -> str:
    if kind == "orphaned":
        return f"{f.key(d.record_id)} ({', '.join(d.bubble_ids)})"
    if kind == "duplicated":
        kept = f.kept.get(d.record_id)
        others = [b for b in d.bubble_ids if b != kept]
        return f"{f.key(d.record_id)} (kept {kept}; also {', '.join(others)})"
    return f.key(d.record_id)


def summary(found: Sequence[MappingFindings], figures: RunFigures) -> str:
    records = sum(f.records for f in found)
    total = sum(f.total for f in found)
    differing = sum(1 for f in found if f.total)
    cost = (
        f"{counted(figures.bubble_requests, 'Bubble request')} for {counted(records, 'record')} "
        f"({figures.per_record(records):.4f} a record) in {figures.seconds:.1f} s "
        f"({records / figures.seconds if figures.seconds > 0 else 0:,.0f} records/s)"
    )
    if figures.rate_limited:
        cost += f"; {figures.rate_limited:,} answered 429 and were sent again"
    if total == 0:
        return f"in sync: {counted(len(found), 'mapping')}; {cost}"
    kinds = ", ".join(f"{kind} {sum(f.count(kind) for f in found):,}" for kind in KINDS)
    return f"{counted(total, 'difference')} in {differing} of {len(found)} mappings ({kinds}); {cost}"


def findings_json(found: Sequence[MappingFindings]) -> list[dict[str, Any]]:
    return [_mapping_json(f) for f in found]


def _mapping_json(f: MappingFindings) -> dict[str, Any]:
    m = f.mapping
    document: dict[str, Any] = {
        "mapping": m.name,
        "table": m.qualified_table,
        "data_type": m.data_type,
        "key_field": m.key_field,
        "records": f.records,
        "things": f.things,
        "in_sync": f.total == 0,
        "archived": f.archived,
        "settled": f.settled,
    }
    for kind in KINDS:
        examples = []
        for d in f.examples(kind):
            item: dict[str, Any] = {"record_id": d.record_id, "key": f.key(d.record_id)}
            if kind == "stale":
                item["fields"] = list(d.fields)
                item["bubble_id"] = d.bubble_ids[0] if d.bubble_ids else None
                if d.record_id in f.values:
                    item["values"] = [
                        {"field": v.field, "column": v.column,
                         "supabase": HIDDEN if v.hidden else v.source,
                         "bubble": HIDDEN if v.hidden else v.bubble}
                        for v in f.values[d.record_id]
                    ]  # fmt: skip
            elif kind == "duplicated":
                item["bubble_ids"] = list(d.bubble_ids)
                item["kept"] = f.kept.get(d.record_id)
            elif kind == "orphaned":
                item["bubble_ids"] = list(d.bubble_ids)
            examples.append(item)
        document[kind] = {"count": f.count(kind), "examples": examples}
    document["stale"]["fields"] = dict(f.stale_fields().most_common())
    return document

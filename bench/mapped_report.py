"""The `mappings` profile's own figures and lines of results.md: per mapping (and the messages' deletes) the
rows, their rate, latency and Bubble requests; what the correctness checks found; and the profile's cost per
row against the single-type `growth` profile of the same run. The plan table (bench/markdown.py) has the
profile's overall figures like every plan profile's."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.mapped_app import MAPPINGS
from bench.observation import Observation
from bench.stats import request_kind, steady_throughput, summary

#: the single-type profile the mappings are compared with, and how much more a row may cost
BASELINE = "growth"
TARGET_COST_RATIO = 1.20
#: (mapping, operation, its Bubble data type), in the order of the table
GROUPS = (
    ("users", "create", "user"),
    ("listings", "create", "listing"),
    ("messages", "create", "message"),
    ("messages", "delete", "message"),
)
#: the function's costs per row compared with the baseline's: (figure, what the line calls it)
COSTS = (("cpu_ms_per_row", "CPU ms per row"), ("db_round_trips_per_row", "DB round trips per row"))
#: how many differences results.md lists (results.json has them all)
FAILURES_SHOWN = 10


def figures(obs: Observation) -> dict[str, Any]:
    """Per mapping and operation, from the rows' own times and the double's request log; and the checks."""
    run = obs.mapped
    created = {r["record_id"]: r["created_at"] for r in obs.rows}
    status = {r["record_id"]: r["status"] for r in obs.rows}
    groups = []
    for mapping, operation, data_type in GROUPS:
        keys = [k for k, kind in run.row_kinds.items() if kind == (mapping, operation)]
        reached = {k: obs.bubble_created[k] for k in keys if k in obs.bubble_created}
        # a delete row sends DELETE requests; a create row every other kind (a search by key, a create)
        requests = [
            r
            for r in obs.requests
            if r.get("type") == data_type and (r["method"] == "DELETE") == (operation == "delete")
        ]
        groups.append(
            {
                "mapping": mapping,
                "operation": operation,
                "data_type": data_type,
                "rows": len(keys),
                "synced": len(reached),
                "failed": sum(1 for k in keys if status[k] == "failed"),
                "rows_per_s": steady_throughput(list(reached.values())),
                "latency_s": summary([at - created[k] for k, at in reached.items()]),
                "requests": len(requests),
                "requests_by_kind": dict(sorted(Counter(request_kind(r) for r in requests).items())),
                "requests_per_row": len(requests) / len(reached) if reached else None,
            }
        )
    sizes = run.sizes
    checked = run.checked
    # how long after its host's user each listing reached Bubble (claim holds it back until the host's is in)
    after_host = [
        obs.bubble_created[f"listings:{listing}"] - obs.bubble_created[f"profiles:{host}"]
        for listing, host in run.listing_hosts.items()
        if f"listings:{listing}" in obs.bubble_created and f"profiles:{host}" in obs.bubble_created
    ]
    return {
        "sizes": {
            "users": sizes.users,
            "test_accounts": sizes.test_accounts,
            "listings": sizes.listings,
            "messages": sizes.messages,
            "deleted": sizes.deleted,
            "requests": sizes.requests,
        },
        "insert_seconds": run.insert_seconds,
        "deleted": run.deleted,
        "delete_transactions": run.delete_transactions,
        "groups": groups,
        "listing_after_host_s": {**summary(after_host), "min": min(after_host, default=None)},
        "bubble_things": checked.bubble_counts,
        "test_accounts_in_bubble": checked.test_accounts_in_bubble,
        "failures": checked.failures,
        "baseline": BASELINE,
    }


def _mapping_text(name: str) -> str:
    """`public.listings → listing (Host: ref users)`, from the profile's config."""
    mapping = next(m for m in MAPPINGS if m["name"] == name)
    refs = [
        f"{spec['field']}: ref {spec['ref']}"
        for spec in dict(mapping["fields"]).values()  # type: ignore[call-overload]
        if isinstance(spec, dict)
    ]
    where = [f"where {mapping['where']}"] if mapping.get("where") else []
    extra = f" ({', '.join(refs + where)})" if refs or where else ""
    return f"{mapping['table']} → {mapping['dataType']}{extra}"


def markdown_lines(results: list[dict[str, Any]]) -> list[str]:
    """The lines of each mappings profile in `results` (others are its baseline); none without one."""
    lines: list[str] = []
    baseline = next((r for r in results if r["profile"] == BASELINE), None)
    for r in results:
        m = r.get("mapped")
        if m:
            lines += _profile_lines(r, m, baseline)
    return lines


def _profile_lines(r: dict[str, Any], m: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    s = m["sizes"]
    lines = [
        "",
        f"`{r['profile']}`, per mapping: {s['users']:,} users (and {_n(s['test_accounts'], 'test account')}),"
        f" {s['listings']:,} listings and {s['messages']:,} messages made in one transaction"
        f" ({m['insert_seconds']:.1f} s), each user followed by its listings and messages; then"
        f" {s['deleted']:,} of the messages deleted, each as soon as Bubble had it"
        f" ({_n(m['delete_transactions'], 'delete transaction')} while the backlog lasted).",
        "",
        "| mapping | Supabase → Bubble | rows | synced | rows/s | p50 / p99 | Bubble requests per row |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for g in m["groups"]:
        name = f"`{g['mapping']}`" + (" deletes" if g["operation"] == "delete" else "")
        what = "DELETE → delete the thing" if g["operation"] == "delete" else _mapping_text(g["mapping"])
        lat = g["latency_s"]
        kinds = ", ".join(f"{kind}: {n:,}" for kind, n in g["requests_by_kind"].items())
        failed = f" ({g['failed']} failed)" if g["failed"] else ""
        lines.append(
            f"| {name} | {what} | {g['rows']:,} | {g['synced']:,}{failed} | {_fmt(g['rows_per_s'], 0)} |"
            f" {_fmt(lat['p50'], 1, ' s')} / {_fmt(lat['p99'], 1, ' s')} |"
            f" {_fmt(g['requests_per_row'], 3)} ({kinds or 'none'}) |"
        )
    lines += [
        "",
        "Rows: the queue rows of the mapping (a create each, or a delete); synced: completed and in"
        " Bubble. Rows/s: that mapping's rows reaching Bubble, 10th–90th percentile of their times (the"
        " mappings share the limit). p50 / p99: from queueing to the thing's `Created Date`, for a delete to"
        " the double's answer to the DELETE. Bubble requests: those to the mapping's data type (for the"
        " messages: DELETEs apart), by kind, per row synced.",
    ]
    gap = m["listing_after_host_s"]
    if gap["n"]:
        lines.append(
            f"\nEach listing was queued right after its host; it reached Bubble {_fmt(gap['p50'], 2, ' s')}"
            f" after its host's user at the median ({_fmt(gap['min'], 3, ' s')} at the least,"
            f" {_fmt(gap['p99'], 2, ' s')} at the 99th percentile)."
        )
    lines.append("")
    failures = m["failures"]
    if failures:
        lines.append(f"**Correctness: {len(failures)} DIFFERENCE(S) between Bubble and Supabase**:")
        lines += [""] + [f"- {f}" for f in failures[:FAILURES_SHOWN]]
        if len(failures) > FAILURES_SHOWN:
            lines.append(f"- ... and {len(failures) - FAILURES_SHOWN} more (results.json)")
    else:
        things = ", ".join(f"{n:,} {t}" for t, n in m["bubble_things"].items())
        lines.append(
            "Correctness, Bubble against Supabase after the run: no difference. Bubble holds "
            f"{things}: every user and listing and every message not deleted, once, with its mapped fields"
            " as Supabase holds them, each listing's Host the Bubble id of its host's user; the"
            f" {m['deleted']:,} deleted messages gone; the {_n(s['test_accounts'], 'test account')} absent;"
            " every queue row completed."
        )
    lines += ["", f"Targets of `{r['profile']}` beyond the plan table's:", ""]
    lines += [f"- {t}" for t in cost_targets(r, baseline)]
    ok = not failures
    lines.append(f"- correctness: {len(failures)} difference(s) (" + ("met" if ok else "NOT met") + ")")
    return lines


def cost_targets(r: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """CPU ms and DB round trips per row within TARGET_COST_RATIO of the baseline's in the same run."""
    if baseline is None:
        both = f"{BASELINE},{r['profile']}"
        return [f"cost per row against `{BASELINE}`: not measured (run `--profiles {both}`)"]
    out = []
    for key, what in COSTS:
        ours, theirs = r["function"][key], baseline["function"][key]
        if ours is None or not theirs:
            out.append(f"{what}: not measured")
            continue
        ratio = ours / theirs
        ok = ratio <= TARGET_COST_RATIO
        out.append(
            f"{what} {ours:.3f} against `{BASELINE}`'s {theirs:.3f}: {100 * (ratio - 1):+.0f} %"
            f" {'≤' if ok else '>'} +{100 * (TARGET_COST_RATIO - 1):.0f} % ({'met' if ok else 'NOT met'})"
        )
    return out


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _fmt(value: float | None, digits: int, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"

"""From observations to figures: throughput, latency percentiles, requests per row; the Markdown table, the
JSON and the plot. Every figure says whether it was measured or derived."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import Observation

TARGET_RATE_SHARE = 0.90
TARGET_P50_S = 2.0
TARGET_REQUESTS_PER_ROW = 1.0


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in 0..100."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if math.isinf(ordered[hi]):
        return math.inf
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _summary(values: list[float]) -> dict[str, Any]:
    def finite(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else value

    return {
        "n": len(values),
        "p50": finite(percentile(values, 50)),
        "p95": finite(percentile(values, 95)),
        "p99": finite(percentile(values, 99)),
        "max": finite(max(values)) if values else None,
    }


def steady_throughput(times: list[float]) -> float | None:
    """Rows per second between the 10th and the 90th percentile of completion times (ramp-up and tail cut)."""
    if len(times) < 10:
        return None
    ordered = sorted(times)
    lo, hi = int(0.1 * len(ordered)), int(0.9 * len(ordered))
    span = ordered[hi] - ordered[lo]
    return (hi - lo) / span if span > 0 else None


def derive_cron_backlog(obs: Observation) -> tuple[dict[str, float], dict[str, Any]]:
    """For a cron-only profile: when each row not synced by the end of the run would reach Bubble.

    Rows are claimed oldest first, `rows_per_invocation` per minute tick, so the r-th waiting row (0-based, by
    created_at) goes at tick floor(r / limit) + 1 after the last observed one, plus the average time from a
    tick's start to a row reaching Bubble measured on the observed ticks."""
    limit = obs.profile.rows_per_invocation or obs.profile.batch_size
    offsets = []
    for at in obs.bubble_created.values():
        before = [t for t in obs.ticks if t <= at]
        if before:
            offsets.append(at - before[-1])
    offset = sum(offsets) / len(offsets) if offsets else 0.0
    if obs.ticks:
        last_tick = obs.ticks[-1]
    else:  # no tick observed: the next minute boundary after the last signup is the first
        last_tick = math.floor(obs.inserts_done_at / 60) * 60.0
    waiting = [r for r in obs.rows if r["record_id"] not in obs.bubble_created and r["status"] != "failed"]
    derived = {
        row["record_id"]: last_tick + (r // limit + 1) * 60.0 + offset
        for r, row in enumerate(sorted(waiting, key=lambda row: row["created_at"]))
    }
    model = {
        "rows_per_tick": limit,
        "tick_interval_s": 60,
        "tick_to_bubble_offset_s": round(offset, 3),
        "offset_measured_on_rows": len(offsets),
        "last_observed_tick": last_tick,
        "rows_derived": len(derived),
    }
    return derived, model


def analyse(obs: Observation) -> dict[str, Any]:
    s = obs.settings
    created = {row["record_id"]: row["created_at"] for row in obs.rows}
    steady, burst = set(obs.steady_ids), set(obs.burst_ids)
    measured = {rid: at - created[rid] for rid, at in obs.bubble_created.items() if rid in created}
    cron_only = obs.profile.dispatch_mode == "cron"

    derived: dict[str, float] = {}
    model: dict[str, Any] | None = None
    if cron_only:
        derived_at, model = derive_cron_backlog(obs)
        derived = {rid: at - created[rid] for rid, at in derived_at.items()}
    combined = {**measured, **derived}
    # rows an immediate-dispatch run gave up on: their latency is at least the time they waited
    unsynced_waits = [
        obs.ended_at - row["created_at"] for row in obs.rows if row["record_id"] not in obs.bubble_created
    ]
    with_unsynced = None
    if not cron_only and unsynced_waits:
        with_unsynced = _summary(list(measured.values()) + [math.inf] * len(unsynced_waits))
        with_unsynced["unsynced"] = len(unsynced_waits)
        with_unsynced["unsynced_waited_at_least_s"] = min(unsynced_waits)

    # throughput: what reached Bubble after the burst was inserted, while the backlog lasted
    synced_after_burst = [at for at in obs.bubble_created.values() if at >= obs.burst_at]
    if cron_only:
        per_tick = _rows_per_tick(obs)
        throughput = (per_tick / 60.0) if per_tick is not None else None
        throughput_kind = "measured over the observed ticks (rows per tick / 60 s)" if obs.ticks else "none"
    else:
        throughput = steady_throughput(synced_after_burst)
        throughput_kind = "measured: burst drain, 10th to 90th percentile of completions"
        if obs.timed_out:  # the backlog outlived the run: what reached Bubble after the burst, per second
            throughput = len(synced_after_burst) / (obs.ended_at - obs.burst_at)
            throughput_kind = (
                "measured: rows synced after the burst / time until the run gave up (not drained)"
            )
        per_tick = None
    rate_limit_rps = s.rate_limit_per_minute / 60.0

    statuses = Counter(r["status"] for r in obs.requests)
    kinds = Counter(_kind(r) for r in obs.requests)
    synced = len(obs.bubble_created)
    completed = sum(1 for r in obs.rows if r["status"] == "completed")
    return {
        "profile": obs.profile.name,
        "description": obs.profile.description,
        "settings": {
            "dispatch_mode": obs.profile.dispatch_mode,
            "batch_size": obs.profile.batch_size,
            "concurrency": obs.profile.concurrency,
            "bulk_create": obs.profile.bulk_create,
            "rows_per_invocation": obs.profile.rows_per_invocation,
        },
        "signups": len(obs.rows),
        "steady_signups": len(steady),
        "burst_signups": len(burst),
        "synced_measured": synced,
        "completed_rows": completed,
        "failed_rows": sum(1 for r in obs.rows if r["status"] == "failed"),
        "duplicates_in_bubble": obs.bubble_records - synced,
        "run_seconds": round(obs.ended_at - obs.started_at, 1),
        "timed_out": obs.timed_out,
        "throughput_rows_per_s": throughput,
        "throughput_rows_per_min": None if throughput is None else throughput * 60,
        "throughput_share_of_rate_limit": None if throughput is None else throughput / rate_limit_rps,
        "throughput_kind": throughput_kind,
        "rows_per_tick_measured": per_tick,
        "cron_ticks_observed": len(obs.ticks),
        "latency_s": {
            "measured_all": _summary(list(measured.values())),
            "measured_steady": _summary([v for k, v in measured.items() if k in steady]),
            "measured_burst": _summary([v for k, v in measured.items() if k in burst]),
            "all_with_derived": _summary(list(combined.values())) if cron_only else None,
            # percentiles that fall on a row never synced are null: "more than unsynced_waited_at_least_s"
            "all_with_unsynced": with_unsynced,
            "steady_with_derived": (
                _summary([v for k, v in combined.items() if k in steady]) if cron_only else None
            ),
        },
        "derivation": model,
        "bubble_requests": len(obs.requests),
        "bubble_requests_by_status": dict(sorted((str(k), v) for k, v in statuses.items())),
        "bubble_requests_by_kind": dict(sorted(kinds.items())),
        "requests_per_synced_row": (len(obs.requests) / synced) if synced else None,
        "notes": obs.notes,
        "latencies": {"measured": measured, "derived": derived},
        "synced_at": sorted(at - obs.started_at for at in obs.bubble_created.values()),
        "derived_synced_at": sorted(created[rid] + lat - obs.started_at for rid, lat in derived.items()),
    }


def _rows_per_tick(obs: Observation) -> float | None:
    if not obs.ticks:
        return None
    counts = []
    for i, tick in enumerate(obs.ticks):
        nxt = obs.ticks[i + 1] if i + 1 < len(obs.ticks) else math.inf
        counts.append(sum(1 for at in obs.bubble_created.values() if tick <= at < nxt))
    return sum(counts) / len(counts)


def _kind(request: dict[str, Any]) -> str:
    path, method = request["path"], request["method"]
    if path.endswith("/bulk"):
        return "bulk create"
    if method == "POST":
        return "create"
    if method == "GET":
        return "search" if request.get("query") else "get"
    return method.lower()


# -- output ------------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def markdown(results: list[dict[str, Any]], settings: dict[str, Any], command: str) -> str:
    rl = settings["rate_limit_per_minute"]
    lines = [
        f"Command: `{command}`",
        "",
        f"Bubble double: {settings['latency_ms']:g}–"
        f"{settings['latency_ms'] + settings['latency_jitter_ms']:g} ms per request,"
        f" rate limit {rl:g}/min (burst {settings['rate_limit_burst']:g}). Workload per profile:"
        f" {settings['steady_signups']} signups at {settings['arrival_rate']:g}/s, then"
        f" {settings['burst_signups']} in one transaction.",
        "",
        "| profile | synced (measured) | sustained throughput | % of rate limit | p50 | p95 | p99 "
        "| p50 / p99 incl. burst | Bubble requests per row |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lat = r["latency_s"]
        steady = lat["steady_with_derived"] or lat["measured_steady"]
        everything = lat["all_with_derived"] or lat["all_with_unsynced"] or lat["measured_all"]
        floor = everything.get("unsynced_waited_at_least_s")

        def at_least(value: float | None, floor: float | None = floor, mark: str = "") -> str:
            if value is None and floor is not None:
                return f"> {floor:.0f} s (not synced)"
            return _fmt(value, suffix=" s") + mark

        derived = r["derivation"] is not None
        mark = " †" if derived else ""
        tp = r["throughput_rows_per_s"]
        tp_text = "–" if tp is None else f"{tp:.2f} rows/s ({tp * 60:,.0f}/min)"
        lines.append(
            f"| `{r['profile']}` | {r['synced_measured']}/{r['signups']}"
            f"{' (timed out)' if r['timed_out'] else ''} | {tp_text} | "
            f"{_fmt(None if tp is None else 100 * r['throughput_share_of_rate_limit'], 0, ' %')} | "
            f"{_fmt(steady['p50'], suffix=' s')}{mark} | {_fmt(steady['p95'], suffix=' s')}{mark} | "
            f"{_fmt(steady['p99'], suffix=' s')}{mark} | "
            f"{at_least(everything['p50'], mark=mark)} / {at_least(everything['p99'], mark=mark)} | "
            f"{_fmt(r['requests_per_synced_row'])} |"
        )
    lines += [
        "",
        "p50/p95/p99: signup (sync_queue.created_at) to the Bubble record's `Created Date`, for the signups"
        " that arrived at the steady rate; the next column includes the burst, whose rows queue behind the"
        " rate limit (rows a run never synced count as slower than their wait so far)."
        " Throughput: rows reaching Bubble per second while the burst's backlog lasted (10th–90th"
        " percentile of its completions). Bubble requests per row: every `/obj` request the double logged"
        " (429s included) divided by the rows it stored. With bulk creates one request carries up to a batch"
        " of rows, so rows/s can exceed the request rate limit.",
    ]
    for r in results:
        if r["derivation"]:
            m = r["derivation"]
            measured = r["latency_s"]["measured_all"]
            lines.append(
                f"\n† `{r['profile']}`: measured for the {measured['n']} rows synced during"
                f" {r['cron_ticks_observed']} real pg_cron tick(s) (p50 {_fmt(measured['p50'], suffix=' s')},"
                f" p99 {_fmt(measured['p99'], suffix=' s')}); the {m['rows_derived']} rows still queued are"
                f" derived: oldest first, {m['rows_per_tick']} per minute tick after the last observed one,"
                f" plus the measured {m['tick_to_bubble_offset_s']:.2f} s from tick to Bubble. Throughput:"
                f" {_fmt(r['rows_per_tick_measured'], 1)} rows per tick, measured."
            )
    ratios = ratios_against(results, "seed")
    if ratios:
        lines += ["", "Against the seed's profile:", ""]
        for name, ratio in ratios.items():
            lines.append(
                f"- `{name}`: throughput ×{_fmt(ratio['throughput'], 0)}, steady p50 latency"
                f" ÷{_fmt(ratio['p50'], 0)}, p99 including the burst ÷{_fmt(ratio['p99_all'], 0)},"
                f" Bubble requests per row ×{_fmt(ratio['requests_per_row'])}"
            )
    lines += ["", "Targets:", ""]
    for r in results:
        lines.append(f"- `{r['profile']}`: " + "; ".join(_targets(r, rl / 60.0)))
    return "\n".join(lines) + "\n"


def _targets(r: dict[str, Any], rate_limit_rps: float) -> list[str]:
    out = []
    share = r["throughput_share_of_rate_limit"]
    if share is not None:
        ok = share >= TARGET_RATE_SHARE
        out.append(f"throughput {100 * share:.0f} % of the rate limit {'≥' if ok else '<'} 90 % ({_ok(ok)})")
    if r["settings"]["dispatch_mode"] == "immediate":
        p50 = r["latency_s"]["measured_steady"]["p50"]
        if p50 is not None:
            ok = p50 <= TARGET_P50_S
            out.append(f"p50 {p50:.2f} s {'≤' if ok else '>'} 2 s ({_ok(ok)})")
    rpr = r["requests_per_synced_row"]
    if rpr is not None:
        ok = rpr <= TARGET_REQUESTS_PER_ROW
        out.append(f"{rpr:.2f} requests per row {'≤' if ok else '>'} 1 ({_ok(ok)})")
    return out


def _ok(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ratios_against(results: list[dict[str, Any]], baseline: str) -> dict[str, dict[str, float | None]]:
    base = next((r for r in results if r["profile"] == baseline), None)
    if base is None:
        return {}

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    def p(r: dict[str, Any], which: str, q: str) -> float | None:
        lat = r["latency_s"]
        if which == "all" and lat.get("all_with_unsynced"):
            return lat["all_with_unsynced"][q]  # None when that percentile was never synced
        return (lat[f"{which}_with_derived"] or lat[f"measured_{which}"])[q]

    return {
        r["profile"]: {
            "throughput": div(r["throughput_rows_per_s"], base["throughput_rows_per_s"]),
            "p50": div(p(base, "steady", "p50"), p(r, "steady", "p50")),
            "p99_all": div(p(base, "all", "p99"), p(r, "all", "p99")),
            "requests_per_row": div(r["requests_per_synced_row"], base["requests_per_synced_row"]),
        }
        for r in results
        if r["profile"] != baseline
    }


def _cdf_label(r: dict[str, Any], derived: bool) -> str:
    if derived:
        return f"{r['profile']} (measured + derived)"
    if r["synced_measured"] < r["signups"]:
        return f"{r['profile']} ({r['synced_measured']}/{r['signups']} synced)"
    return r["profile"]


def write_json(path: Path, results: list[dict[str, Any]], settings: dict[str, Any], command: str) -> None:
    document = {
        "command": command,
        "settings": settings,
        "profiles": results,
        "ratios_against_seed": ratios_against(results, "seed"),
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def plot(path: Path, results: list[dict[str, Any]], settings: dict[str, Any]) -> bool:
    """Latency CDF and rows synced over time, per profile. False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colours = {"default": "tab:blue", "default-bulk": "tab:green", "seed": "tab:red"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for r in results:
        colour = colours.get(r["profile"], None)
        measured = sorted(r["latencies"]["measured"].values())
        derived = sorted(r["latencies"]["derived"].values())
        everything = sorted(measured + derived)
        if everything:
            n = r["signups"]  # rows never synced keep the curve below 1
            left.step(everything, [(i + 1) / n for i in range(len(everything))], where="post", color=colour,
                      label=_cdf_label(r, bool(derived)),
                      linestyle="--" if derived else "-")  # fmt: skip
        synced = r["synced_at"]
        right.step([0, *synced], range(len(synced) + 1), where="post", color=colour, label=f"{r['profile']}")
        if r["derived_synced_at"]:
            d = r["derived_synced_at"]
            start = len(synced)
            right.step([synced[-1] if synced else 0, *d], range(start, start + len(d) + 1), where="post",
                       color=colour, linestyle="--", label=f"{r['profile']} (derived)")  # fmt: skip
    left.set_xscale("log")
    left.axvline(TARGET_P50_S, color="grey", linewidth=0.8, linestyle=":")
    left.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    left.set_xlabel("signup → Bubble record (s, log scale)")
    left.set_ylabel("share of signups")
    left.set_title("Signup-to-Bubble latency (CDF, all signups)")
    left.legend(loc="upper left", bbox_to_anchor=(0.24, 0.99))
    left.grid(True, which="both", alpha=0.3)
    right.set_xscale("symlog", linthresh=60, linscale=2)
    ticks = [t for t in (0, 15, 30, 45, 60, 120, 300, 600, 1800, 3600) if t <= right.get_xlim()[1]]
    right.set_xticks(ticks, [str(t) for t in ticks])
    right.set_xlabel("time since the first signup (s; linear to 60 s, log beyond)")
    right.set_ylabel("rows in Bubble")
    right.set_title("Rows synced over time")
    burst_at = settings["steady_signups"] / settings["arrival_rate"]
    right.axvline(burst_at, color="grey", linewidth=0.8, linestyle=":")
    right.annotate(" burst", (burst_at, 0), color="grey", va="bottom")
    right.legend(loc="upper left")
    right.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"bubble-sync on the local stack: Bubble double {settings['latency_ms']:g}–"
        f"{settings['latency_ms'] + settings['latency_jitter_ms']:g} ms,"
        f" {settings['rate_limit_per_minute']:g} requests/min;"
        f" {settings['steady_signups']} signups at {settings['arrival_rate']:g}/s then "
        f"{settings['burst_signups']} at once"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

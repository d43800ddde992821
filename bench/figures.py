"""From one profile's observations to its figures (`analyse`): throughput, latency percentiles, requests per
row, the function's costs, and for a profile with an outage what Bubble saw during it and how the queue
recovered; and the figures read across profiles' results (which kind a result is, ratios against the seed,
a plan's reachable rate). Every figure says whether it was measured or derived."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench import mapped_report
from bench.harness import PROCESSOR_JOB, RETRY_JOB, Observation, OutageWindow, parse_bubble_time
from bench.stats import request_kind, steady_throughput, summary

#: the targets results.md checks: throughput as a share of what is reachable, steady p50, requests per row
TARGET_RATE_SHARE = 0.90
TARGET_P50_S = 2.0
TARGET_REQUESTS_PER_ROW = 1.0


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
        with_unsynced = summary(list(measured.values()) + [math.inf] * len(unsynced_waits))
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
    kinds = Counter(request_kind(r) for r in obs.requests)
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
            "outage": obs.profile.outage,
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
            "measured_all": summary(list(measured.values())),
            "measured_steady": summary([v for k, v in measured.items() if k in steady]),
            "measured_burst": summary([v for k, v in measured.items() if k in burst]),
            "all_with_derived": summary(list(combined.values())) if cron_only else None,
            # percentiles that fall on a row never synced are null: "more than unsynced_waited_at_least_s"
            "all_with_unsynced": with_unsynced,
            "steady_with_derived": (
                summary([v for k, v in combined.items() if k in steady]) if cron_only else None
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
        "outage": outage_figures(obs, obs.outage) if obs.outage is not None else None,
        "queued_at_s": obs.burst_at - obs.started_at,
        "plan_per_minute": obs.profile.plan_per_minute,
        "backfill_rows": obs.profile.backfill_rows,
        "rate_limit_per_minute": s.rate_limit_per_minute,
        "ceiling": obs.ceiling,
        "function": function_figures(obs, synced),
        "mapped": mapped_report.figures(obs) if obs.mapped is not None else None,
    }


def function_figures(obs: Observation, synced: int) -> dict[str, Any]:
    """The function's side, from the host's log: invocations and their CPU time, and the runs' summaries
    (database round trips, Bubble requests, how they stopped), per synced row."""
    cpu = [i["cpu_ms"] for i in obs.invocations]
    trips = [r["db_round_trips"] for r in obs.run_summaries if r.get("db_round_trips") is not None]
    per_row = (lambda total: total / synced) if synced else (lambda total: None)
    return {
        "invocations": len(cpu),
        "invocations_by_end": dict(Counter(i["end"] for i in obs.invocations)),
        "cpu_ms": sum(cpu),
        "cpu_ms_max": max(cpu, default=None),
        "cpu_ms_per_row": per_row(sum(cpu)),
        "runs": len(obs.run_summaries),
        "runs_by_stop": dict(Counter(str(r.get("stopped_by")) for r in obs.run_summaries)),
        "runs_invoked_by_runs": sum(int(r.get("runs_invoked", 0)) for r in obs.run_summaries),
        "runs_claiming_nothing": sum(1 for r in obs.run_summaries if r.get("claimed") == 0),
        "db_round_trips": sum(trips),
        "db_round_trips_per_row": per_row(sum(trips)),
    }


# -- a profile with an outage ------------------------------------------------------------------------------


def request_time(request: dict[str, Any]) -> float:
    """When the double answered the request (its log's `time`), epoch seconds."""
    return parse_bubble_time(request["time"])


def is_failed_for_good(row: dict[str, Any]) -> bool:
    """The seed's retry condition never takes it again (bubble_sync.is_due)."""
    return bool(row["status"] == "failed" and row["retry_count"] >= row["max_retries"])


def queue_empty_at(rows: list[dict[str, Any]]) -> float | None:
    """When the last row became synced or failed for good, if every row did: from then on nothing was
    pending, processing or waiting to be retried. None while any row still was."""
    settled = []
    for row in rows:
        if row["status"] == "completed":
            settled.append(row["completed_at"])
        elif is_failed_for_good(row):
            settled.append(row["updated_at"])
        else:
            return None
    return max(settled, default=None)


def outage_figures(obs: Observation, window: OutageWindow) -> dict[str, Any]:
    """What Bubble saw during the outage and how the queue recovered after it. Requests are placed in time by
    when the double answered them: a request answered within the window got the outage's 503."""
    began, ended = window.began_at, window.ended_at
    timed = [(request_time(r), r) for r in obs.requests]
    during = [r for at, r in timed if began <= at < ended]
    after = [r for at, r in timed if at >= ended]
    minutes = (ended - began) / 60.0
    empty_at = queue_empty_at(obs.rows)
    synced_at = list(obs.bubble_created.values())
    by_status: dict[str, list[float]] = {}
    for at, r in timed:
        by_status.setdefault(str(r["status"]), []).append(round(at - obs.started_at, 3))
    return {
        "planned_seconds": window.planned_seconds,
        "began_s": round(began - obs.started_at, 3),  # since the first signup
        "ended_s": round(ended - obs.started_at, 3),
        "seconds": round(ended - began, 3),
        "rows_synced_before": sum(1 for at in synced_at if at < began),
        "rows_synced_during": sum(1 for at in synced_at if began <= at < ended),
        "signups_during": sum(1 for row in obs.rows if began <= row["created_at"] < ended),
        "failed_for_good": sum(1 for row in obs.rows if is_failed_for_good(row)),
        "requests_during": len(during),
        "requests_during_per_minute": len(during) / minutes if minutes > 0 else None,
        "requests_during_by_status": _count_by(during, lambda r: str(r["status"])),
        "requests_during_by_kind": _count_by(during, request_kind),
        "requests_after_recovery": len(after),
        "requests_after_recovery_by_kind": _count_by(after, request_kind),
        "status_429_after_recovery": sum(1 for r in after if r["status"] == 429),
        "status_429_total": sum(1 for r in obs.requests if r["status"] == 429),
        # measured on the rows' own timestamps; None: the queue was not empty when the run gave up
        "queue_empty_s": None if empty_at is None else round(empty_at - obs.started_at, 3),
        "recovery_to_empty_queue_s": None if empty_at is None else round(max(0.0, empty_at - ended), 3),
        "run_ended_s": round(obs.ended_at - obs.started_at, 3),
        "cron_runs_s": {
            job: [round(at - obs.started_at, 3) for at in obs.cron_runs.get(job, [])]
            for job in (PROCESSOR_JOB, RETRY_JOB)
        },
        # for the plot
        "signups_at_s": sorted(round(row["created_at"] - obs.started_at, 3) for row in obs.rows),
        "requests_at_s_by_status": by_status,
    }


def _count_by(requests: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> dict[str, int]:
    return dict(sorted(Counter(key(r) for r in requests).items()))


def _rows_per_tick(obs: Observation) -> float | None:
    if not obs.ticks:
        return None
    counts = []
    for i, tick in enumerate(obs.ticks):
        nxt = obs.ticks[i + 1] if i + 1 < len(obs.ticks) else math.inf
        counts.append(sum(1 for at in obs.bubble_created.values() if tick <= at < nxt))
    return sum(counts) / len(counts)


# -- across profiles' results ------------------------------------------------------------------------------


def is_plan_profile(result: dict[str, Any]) -> bool:
    """A profile at one of Bubble's plans (the backfill and mappings profiles are too)."""
    return result.get("plan_per_minute") is not None


def is_outage_profile(result: dict[str, Any]) -> bool:
    """A profile with Bubble down mid-run."""
    return bool(result["settings"].get("outage"))


def plan_ceiling_rps(r: dict[str, Any]) -> float:
    """What the profile could reach: its rate limit, or the double alone when that serves less."""
    limit: float = r["rate_limit_per_minute"] / 60
    ceiling = r["ceiling"]
    return limit if ceiling is None else min(limit, ceiling["requests_per_s"])


def ratios_against(results: list[dict[str, Any]], baseline: str) -> dict[str, dict[str, float | None]]:
    """Each other profile against `baseline`'s: throughput and requests per row as multiples of its, the
    latencies as how many times shorter; {} when `baseline` is not among `results`."""
    base = next((r for r in results if r["profile"] == baseline), None)
    if base is None:
        return {}

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    def p(r: dict[str, Any], which: str, q: str) -> float | None:
        lat = r["latency_s"]
        value: float | None
        if which == "all" and lat.get("all_with_unsynced"):
            value = lat["all_with_unsynced"][q]  # None when that percentile was never synced
        else:
            value = (lat[f"{which}_with_derived"] or lat[f"measured_{which}"])[q]
        return value

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

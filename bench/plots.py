"""The plots of `python -m bench`, drawn with matplotlib when it is installed: latency.png (latency CDF and
rows synced over time), plans.png (each plan's rate against its limit) and <profile>.png for a profile with
an outage (rows and Bubble's requests by answer around it). Each returns False without matplotlib."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.figures import TARGET_P50_S, plan_ceiling_rps
from bench.harness import PROCESSOR_JOB, RETRY_JOB


def _pyplot() -> Any | None:
    """matplotlib's pyplot drawing to files, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _workload(settings: dict[str, Any]) -> str:
    """The double's latency and rate limit and the signups, as the plots' titles say them."""
    latency = f"{settings['latency_ms']:g}–{settings['latency_ms'] + settings['latency_jitter_ms']:g} ms"
    return (
        f"Bubble double {latency} per request, {settings['rate_limit_per_minute']:g} requests/min;"
        f" {settings['steady_signups']} signups at {settings['arrival_rate']:g}/s then"
        f" {settings['burst_signups']} at once"
    )


def _cdf_label(r: dict[str, Any], derived: bool) -> str:
    if derived:
        return f"{r['profile']} (measured + derived)"
    if r["synced_measured"] < r["signups"]:
        return f"{r['profile']} ({r['synced_measured']}/{r['signups']} synced)"
    profile: str = r["profile"]
    return profile


def plot(path: Path, results: list[dict[str, Any]], settings: dict[str, Any]) -> bool:
    """Latency CDF and rows synced over time, per profile. False when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
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
    fig.suptitle(f"bubble-sync on the local stack: {_workload(settings)}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_plans(path: Path, results: list[dict[str, Any]]) -> bool:
    """Bubble's plans: each plan's limit, what the double alone served and what ours synced (bars), and the
    rows synced over time after queueing, plans and backfill alike. False when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    plans = [r for r in results if r["backfill_rows"] is None]
    x = range(len(plans))
    width = 0.27
    bars = (
        ("rate limit", "tab:grey", [r["rate_limit_per_minute"] / 60 for r in plans]),
        ("Bubble double alone", "tab:orange", [(r["ceiling"] or {}).get("requests_per_s", 0) for r in plans]),
        ("bubble-sync (rows/s)", "tab:blue", [r["throughput_rows_per_s"] or 0 for r in plans]),
    )
    for i, (label, colour, values) in enumerate(bars):
        left.bar([p + (i - 1) * width for p in x], values, width, label=label, color=colour)
    for p, r in zip(x, plans, strict=True):
        tp = r["throughput_rows_per_s"]
        if tp:
            share = 100 * tp / plan_ceiling_rps(r)
            left.annotate(f"{share:.0f} %", (p + width, tp), ha="center", va="bottom", fontsize=9)
    left.set_xticks(list(x), [f"{r['profile']}\n{r['rate_limit_per_minute']:,.0f}/min" for r in plans])
    left.set_ylabel("per second")
    left.set_title("Single creates at each plan's limit (% of the reachable)")
    left.legend(loc="upper left")
    left.grid(True, axis="y", alpha=0.3)
    for r in results:
        synced = [max(0.01, t - r["queued_at_s"]) for t in r["synced_at"]]
        n = r["signups"]
        right.step([0, *synced], [0, *((i + 1) / n for i in range(len(synced)))], where="post",
                   label=f"{r['profile']} ({n:,} rows)")  # fmt: skip
    right.set_xscale("log")
    right.set_xlabel("time since the rows were queued (s, log scale)")
    right.set_ylabel("share of rows in Bubble")
    right.set_title("Rows synced over time")
    right.legend(loc="upper left")
    right.grid(True, which="both", alpha=0.3)
    fig.suptitle("bubble-sync at Bubble's plans on the local stack (Bubble double 100–200 ms per request)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# the outage plot: stacked request rates by status; anything else (201, 200, 404 of a lookup...) by class
_REQUEST_CLASSES = (("2xx", "tab:green"), ("503", "tab:red"), ("429", "tab:orange"), ("other", "tab:grey"))


def _request_class(status: str) -> str:
    if status.startswith("2"):
        return "2xx"
    return status if status in ("503", "429") else "other"


def _requests_per_second(o: dict[str, Any], bin_s: float, n_bins: int) -> dict[str, list[float]]:
    rates = {name: [0.0] * n_bins for name, _ in _REQUEST_CLASSES}
    for status, times in o["requests_at_s_by_status"].items():
        series = rates[_request_class(status)]
        for t in times:
            series[min(n_bins - 1, max(0, int(t // bin_s)))] += 1.0 / bin_s
    return rates


def _mark_outage_and_jobs(ax: Any, o: dict[str, Any], *, legend: bool) -> None:
    """The outage shaded, the cron jobs' runs and the moment the queue was empty; in the legend once."""

    def label(text: str, first: bool = True) -> str | None:
        return text if legend and first else None

    ax.axvspan(o["began_s"], o["ended_s"], color="tab:red", alpha=0.12, label=label("Bubble down (503)"))
    for i, t in enumerate(o["cron_runs_s"][RETRY_JOB]):
        ax.axvline(t, color="tab:purple", linewidth=0.9, linestyle="--", label=label("retry job", i == 0))
    for i, t in enumerate(o["cron_runs_s"][PROCESSOR_JOB]):
        ax.axvline(t, color="grey", linewidth=0.6, linestyle=":", label=label("processor job", i == 0))
    if o["queue_empty_s"] is not None:
        ax.axvline(o["queue_empty_s"], color="tab:green", linewidth=0.9, label=label("queue empty"))
    ax.grid(True, alpha=0.3)


def plot_outage(path: Path, result: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Rows signed up and synced over time above Bubble's requests per second by status, with the outage
    shaded and the cron jobs' runs marked. False when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return False
    o = result["outage"]
    every_request = [t for times in o["requests_at_s_by_status"].values() for t in times]
    end = 1.02 * max([o["run_ended_s"], *every_request, *result["synced_at"]])
    bin_s = float(max(1, math.ceil(end / 150)))  # about 150 bars, whatever the run's length
    n_bins = math.ceil(end / bin_s)

    fig, (rows_ax, requests_ax) = plt.subplots(
        2, 1, figsize=(12, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    signups, synced = o["signups_at_s"], result["synced_at"]
    rows_ax.step([0, *signups], range(len(signups) + 1), where="post", color="tab:grey", linestyle="--",
                 label="signups (rows queued)")  # fmt: skip
    rows_ax.step([0, *synced], range(len(synced) + 1), where="post", color="tab:blue", label="rows in Bubble")
    rates = _requests_per_second(o, bin_s, n_bins)
    bottom = [0.0] * n_bins
    lefts = [i * bin_s for i in range(n_bins)]
    for name, colour in _REQUEST_CLASSES:
        if any(rates[name]):
            requests_ax.bar(lefts, rates[name], width=bin_s, bottom=bottom, align="edge", color=colour,
                            label=name, linewidth=0)  # fmt: skip
            bottom = [b + r for b, r in zip(bottom, rates[name], strict=True)]
    for ax in (rows_ax, requests_ax):
        _mark_outage_and_jobs(ax, o, legend=ax is rows_ax)
    rows_ax.set_ylabel("rows")
    rows_ax.set_title("Rows signed up and synced to Bubble")
    rows_ax.legend(loc="center")  # the middle is the outage and the wait after it: no curve climbs there
    requests_ax.set_ylabel(f"requests per second ({bin_s:g} s bins)")
    requests_ax.set_xlabel("time since the first signup (s)")
    requests_ax.set_title("Bubble requests by answer")
    requests_ax.legend(loc="upper center")
    requests_ax.set_xlim(0, end)
    recovery = o["recovery_to_empty_queue_s"]
    empty = "not reached" if recovery is None else f"{recovery:.0f} s after recovery"
    fig.suptitle(
        f"{result['profile']}: Bubble down for {o['seconds']:.0f} s from {o['began_s']:.0f} s,"
        f" {o['requests_during']} requests during it; queue empty {empty}\n{_workload(settings)}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

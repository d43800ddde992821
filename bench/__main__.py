"""`python -m bench [--signups N] [--profiles default,default-bulk,seed,...] [--out bench/out]`

Runs each profile on its own local stack, one after the other, and writes results.md, results.json,
latency.png, plans.png (the plan and backfill profiles) and, for the `outage` profile, outage.png to the
output directory (the tables also go to stdout; progress to stderr)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import report
from bench.harness import PROFILES, Settings, run_profile

DEFAULT_PROFILES = "default,default-bulk,seed,starter,growth,team,mappings,backfill"


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--signups", type=int, default=defaults.signups, help="signups per profile (N)")
    parser.add_argument(
        "--profiles",
        default=DEFAULT_PROFILES,
        help=f"comma-separated, from: {', '.join(PROFILES)} (default: {DEFAULT_PROFILES})",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--arrival-rate", type=float, default=defaults.arrival_rate, help="steady signups/s")
    parser.add_argument(
        "--steady-fraction", type=float, default=defaults.steady_fraction, help="share of N arriving steadily"
    )
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
    parser.add_argument("--latency-jitter-ms", type=float, default=defaults.latency_jitter_ms)
    parser.add_argument("--rate-limit-per-minute", type=float, default=defaults.rate_limit_per_minute)
    parser.add_argument("--rate-limit-burst", type=float, default=defaults.rate_limit_burst)
    parser.add_argument(
        "--cron-ticks",
        type=int,
        default=defaults.cron_ticks,
        help="real pg_cron minute ticks to observe for cron-only profiles (0: derive everything)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=defaults.drain_timeout_s,
        help="seconds after the last signup to wait for every row to be synced",
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=defaults.outage_seconds,
        help="the outage profile: how long Bubble answers 503 to every request",
    )
    parser.add_argument(
        "--recovery-timeout",
        type=float,
        default=defaults.recovery_timeout_s,
        help="the outage profile: seconds after the outage to wait for an empty queue",
    )
    parser.add_argument(
        "--functions-dir", help="serve this copy of supabase/functions instead (to measure a change)"
    )
    parser.add_argument(
        "--function-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment variable for the function (repeatable), e.g. BUBBLE_SYNC_CONCURRENCY=10",
    )
    parser.add_argument(
        "--bulk-ms-per-line",
        type=float,
        default=defaults.bulk_ms_per_line,
        help="how long the double's bulk calls take per line",
    )
    parser.add_argument(
        "--plan-burst-seconds",
        type=float,
        default=defaults.plan_burst_seconds,
        help="plan profiles: the burst is this many seconds of the plan's limit",
    )
    parser.add_argument(
        "--ceiling-seconds",
        type=float,
        default=defaults.ceiling_seconds,
        help="plan profiles: how long the double alone is measured afterwards",
    )
    parser.add_argument(
        "--backfill-rows", type=int, help="the backfill profile: this many existing records (default 100,000)"
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the plots")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the plots from the results.json in --out"
    )
    args = parser.parse_args(argv)
    if args.replot:
        document = json.loads((args.out / "results.json").read_text())
        drawn = draw_plots(args.out, document["profiles"], document["settings"])
        if drawn is None:
            parser.error("matplotlib is not installed (pip install -e '.[dev]')")
        print(f"bench: wrote {', '.join(str(args.out / f) for f in drawn)}", file=sys.stderr)
        return 0

    names = [name.strip() for name in args.profiles.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROFILES]
    if unknown or not names:
        parser.error(f"unknown profile(s) {unknown}; known: {', '.join(PROFILES)}")
    if args.signups < 1 or not 0 <= args.steady_fraction <= 1 or args.arrival_rate <= 0:
        parser.error("--signups must be >= 1, --steady-fraction in 0..1, --arrival-rate > 0")
    if args.outage_seconds <= 0 or args.recovery_timeout < 0:
        parser.error("--outage-seconds must be > 0 and --recovery-timeout >= 0")
    settings = Settings(
        signups=args.signups,
        steady_fraction=args.steady_fraction,
        arrival_rate=args.arrival_rate,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        rate_limit_per_minute=args.rate_limit_per_minute,
        rate_limit_burst=args.rate_limit_burst,
        drain_timeout_s=args.drain_timeout,
        cron_ticks=args.cron_ticks,
        outage_seconds=args.outage_seconds,
        recovery_timeout_s=args.recovery_timeout,
        bulk_ms_per_line=args.bulk_ms_per_line,
        plan_burst_seconds=args.plan_burst_seconds,
        ceiling_seconds=args.ceiling_seconds,
        backfill_rows=args.backfill_rows,
        functions_dir=args.functions_dir,
        function_env=dict(item.split("=", 1) for item in args.function_env),
    )
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    command = command.rstrip()

    results = []
    for name in names:
        observation = run_profile(PROFILES[name], settings)
        results.append(report.analyse(observation))

    n_steady = round(settings.signups * settings.steady_fraction)
    summary_settings = {
        **asdict(settings),
        "steady_signups": n_steady,
        "burst_signups": settings.signups - n_steady,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    table = report.markdown(results, summary_settings, command)
    (args.out / "results.md").write_text(table)
    report.write_json(args.out / "results.json", results, summary_settings, command)
    drawn = [] if args.no_plot else draw_plots(args.out, results, summary_settings)
    print(table)
    written = ["results.md", "results.json", *(drawn or [])]
    print(f"bench: wrote {', '.join(str(args.out / f) for f in written)}", file=sys.stderr)
    if drawn is None:
        print("bench: matplotlib is not installed; no plot (pip install -e '.[dev]')", file=sys.stderr)
    return 0


def draw_plots(out: Path, results: list[dict[str, Any]], settings: dict[str, Any]) -> list[str] | None:
    """latency.png for the profiles without an outage or a plan, plans.png for those with a plan,
    <profile>.png for each with an outage (outage.png); the names of the files drawn, or None when
    matplotlib is not installed."""
    drawn: list[str] = []
    throughput = [r for r in results if not report.is_outage_profile(r) and not report.is_plan_profile(r)]
    plans = [r for r in results if report.is_plan_profile(r)]
    if plans:
        if not report.plot_plans(out / "plans.png", plans):
            return None
        drawn.append("plans.png")
    if throughput:
        if not report.plot(out / "latency.png", throughput, settings):
            return None
        drawn.append("latency.png")
    for result in results:
        if report.is_outage_profile(result) and result["outage"] is not None:
            name = f"{result['profile']}.png"
            if not report.plot_outage(out / name, result, settings):
                return None
            drawn.append(name)
    return drawn


if __name__ == "__main__":
    sys.exit(main())

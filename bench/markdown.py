"""results.md: the throughput and latency table of the profiles without an outage or a plan, the plan table
(with the mappings profile's lines, bench/mapped_report.py's), then the outage table; each with what its
columns mean and the targets met or not. Renders analysed results (bench/figures.py); computes nothing new."""

from __future__ import annotations

from typing import Any

from bench import mapped_report
from bench.figures import (
    TARGET_P50_S,
    TARGET_RATE_SHARE,
    TARGET_REQUESTS_PER_ROW,
    is_outage_profile,
    is_plan_profile,
    plan_ceiling_rps,
    ratios_against,
)
from bench.harness import RETRY_JOB


def markdown(results: list[dict[str, Any]], settings: dict[str, Any], command: str) -> str:
    """results.md: the throughput and latency table of the profiles without an outage or a plan, the plan
    table and the mappings profile's lines, then the outage table."""
    rl = settings["rate_limit_per_minute"]
    lines = [
        f"Command: `{command}`",
        "",
        f"Bubble double: {settings['latency_ms']:g}–"
        f"{settings['latency_ms'] + settings['latency_jitter_ms']:g} ms per request,"
        f" rate limit {rl:g}/min (burst {settings['rate_limit_burst']:g}). Workload per profile:"
        f" {settings['steady_signups']} signups at {settings['arrival_rate']:g}/s, then"
        f" {settings['burst_signups']} in one transaction.",
    ]
    throughput = [r for r in results if not is_outage_profile(r) and not is_plan_profile(r)]
    outages = [r for r in results if is_outage_profile(r)]
    plans = [r for r in results if is_plan_profile(r)]
    if throughput:
        lines += _throughput_lines(throughput, rl)
    if plans:
        lines += _plan_lines(plans, settings)
        lines += mapped_report.markdown_lines(results)
    if outages:
        lines += _outage_lines(outages)
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def _throughput_lines(results: list[dict[str, Any]], rl: float) -> list[str]:
    lines = [
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
    return lines


def _plan_lines(results: list[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    burst = settings.get("plan_burst_seconds", 20.0)
    in_flight = settings.get("ceiling_concurrency", 200)
    lines = [
        "",
        "At Bubble's plans (every setting at its default but the rate limit):",
        "",
        "| profile | rows | rate limit | double alone | rows/s | share of the limit | share of the reachable "
        "| p50 / p99 | requests per row | DB round trips per row | CPU ms per row | invocations (most CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        tp = r["throughput_rows_per_s"]
        limit = r["rate_limit_per_minute"] / 60
        ceiling = r["ceiling"]
        reachable = plan_ceiling_rps(r)
        alone = "–" if ceiling is None else f"{ceiling['requests_per_s']:.0f}/s"
        # A backfill's bulk calls carry many rows each: its share is that of the requests it sent.
        per_row = r["requests_per_synced_row"] if r["backfill_rows"] is not None else 1.0

        def shares(of: float, tp: float | None = tp, per_row: float | None = per_row) -> str:
            if tp is None or per_row is None:
                return "–"
            return f"{100 * tp * per_row / of:.0f} %" + (" (requests)" if per_row != 1.0 else "")

        lat = r["latency_s"]["all_with_unsynced"] or r["latency_s"]["measured_all"]
        f = r["function"]
        lines.append(
            f"| `{r['profile']}` | {r['synced_measured']:,}/{r['signups']:,}"
            f"{' (timed out)' if r['timed_out'] else ''} | {r['rate_limit_per_minute']:,.0f}/min"
            f" ({limit:.0f}/s) | {alone} |"
            f" {_fmt(tp, 1)} | {shares(limit)} | {shares(reachable)} |"
            f" {_fmt(lat['p50'], 1, ' s')} / {_fmt(lat['p99'], 1, ' s')} |"
            f" {_fmt(r['requests_per_synced_row'], 3)} | {_fmt(f['db_round_trips_per_row'], 3)} |"
            f" {_fmt(f['cpu_ms_per_row'], 3)} | {f['invocations']} ({_fmt(f['cpu_ms_max'], 0, ' ms')}) |"
        )
    lines += [
        "",
        f"Rows: synced / queued; a plan profile queues one burst of {burst:g} s at its limit, the backfill"
        " profile runs `python -m components backfill` over that many existing users. Double alone: what"
        f" the Bubble double served by itself on this machine right after the profile ({in_flight} single"
        " creates in flight, its rate limit off). Share of the reachable: rows/s divided by the lower of"
        " the limit and the double alone. p50 / p99: from queueing to the Bubble record's `Created Date`."
        " Requests per row: every `/obj` request the double logged, per row stored (bulk creates carry"
        " many rows a request). DB round trips: the statements the runs sent (their summaries'"
        " `db_round_trips`). CPU ms: the function's CPU time as the host measured each invocation"
        " (`invocation ... cpu_ms=`), per row synced; in brackets the most one invocation used (Supabase"
        " stops one at 2,000 ms).",
    ]
    for r in results:
        f = r["function"]
        stops = ", ".join(f"{k}: {v}" for k, v in sorted(f["runs_by_stop"].items()))
        ends = ", ".join(f"{k}: {v}" for k, v in sorted(f["invocations_by_end"].items()))
        lines.append(
            f"\n`{r['profile']}`: {f['runs']} runs ({stops}); {f['runs_invoked_by_runs']} of them invoked by"
            f" other runs (parallel runs and successors)"
            + (f", {f['runs_claiming_nothing']} claimed nothing" if f.get("runs_claiming_nothing") else "")
            + f"; invocations by end: {ends}."
        )
    lines += ["", "Targets:", ""]
    for r in results:
        tp = r["throughput_rows_per_s"]
        if r["backfill_rows"] is not None or tp is None:
            continue
        share = tp / plan_ceiling_rps(r)
        ok = share >= TARGET_RATE_SHARE
        of = (
            "the limit"
            if r["ceiling"] is None or plan_ceiling_rps(r) == r["rate_limit_per_minute"] / 60
            else ("what the double alone serves")
        )
        lines.append(f"- `{r['profile']}`: {100 * share:.0f} % of {of} {'≥' if ok else '<'} 90 % ({_ok(ok)})")
    return lines


def _outage_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| profile | Bubble down | synced | failed for good | duplicates in Bubble "
        "| requests during the outage | per minute | recovery → empty queue | 429s after recovery (all) "
        "| Bubble requests per row |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        o = r["outage"]
        if o is None:
            lines.append(f"| `{r['profile']}` | never began (the run ended first) | | | | | | | | |")
            continue
        statuses = ", ".join(f"{status}: {n}" for status, n in o["requests_during_by_status"].items())
        recovery = o["recovery_to_empty_queue_s"]
        recovery_text = (
            f"> {o['run_ended_s'] - o['ended_s']:.0f} s (not empty)"
            if recovery is None
            else f"{recovery:.0f} s"
        )
        lines.append(
            f"| `{r['profile']}` | {_fmt(o['seconds'], 1, ' s')} from {_fmt(o['began_s'], 1, ' s')} |"
            f" {r['synced_measured']}/{r['signups']} | {o['failed_for_good']} | {r['duplicates_in_bubble']} |"
            f" {o['requests_during']}{f' ({statuses})' if statuses else ''} |"
            f" {_fmt(o['requests_during_per_minute'], 1)} | {recovery_text} |"
            f" {o['status_429_after_recovery']} ({o['status_429_total']}) |"
            f" {_fmt(r['requests_per_synced_row'])} |"
        )
    lines += [
        "",
        "Bubble down: every `/obj` request answered 503 for that long, from that many seconds after the"
        " first signup (halfway through the steady signups). Requests during the outage: every `/obj` request"
        " the double answered within the window, by status, and per minute of outage. Recovery → empty queue:"
        " from the end of the outage until the last row was synced or failed for good (the rows' own"
        " timestamps), so nothing was pending, processing or waiting for a retry; *not empty* when the run"
        " gave up first. 429s after recovery: rate-limit answers after the end of the outage (in brackets:"
        " over the whole run). Bubble requests per row: every `/obj` request of the run divided by the rows"
        " Bubble stored.",
    ]
    for r in results:
        o = r["outage"]
        if o is None:
            continue
        retry_runs = ", ".join(f"{t:.0f} s" for t in o["cron_runs_s"][RETRY_JOB]) or "none"
        after = ", ".join(f"{kind}: {n}" for kind, n in o["requests_after_recovery_by_kind"].items())
        lines.append(
            f"\n`{r['profile']}`: {o['rows_synced_before']} rows synced before the outage,"
            f" {o['rows_synced_during']} during it; {o['signups_during']} signups arrived during it."
            f" {o['requests_after_recovery']} requests after recovery{f' ({after})' if after else ''}."
            f" Runs of the retry job (seconds since the first signup): {retry_runs}."
        )
    return lines


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

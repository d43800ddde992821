"""`python -m bench.reconcile`: `reconcile` over 100,000 records (issue 19, item 5), on a local stack of
its own (bench/stack.py's: PostgreSQL with the real pg_cron, the pg_net worker double, the Bubble double,
the Deno function host; the stack's function paced at --shared-per-minute).

Two mapped tables: `users` (public.profiles -> Bubble user, --records of them, their things put into the
double as a sync leaves them, with a few differences planted: stale, missing, orphaned, one duplicated) and
`messages` (public.messages -> Bubble message, the live sync's traffic). Three measurements, each running the
command itself (`python -m components reconcile --mapping users --json`, a process of its own, as an
operator runs it):

  full    a whole run at --plan-per-minute (Growth's 25,000 by default; reconcile takes its 20 %): records/s,
          Bubble requests per record (target <= 0.011: a scan reads 100 things a request), what it found
  where   the same records selected with --where (looked up, 100 keys a search)
  shared  with the sync busy: signups queued at once, then, once the sync has run alone for
          --baseline-seconds, a whole reconcile; the double's log says what each got of the stack's limit
          (--shared-per-minute) while both ran (target: the sync keeps >= 75 %), and the 429s

Writes the tables to --out (bench/results-reconcile.md) and prints them. About 10 minutes with the defaults,
most of it the double's own scan: it finds a type's keyed things without an index, about 0.1 s a page of
100 with 100,000 things (the answer times are measured and shown).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.observation import parse_bubble_time
from bench.profiles import Profile, Settings
from bench.stack import BUBBLE_PREFIX, REPO_ROOT, local_stack
from components.mapping_config import parse_mappings
from components.mappings import mappings_json
from components.operator.queries import one_row
from components.sql.plan import mapping_unit
from devstack.bubble_double import BubbleDouble

TABLES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  email      text not null,
  first_name text
);
create table public.messages (
  id   bigint generated always as identity primary key,
  body text not null
);
"""
MAPPINGS = [
    {"name": "users", "table": "public.profiles", "dataType": "user",
     "fields": {"email": "email", "first_name": "First Name"}},
    {"name": "messages", "table": "public.messages", "dataType": "message", "fields": {"body": "Body"}},
]  # fmt: skip
ENV = "test"
#: differences planted among the users: stale, missing and orphaned each, and one duplicated record
PLANTED = 20
#: reconcileRatePercent's default: what the command takes with --database-url alone
SHARE_PERCENT = 20
PROFILE = Profile(
    "reconcile", "python -m components reconcile, alone and beside a busy sync", "immediate", 50, 0
)


@dataclass(frozen=True)
class Options:
    records: int = 100_000
    plan_per_minute: int = 25_000
    shared_per_minute: int = 1_500
    baseline_seconds: float = 20.0
    latency_ms: float = 100.0
    latency_jitter_ms: float = 100.0


def _log(message: str) -> None:
    print(f"bench.reconcile: {message}", file=sys.stderr, flush=True)


def _mappings() -> str:
    mappings, problems = parse_mappings(MAPPINGS, "supabase_id")
    assert problems == [], problems
    return mappings_json(mappings)


def seed(dsn: str, double: BubbleDouble, records: int) -> dict[str, int]:
    """The tables, `records` users in Supabase and as things in Bubble, the differences planted, then the
    mappings' rows and triggers (so nothing of this is queued)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLES)
        rows = conn.execute(
            "insert into public.profiles (email, first_name)"
            " select 'u' || i || '@bench.example', 'Ada ' || i from generate_series(1, %s) i"
            " returning id::text, email, first_name",
            (records,),
        ).fetchall()
        mappings, _ = parse_mappings(MAPPINGS, "supabase_id")
        for mapping in mappings:
            unit = mapping_unit(mapping, mappings)
            with conn.transaction():
                conn.execute(unit.record.apply_sql)
                conn.execute(unit.trigger.apply_sql)
    ids = {}
    for record_id, email, first_name in rows:
        ids[record_id] = double.add(
            "user",
            {"email": email, "First Name": first_name, "supabase_id": f"profiles:{record_id}"},
            env=ENV,
        )
    things = list(ids.values())
    for thing in things[:PLANTED]:
        double.modify("user", thing, {"First Name": "Edited in Bubble"}, env=ENV)
    for thing in things[PLANTED : 2 * PLANTED]:
        double.delete("user", thing, env=ENV)
    for i in range(PLANTED):
        double.add(
            "user", {"email": f"orphan{i}@bench.example", "supabase_id": f"profiles:{uuid.uuid4()}"}, env=ENV
        )
    double.add("user", {"email": "twin@bench.example", "supabase_id": f"profiles:{rows[-1][0]}"}, env=ENV)
    return {"stale": PLANTED, "missing": PLANTED, "orphaned": PLANTED, "duplicated": 1}


def run_command(dsn: str, double: BubbleDouble, token: str, per_minute: int, *extra: str) -> dict[str, Any]:
    """`python -m components reconcile --mapping users --json` as an operator runs it; its document, and the
    wall-clock seconds around it (epoch)."""
    command = [
        sys.executable, "-m", "components", "reconcile", "--database-url", dsn,
        "--bubble-url", double.url.rstrip("/") + BUBBLE_PREFIX, "--rate-limit-per-minute", str(per_minute),
        "--mapping", "users", "--json", "--progress-interval", "10", *extra,
    ]  # fmt: skip
    started = time.time()
    done = subprocess.run(
        command, cwd=REPO_ROOT, env={**os.environ, "BUBBLE_API_TOKEN": token}, stdout=subprocess.PIPE,
        text=True, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise RuntimeError(f"reconcile exited {done.returncode}")
    return {
        **json.loads(done.stdout),
        "started_at": started,
        "ended_at": time.time(),
        "exit": done.returncode,
    }


def shared_run(stack: Any, options: Options) -> dict[str, Any]:
    """The sync with a backlog of signups: alone for a while, then beside a reconcile that looks the records
    up (`--where true`: cheap answers from the double), then beside a whole one (a scan: the double's slowest
    answers, under its lock)."""
    double: BubbleDouble = stack.double
    limit = options.shared_per_minute
    double.configure(rate_limit_per_minute=limit, rate_limit_burst=limit / 60)
    reconcile_seconds = options.records / 100 / (limit * SHARE_PERCENT / 100 / 60)
    # enough for the sync to stay busy past both reconciles' end, even at the whole limit
    messages = math.ceil(limit / 60 * (options.baseline_seconds + reconcile_seconds * 3))
    _log(f"shared: {messages:,} signups queued at once; the sync alone for {options.baseline_seconds:g} s")
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        conn.execute(
            "insert into public.messages (body) select 'hello ' || i from generate_series(1, %s) i",
            (messages,),
        )
    queued_at = time.time()
    time.sleep(options.baseline_seconds)
    runs = {}
    for name, extra in (("look_up", ("--where", "true")), ("scan", ())):
        _log(f"shared: a reconcile beside the sync ({name})")
        runs[name] = run_command(stack.dsn, double, stack.bubble_token, limit, *extra)
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        unfinished = (
            "select count(*) from public.sync_queue where table_name = 'messages' and status <> 'completed'"
        )
        waiting = one_row(conn.execute(unfinished))[0]
    log = [
        e
        for e in double.requests()
        if e["type"] in ("user", "message") and parse_bubble_time(e["time"]) >= queued_at
    ]
    syncing = [e for e in log if e["type"] == "message"]
    alone_from = parse_bubble_time(syncing[0]["time"]) + 2  # its first second or two is the runs fanning out
    windows = {"alone": _window(log, alone_from, runs["look_up"]["started_at"], limit)}
    for name, document in runs.items():
        started, ended = document["started_at"], document["ended_at"]
        mine = [e for e in log if e["type"] == "user" and started <= parse_bubble_time(e["time"]) <= ended]
        windows[name] = _window(
            log, parse_bubble_time(mine[0]["time"]), parse_bubble_time(mine[-1]["time"]), limit
        )
    return {
        "limit_per_minute": limit,
        "messages_queued": messages,
        "messages_waiting_after": waiting,
        "windows": windows,
        "reconciles": {name: _figures(document) for name, document in runs.items()},
    }


def _window(log: Sequence[dict[str, Any]], start: float, end: float, limit: int) -> dict[str, Any]:
    """What each sent between `start` and `end`: per minute, its share of the limit, its 429s, and the
    double's median answer time to it (ms)."""
    inside = [e for e in log if start <= parse_bubble_time(e["time"]) < end]
    minutes = max(end - start, 1e-9) / 60
    by_type = {t: [e for e in inside if e["type"] == t] for t in ("message", "user")}
    return {
        "seconds": round(end - start, 1),
        **{
            name: {
                "per_minute": round(len(entries) / minutes),
                "share_of_limit": round(len(entries) / minutes / limit, 3),
                "answered_429": sum(1 for e in entries if e["status"] == 429),
                "answer_ms": round(statistics.median(e["duration_ms"] for e in entries)) if entries else 0,
            }
            for name, entries in (("sync", by_type["message"]), ("reconcile", by_type["user"]))
        },
    }


def _figures(document: dict[str, Any]) -> dict[str, Any]:
    users = document["mappings"][0]
    seconds = document["ended_at"] - document["started_at"]
    return {
        "exit": document["exit"],
        "records": users["records"],
        "things": users["things"],
        "bubble_requests": document["bubble_requests"],
        "requests_per_record": document["bubble_requests_per_record"],
        "seconds": round(seconds, 1),
        "records_per_second": round(users["records"] / seconds),
        "found": {kind: users[kind]["count"] for kind in ("missing", "stale", "orphaned", "duplicated")},
        "rate_limited": document["rate_limited"],
    }


def page_times(double: BubbleDouble, since: float) -> dict[str, float]:
    """The double's answer times (ms, median) of reconcile's scan pages and `in` searches since `since`."""
    searches = [e for e in double.requests() if e["type"] == "user" and e["method"] == "GET"
                and parse_bubble_time(e["time"]) >= since and e["status"] == 200]  # fmt: skip
    scan = [e["duration_ms"] for e in searches if "is_not_empty" in e["query"]]
    look = [e["duration_ms"] for e in searches if "%22in%22" in e["query"]]
    return {
        "scan_page_ms": round(statistics.median(scan), 1) if scan else 0.0,
        "in_search_ms": round(statistics.median(look), 1) if look else 0.0,
    }


def _found(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in counts.items())


def report(
    options: Options,
    planted: dict[str, int],
    full: dict[str, Any],
    where: dict[str, Any],
    shared: dict[str, Any],
    times: dict[str, dict[str, float]],
) -> str:
    pace = options.plan_per_minute * SHARE_PERCENT / 100
    slowest = options.latency_ms + options.latency_jitter_ms
    lines = [
        "Command: `python -m bench.reconcile`",
        "",
        f"`python -m components reconcile --mapping users` over {options.records:,} records of "
        f"`public.profiles` and their things in the Bubble double ({options.latency_ms:g}–{slowest:g} ms an "
        f"answer), with {_found(planted)} planted; run as a process of its own.",
        "",
        "| run | rate limit (reconcile's 20 %) | records | Bubble requests | per record | seconds "
        "| records/s | found | the double's answer (median, with its latency) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    runs = (("whole (scan)", full, "scan_page_ms"), ("`--where true` (look up)", where, "in_search_ms"))
    for name, run, time_key in runs:
        lines.append(
            f"| {name} | {options.plan_per_minute:,}/min ({pace:,.0f}/min) | {run['records']:,} | "
            f"{run['bubble_requests']:,} | {run['requests_per_record']:.4f} | {run['seconds']:.1f} | "
            f"{run['records_per_second']:,} | {_found(run['found'])} | {times[name][time_key]:.0f} ms |"
        )
    lines += [
        "",
        "Target: at most 0.011 Bubble requests a record. A scan page is the double's slowest answer (it "
        "finds a type's keyed things without an index and sorts them by Created Date, holding its lock); at "
        f"the share's own pace ({pace:,.0f} requests/min) {options.records:,} records are "
        f"{options.records / 100 / (pace / 60):.0f} s of requests. With `--where`, orphans are not looked "
        "for.",
        "",
        f"With the sync busy: {shared['messages_queued']:,} signups queued at once "
        f"({shared['messages_waiting_after']:,} still waiting when the last reconcile ended), the stack "
        f"paced at {shared['limit_per_minute']:,}/min (the double's limit too); requests a minute by who "
        "sent them, and the double's median answer time to them:",
        "",
        "| window | seconds | sync | sync's share | reconcile | reconcile's share | 429s (sync / reconcile) "
        "| answer (sync / reconcile) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "alone": "sync alone",
        "look_up": "sync + reconcile `--where true`",
        "scan": "sync + whole reconcile",
    }
    for key, name in names.items():
        w = shared["windows"][key]
        sync, rec = w["sync"], w["reconcile"]
        lines.append(
            f"| {name} | {w['seconds']:g} | {sync['per_minute']:,}/min | {sync['share_of_limit']:.0%} | "
            f"{rec['per_minute']:,}/min | {rec['share_of_limit']:.0%} | "
            f"{sync['answered_429']} / {rec['answered_429']} | {sync['answer_ms']} / {rec['answer_ms']} ms |"
        )
    lines.append("")
    for key in ("look_up", "scan"):
        r = shared["reconciles"][key]
        kept = shared["windows"][key]["sync"]["share_of_limit"]
        lines.append(
            f"{names[key]}: {r['records']:,} records in {r['seconds']:.0f} s, {r['bubble_requests']:,} "
            f"requests ({r['requests_per_record']:.4f} a record), found {_found(r['found'])}; the sync kept "
            f"{kept:.0%} of the limit (target: at least 75 %: {'met' if kept >= 0.75 else 'NOT met'})."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=defaults.records)
    parser.add_argument("--plan-per-minute", type=int, default=defaults.plan_per_minute,
                        help="the rate limit of the runs alone (reconcile takes 20 %% of it)")  # fmt: skip
    parser.add_argument("--shared-per-minute", type=int, default=defaults.shared_per_minute,
                        help="the stack's (and the double's) limit while the sync is busy")  # fmt: skip
    parser.add_argument("--baseline-seconds", type=float, default=defaults.baseline_seconds)
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
    parser.add_argument("--latency-jitter-ms", type=float, default=defaults.latency_jitter_ms)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results-reconcile.md")
    args = parser.parse_args(argv)
    options = Options(
        args.records, args.plan_per_minute, args.shared_per_minute, args.baseline_seconds,
        args.latency_ms, args.latency_jitter_ms,
    )  # fmt: skip
    settings = Settings(
        rate_limit_per_minute=options.shared_per_minute, rate_limit_burst=options.shared_per_minute / 60,
        latency_ms=options.latency_ms, latency_jitter_ms=options.latency_jitter_ms,
        function_env={"BUBBLE_SYNC_MAPPINGS": _mappings()},
    )  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="bench-reconcile-") as workdir,
        local_stack(PROFILE, settings, Path(workdir)) as stack,
    ):
        _log(f"seeding {options.records:,} users and their things")
        planted = seed(stack.dsn, stack.double, options.records)
        stack.double.configure(rate_limit_per_minute=options.plan_per_minute,
                               rate_limit_burst=options.plan_per_minute / 60)  # fmt: skip
        times: dict[str, dict[str, float]] = {}
        _log("a whole run")
        started = time.time()
        full = _figures(run_command(stack.dsn, stack.double, stack.bubble_token, options.plan_per_minute))
        times["whole (scan)"] = page_times(stack.double, started)
        _log("the same records by --where")
        started = time.time()
        where = _figures(run_command(stack.dsn, stack.double, stack.bubble_token, options.plan_per_minute,
                                     "--where", "true"))  # fmt: skip
        times["`--where true` (look up)"] = page_times(stack.double, started)
        shared = shared_run(stack, options)
    text = report(options, planted, full, where, shared, times)
    print(text, end="")
    args.out.write_text(text, encoding="utf-8")
    _log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

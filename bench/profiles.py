"""The benchmark's profiles (what stack and workload each measures) and the settings every run shares."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    dispatch_mode: str  # "immediate" (trigger + minute cron) or "cron" (minute cron only)
    batch_size: int
    concurrency: int
    bulk_create: bool = False
    # Ours is configured with the Bubble plan's rate limit (stack key bubbleRateLimitPerMinute = the double's
    # limit here) and spaces its requests at it; the seed's function knew no limit.
    paced: bool = True
    # The seed's function processed one batch per invocation; ours drains the queue unless given a limit. The
    # seed profile's cron job therefore asks for {"limit": batch_size}, as the seed's function did.
    rows_per_invocation: int | None = None
    # Bubble is down (the double answers 503 to every /obj request) for Settings.outage_seconds mid-run; the
    # run then waits for the queue to empty (Settings.recovery_timeout_s after the outage at most).
    outage: bool = False
    # A Bubble plan's limit: the stack's bubbleRateLimitPerMinute and the double's, every other setting at its
    # default. The workload is one burst of Settings.plan_burst_seconds at that rate; afterwards the double
    # alone is measured (what it serves without the function: the machine's ceiling, Settings.ceiling_*).
    plan_per_minute: float | None = None
    # The workload is `python -m components backfill` of this many existing records of public.profiles.
    backfill_rows: int | None = None
    # The stack has bench/mapped_app.py's mappings (three tables, three Bubble data types, the double told
    # their schema); the workload and its checks are bench/mapped.py's.
    mapped: bool = False


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "default",
            "ours: immediate dispatch + minute cron, batch 50, concurrency following the rate (0)",
            "immediate",
            50,
            0,
        ),
        Profile(
            "default-bulk",
            "ours with bubbleBulkCreate: first attempts of creates go through Bubble's bulk endpoint",
            "immediate",
            50,
            5,
            bulk_create=True,
        ),
        Profile(
            "seed",
            "the seed's plan: minute cron only, 10 rows per invocation, 5 at a time",
            "cron",
            10,
            5,
            rows_per_invocation=10,
            paced=False,
        ),
        Profile(
            "starter",
            "ours at Bubble's Starter plan: rate limit 15,000/min, every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=15_000,
        ),
        Profile(
            "growth",
            "ours at Bubble's Growth plan: rate limit 25,000/min, every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=25_000,
        ),
        Profile(
            "team",
            "ours at Bubble's Team plan: rate limit 35,000/min, every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=35_000,
        ),
        Profile(
            "backfill",
            "python -m components backfill of 100,000 existing users at Growth's limit (bulk creates)",
            "immediate",
            50,
            0,
            plan_per_minute=25_000,
            backfill_rows=100_000,
        ),
        Profile(
            "mappings",
            "three mappings at Growth's limit: users (a row filter), listings (a reference to their host),"
            " messages (deletes); every other setting at its default",
            "immediate",
            50,
            0,
            plan_per_minute=25_000,
            mapped=True,
        ),
        Profile(
            "outage",
            "ours (as default) with Bubble down mid-run: every request answers 503 for --outage-seconds",
            "immediate",
            50,
            5,
            outage=True,
        ),
    )
}


@dataclass(frozen=True)
class Settings:
    signups: int = 300
    steady_fraction: float = 0.5  # the first part arrives at `arrival_rate`, the rest in one burst
    arrival_rate: float = 5.0  # signups per second during the steady part
    latency_ms: float = 100.0  # the double's base latency; plus uniform 0..jitter: 150 ms ± 50 on average
    latency_jitter_ms: float = 100.0
    rate_limit_per_minute: float = 600.0
    rate_limit_burst: float = 10.0
    drain_timeout_s: float = 120.0  # after the last signup, for profiles with immediate dispatch
    cron_ticks: int = 3  # processor ticks observed for cron-only profiles (0: none, all derived)
    outage_seconds: float = 180.0  # profiles with an outage: how long Bubble answers 503 to everything
    # profiles with an outage: how long after it the run waits for an empty queue. Rows that failed during
    # the outage come back through the retry job (every 5 minutes) once their growing wait has passed.
    recovery_timeout_s: float = 900.0
    # Bubble's bulk calls take this long per line (its manual gives only the bound: up to 4 minutes for 1,000
    # lines, which the function plans for; a call of 50 lines takes 1.25 s here, 1,000 lines 25 s).
    bulk_ms_per_line: float = 25.0
    plan_burst_seconds: float = 20.0  # plan profiles: the burst is this many seconds of the plan's limit
    ceiling_seconds: float = 10.0  # plan profiles: how long the double alone is driven afterwards
    ceiling_concurrency: int = 200  # ... with this many requests in flight (the function's most per run)
    backfill_timeout_s: float = 1800.0  # backfill profiles: after the rows are queued
    backfill_rows: int | None = None  # backfill profiles: this many records instead of the profile's
    seed: int = 7
    functions_dir: str | None = None  # another copy of supabase/functions (to measure a change)
    function_env: dict[str, str] = field(default_factory=dict)  # extra environment for the function


def profile_settings(profile: Profile, settings: Settings) -> Settings:
    """The settings a profile runs with: a plan's limit and its burst, or a backfill's rows, on top."""
    if profile.plan_per_minute is None:
        return settings
    per_minute = profile.plan_per_minute
    if profile.backfill_rows is not None:
        signups = settings.backfill_rows or profile.backfill_rows
    else:
        signups = max(1, round(per_minute / 60 * settings.plan_burst_seconds))
    return replace(
        settings,
        rate_limit_per_minute=per_minute,
        rate_limit_burst=per_minute / 60,  # a second's worth
        signups=signups,
        steady_fraction=0.0,
    )

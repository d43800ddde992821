"""One profile's run: its own local stack, the workload, and the raw observations (no statistics here).

The stack is devstack/assembly.py's LocalStack started directly (not `./dev up`, which has one fixed
configuration): a PostgreSQL cluster with the real pg_cron in a temporary directory, the pg_net worker double
as a process, the Bubble double in-process (latency and rate limit set), and `Pulumi.local.yaml` with the
profile's settings (dispatchMode, batchSize, concurrency, bubbleBulkCreate, bubbleRateLimitPerMinute) on top:
the Deno function host gets that stack's function settings (components.function_env) and its SQL is applied
with psql, as `./dev up --no-engine` does. A profile with an outage takes the double down (every /obj request
answers 503) for `Settings.outage_seconds` from halfway through the steady signups, on a timer beside the
workload. The `mappings` profile's stack has bench/mapped_app.py's mappings (its tables are made before the
stack SQL, which attaches the triggers to them, and the double is told the app's schema); its workload and
checks are bench/mapped.py's.

The parts, one module each: bench/profiles.py (profiles and settings), bench/stack.py (the stack),
bench/drive.py (the workload and what it observes, bench/observation.py), bench/outage.py (the outage's
timer), bench/ceiling.py (the double alone) and bench/host_log.py (the function host's log read back).
Their names stay importable from here.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench import mapped_app
from bench.ceiling import double_ceiling
from bench.drive import SOURCE_TABLE
from bench.drive import drive as drive_profile
from bench.host_log import read_host_log
from bench.mapped import drive as drive_mapped
from bench.observation import Observation, OutageWindow, parse_bubble_time
from bench.outage import OUTAGE_STATUS, ScheduledOutage
from bench.profiles import PROFILES, Profile, Settings, profile_settings
from bench.stack import BUBBLE_PREFIX, PROCESSOR_JOB, REPO_ROOT, RETRY_JOB, Stack, local_stack

__all__ = ["BUBBLE_PREFIX", "OUTAGE_STATUS", "PROCESSOR_JOB", "PROFILES", "REPO_ROOT", "RETRY_JOB",
           "SOURCE_TABLE", "Observation", "OutageWindow", "Profile", "ScheduledOutage", "Settings", "Stack",
           "double_ceiling", "local_stack", "parse_bubble_time", "profile_settings", "read_host_log",
           "run_profile"]  # fmt: skip


def run_profile(profile: Profile, settings: Settings, workdir: Path | None = None) -> Observation:
    own_workdir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bubble-sync-bench-"))
    settings = profile_settings(profile, settings)
    drive = drive_mapped if profile.mapped else drive_profile
    try:
        with local_stack(profile, settings, workdir) as stack:
            observation = drive(profile, settings, stack)
            if profile.plan_per_minute is not None and profile.backfill_rows is None:
                ceiling = (mapped_app.CEILING_TYPE, mapped_app.CEILING_FIELDS) if profile.mapped else None
                observation.ceiling = double_ceiling(stack.double, stack.bubble_token, settings, ceiling)
            observation.invocations, observation.run_summaries = read_host_log(stack.logs)
            return observation
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

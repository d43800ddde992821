"""One profile's local stack: devstack/assembly.py's LocalStack in a directory of the run's own, with the
Bubble double in-process (latency and rate limit set) and the profile as stack config on top of
Pulumi.local.yaml; the benchmark adds only what is its own (the mapped app's tables, the seed's job limit).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import mapped_app
from bench.profiles import Profile, Settings
from devstack.assembly import BUBBLE_DOUBLE_PREFIX, FUNCTIONS_DIR, REPO_ROOT, LocalStack
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster

__all__ = [
    "BUBBLE_PREFIX",
    "PROCESSOR_JOB",
    "REPO_ROOT",
    "RETRY_JOB",
    "Stack",
    "local_stack",
    "profile_config",
]

BUBBLE_PREFIX = BUBBLE_DOUBLE_PREFIX
PROCESSOR_JOB = "bubble-sync-processor"
RETRY_JOB = "bubble-sync-retry"


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Stack:
    dsn: str
    admin_dsn: str
    double: BubbleDouble
    bubble_token: str
    logs: Path


def profile_config(profile: Profile, settings: Settings) -> dict[str, str]:
    """The profile as stack config on top of Pulumi.local.yaml: it gets the SQL and the function settings
    such a stack gets (with mappings: their rows and triggers, and BUBBLE_SYNC_MAPPINGS)."""
    config = {
        "dispatchMode": profile.dispatch_mode,
        "batchSize": str(profile.batch_size),
        "concurrency": str(profile.concurrency),
        "bubbleBulkCreate": "true" if profile.bulk_create else "false",
        "bubbleRateLimitPerMinute": str(int(settings.rate_limit_per_minute)) if profile.paced else "0",
    }
    if profile.mapped:
        config["mappings"] = mapped_app.mappings_config()
    return config


@contextmanager
def local_stack(profile: Profile, settings: Settings, workdir: Path) -> Iterator[Stack]:
    state = workdir / profile.name
    state.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    app_knobs: dict[str, Any] = {"schema": mapped_app.SCHEMA} if profile.mapped else {}
    double = BubbleDouble(
        token=token,
        latency_ms=settings.latency_ms,
        latency_jitter_ms=settings.latency_jitter_ms,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        rate_limit_burst=settings.rate_limit_burst,
        bulk_ms_per_line=settings.bulk_ms_per_line,
        seed=settings.seed,
        **app_knobs,
    )
    with LocalStack(
        Cluster(state),
        state / "logs",
        service_role_key="sb_secret_bench_" + secrets.token_urlsafe(24),
        bubble_token=token,
        config=profile_config(profile, settings),
        functions_dir=Path(settings.functions_dir) if settings.functions_dir else FUNCTIONS_DIR,
    ) as stack:
        _log(f"[{profile.name}] starting PostgreSQL (pg_cron), pg_net worker, Bubble double, Deno host")
        stack.start(bubble=double, host_env=lambda: stack.function_host_env(settings.function_env))
        if profile.mapped:  # the stack's triggers go on the source tables: they must exist first
            with psycopg.connect(stack.dsn, autocommit=True) as conn:
                conn.execute(mapped_app.TABLES)
        stack.apply_sql()
        if profile.rows_per_invocation is not None:
            _limit_processor_job(stack.dsn, profile.rows_per_invocation)
        yield Stack(
            dsn=stack.dsn,
            admin_dsn=stack.cluster.admin_dsn("postgres"),
            double=double,
            bubble_token=token,
            logs=stack.logs,
        )


def _limit_processor_job(dsn: str, limit: int) -> None:
    """The seed's cron tick: the same request as invoke_bubble_sync_processor's, asking for one batch only."""
    command = (
        "select net.http_post("
        "url := (select rtrim(s.decrypted_secret, '/') from vault.decrypted_secrets s"
        " where s.name = 'supabase_url') || '/functions/v1/bubble_sync', "
        f"body := jsonb_build_object('action', 'process_queue_data_api', 'limit', {int(limit)}), "
        "headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || "
        "(select s.decrypted_secret from vault.decrypted_secrets s where s.name = 'service_role_key')), "
        "timeout_milliseconds := 5000)"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select cron.schedule(%s, '* * * * *', %s)", (PROCESSOR_JOB, command))

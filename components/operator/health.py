"""What a healthy pipeline is: the `Status` that `status` reads (components/operator/status.py), the cron jobs
that must be scheduled and active, and `_judge`, which turns what was read into problems (unhealthy, exit 1)
and warnings (printed, still healthy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from components.operator.formatting import _duration, _one_line

__all__ = ["EXIT_HEALTHY", "EXIT_UNHEALTHY", "EXPECTED_JOBS", "Status"]

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1

# The jobs every stack schedules (dispatchMode immediate or cron) and that must be active.
EXPECTED_JOBS = ("bubble-sync-processor", "bubble-sync-retry")


@dataclass
class Status:
    database: str
    checked_at: datetime
    health: dict[str, Any] | None = None
    cron_available: bool = True
    cron_jobs: list[dict[str, Any]] = field(default_factory=list)
    failing: list[dict[str, Any]] = field(default_factory=list)
    pg_net_available: bool = True
    pg_net_errors: list[dict[str, Any]] = field(default_factory=list)
    pg_net_error_count: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return EXIT_HEALTHY if self.healthy else EXIT_UNHEALTHY


def _judge(status: Status, *, max_pending_minutes: float, pg_net_minutes: int) -> None:
    h = status.health
    if h is not None:
        if h["permanently_failed_items"]:
            status.problems.append(
                f"{h['permanently_failed_items']} row(s) failed permanently (retry budget used up): read "
                f"'Failing rows', fix the cause, then `python -m components requeue`"
            )
        age = h["oldest_pending_age"]
        if age is not None and age > timedelta(minutes=max_pending_minutes):
            status.problems.append(
                f"the oldest pending row has waited {_duration(age)} (limit {max_pending_minutes:g} min): "
                f"the processor is not draining the queue"
            )
        if h["expired_leases"]:
            status.warnings.append(
                f"{h['expired_leases']} lease(s) expired (a worker died mid-batch); "
                "the next claim takes them back"
            )
        if h["retryable_items"]:
            status.warnings.append(f"{h['retryable_items']} row(s) failed and wait for a retry")
    if status.cron_available:
        by_name = {job["jobname"]: job for job in status.cron_jobs}
        for name in EXPECTED_JOBS:
            job = by_name.get(name)
            if job is None:
                status.problems.append(f"cron job {name} is not scheduled")
            elif not job["active"]:
                status.problems.append(f"cron job {name} is inactive")
        for job in status.cron_jobs:
            if job["last_status"] == "failed":
                status.problems.append(
                    f"the last run of cron job {job['jobname']} failed: {_one_line(job['last_message'])}"
                )
            elif job["failed_24h"]:
                status.warnings.append(
                    f"cron job {job['jobname']} failed {job['failed_24h']} time(s) in 24 h "
                    "(its last run succeeded)"
                )
    if status.pg_net_error_count:
        status.warnings.append(
            f"{status.pg_net_error_count} pg_net request(s) failed in the last {pg_net_minutes} min "
            f"(HTTP >= 400, timeout or network error)"
        )

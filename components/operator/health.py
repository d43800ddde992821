"""What a healthy pipeline is: the `Status` that `status` reads (components/operator/status.py), the cron jobs
that must be scheduled and active, and `judge`, which turns what was read into problems (unhealthy, exit 1),
a Bubble outage (exit 3: nothing of ours to fix, the rows wait) and warnings (printed, still healthy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from components.operator.formatting import format_duration, format_time, one_line

__all__ = [
    "EXIT_BUBBLE_UNAVAILABLE",
    "EXIT_HEALTHY",
    "EXIT_UNHEALTHY",
    "EXPECTED_JOBS",
    "Status",
    "health_time",
    "judge",
]

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
#: Bubble's circuit breaker is open and nothing else is wrong: an alert for Bubble, not for this pipeline
#: (2, cannot connect, is components.operator.connection's).
EXIT_BUBBLE_UNAVAILABLE = 3

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
    #: the queue per mapping, then per table no mapping names (components/operator/by_mapping.py)
    by_mapping: list[dict[str, Any]] = field(default_factory=list)
    pg_net_available: bool = True
    pg_net_errors: list[dict[str, Any]] = field(default_factory=list)
    pg_net_error_count: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: "Bubble unavailable since …" while Bubble's circuit breaker is open (bubble_sync.health())
    bubble_outage: str | None = None
    #: the stack the commands status names are for (`--stack`); None: `<stack>`
    stack: str | None = None
    #: the alerts' state (bubble_sync.alert_state) and whether Vault holds the webhook; None: not deployed
    alerts: dict[str, Any] | None = None
    alert_webhook: bool | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems and self.bubble_outage is None

    @property
    def exit_code(self) -> int:
        """1 when something of ours is wrong, even during a Bubble outage: that needs fixing either way."""
        if self.problems:
            return EXIT_UNHEALTHY
        return EXIT_BUBBLE_UNAVAILABLE if self.bubble_outage is not None else EXIT_HEALTHY


def judge(status: Status, *, max_pending_minutes: float, pg_net_minutes: int) -> None:
    """Judges what was read into `status`: adds its problems and warnings (and Bubble's outage)."""
    h = status.health
    if h is not None:
        # .get: a stack deployed before the circuit breaker has no such column
        since = h.get("bubble_unavailable_since")
        if since is not None:
            status.bubble_outage = (
                f"Bubble unavailable since {format_time(since)} "
                f"({format_duration(status.checked_at - since)}): its "
                f"transient failures in a row opened the circuit breaker, so only one probe request per "
                f"bubbleProbeSeconds goes out and rows wait, using no attempt; last error: "
                f"{one_line(h.get('bubble_last_error'))}"
            )
        if h["permanently_failed_items"]:
            status.problems.append(
                f"{h['permanently_failed_items']} row(s) failed permanently (retry budget used up): read "
                f"'Failing rows', fix the cause, then `python -m components requeue`"
            )
        age = h["oldest_pending_age"]
        if age is not None and age > timedelta(minutes=max_pending_minutes):
            limit = f"limit {max_pending_minutes:g} min"
            waited = f"the oldest pending row has waited {format_duration(age)} ({limit})"
            if status.bubble_outage is not None:
                status.warnings.append(f"{waited}: it waits for Bubble to answer again")
            else:
                status.problems.append(f"{waited}: the processor is not draining the queue")
        if h["expired_leases"]:
            status.warnings.append(
                f"{h['expired_leases']} lease(s) expired (a worker died mid-batch); "
                "the next claim takes them back"
            )
        if h["retryable_items"]:
            status.warnings.append(f"{h['retryable_items']} row(s) failed and wait for a retry")
        _judge_verifications(status, h.get("last_verifications") or [])
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
                    f"the last run of cron job {job['jobname']} failed: {one_line(job['last_message'])}"
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


def repair_command(stack: str | None, mapping: str) -> str:
    """The command that repairs what a verification of `mapping` found."""
    return f"python -m components reconcile --stack {stack or '<stack>'} --mapping {mapping} --repair"


def _judge_verifications(status: Status, verifications: list[dict[str, Any]]) -> None:
    """The last verification of each mapping (bubble_sync.health()): differences found are a problem naming
    the repair; one that could not check is a warning (the next run tries again)."""
    for v in verifications:
        found = {kind: v[kind] for kind in ("missing", "stale", "orphaned", "duplicated") if v.get(kind)}
        if v.get("error"):
            status.warnings.append(
                f"the last verification of mapping {v['mapping']} could not check: {one_line(v['error'])}"
            )
        elif found:
            counts = ", ".join(f"{n} {kind}" for kind, n in found.items())
            at = format_time(health_time(v["finished_at"]))
            status.problems.append(
                f"the verification of mapping {v['mapping']} at {at} found Bubble "
                f"out of sync ({counts} of {v['checked']} checked; see 'Verification'): run "
                f"`{repair_command(status.stack, v['mapping'])}`"
            )


def health_time(value: Any) -> datetime | None:
    """A time from health()'s JSON (ISO 8601 text), or as given."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    given: datetime | None = value
    return given

"""What one profile's run saw, as raw timestamps (no statistics here: bench/report.py makes them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.profiles import Profile, Settings


@dataclass(frozen=True)
class OutageWindow:
    """When Bubble was down (epoch seconds, as the harness switched the double)."""

    planned_seconds: float
    began_at: float
    ended_at: float


@dataclass
class Observation:
    """What one profile's run saw, as raw timestamps (epoch seconds, UTC)."""

    profile: Profile
    settings: Settings
    started_at: float
    steady_ids: list[str]
    burst_ids: list[str]
    burst_at: float
    inserts_done_at: float
    ended_at: float
    # record_id, status, created_at, completed_at, updated_at, retry_count, max_retries, error_message
    rows: list[dict[str, Any]]
    bubble_created: dict[str, float]  # record_id -> the double's Created Date
    requests: list[dict[str, Any]]  # the double's request log (/obj requests)
    bubble_records: int = 0  # records of our table in the double (more than bubble_created: duplicates)
    ticks: list[float] = field(default_factory=list)  # processor cron runs that started during the run
    timed_out: bool = False
    outage: OutageWindow | None = None
    cron_runs: dict[str, list[float]] = field(default_factory=dict)  # job name -> run starts during the run
    notes: list[str] = field(default_factory=list)
    # the function host's log: one entry per invocation (cpu_ms, wall_ms, status, end) and each run's summary
    invocations: list[dict[str, Any]] = field(default_factory=list)
    run_summaries: list[dict[str, Any]] = field(default_factory=list)
    ceiling: dict[str, Any] | None = None  # plan profiles: what the double alone served (double_ceiling)
    mapped: Any = None  # the mappings profile: bench.mapped.MappedRun


def parse_bubble_time(text: str) -> float:
    """The double's ISO times (a record's Created Date, a log entry's time) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()

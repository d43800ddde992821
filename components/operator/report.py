"""The output of `python -m components status`: `render_status`, the text report (one section per thing read,
then the warnings and the verdict), and `status_json`, the same as one JSON document (its `by_mapping`: the
queue per mapping, then per table no mapping names; intervals and latencies in seconds)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TextIO

from components.operator.formatting import format_count, format_duration, format_time, one_line, print_table
from components.operator.health import EXPECTED_JOBS, Status, health_time, repair_command

__all__ = ["render_status", "status_json"]


def render_status(status: Status, out: TextIO) -> None:
    print(f"bubble-sync status of {status.database} at {format_time(status.checked_at)}", file=out)
    print(file=out)
    h = status.health
    print("Health (select * from bubble_sync.health())", file=out)
    if h is None:
        print("  not available: bubble_sync.health() is missing", file=out)
    else:
        jobs = format_count(h["active_jobs"])
        lines = [
            ("active jobs", jobs, f"active cron jobs named bubble-sync% (expected {len(EXPECTED_JOBS)})"),
            ("pending", str(h["pending_items"]),
             f"oldest waiting {format_duration(h['oldest_pending_age'])}"),
            ("processing", str(h["processing_items"]), f"of which expired leases: {h['expired_leases']}"),
            ("failed retryable", str(h["retryable_items"]), "will be retried by bubble-sync-retry"),
            ("permanently failed", str(h["permanently_failed_items"]), "need a person (requeue after a fix)"),
            ("completed today", str(h["completed_today"]), "completed in the last 24 hours"),
            ("failed job runs 24h", format_count(h["failed_job_runs_24h"]), "failed runs of our cron jobs"),
            ("oldest pending age", format_duration(h["oldest_pending_age"]), ""),
            ("Bubble", "UNAVAILABLE" if h.get("bubble_unavailable_since") else "answering",
             f"circuit breaker open since {format_time(h['bubble_unavailable_since'])}"
             if h.get("bubble_unavailable_since") else "circuit breaker closed"),
        ]  # fmt: skip
        print_table([(a, b, c) for a, b, c in lines], out)
    print(file=out)

    _render_by_mapping(status, out)
    _render_verifications(status, out)
    _render_alerts(status, out)

    print("Cron jobs (cron.job, cron.job_run_details)", file=out)
    if not status.cron_available:
        print("  pg_cron is not installed", file=out)
    elif not status.cron_jobs:
        print("  none of ours is scheduled", file=out)
    else:
        rows: list[tuple[str, ...]] = [
            ("job", "schedule", "active", "last run", "last status", "runs/failed 24h")
        ]
        for job in status.cron_jobs:
            rows.append(
                (
                    job["jobname"],
                    job["schedule"],
                    "yes" if job["active"] else "NO",
                    format_time(job["last_start"]),
                    job["last_status"] or "never ran",
                    f"{job['runs_24h']}/{job['failed_24h']}",
                )
            )
        print_table(rows, out)
        for job in status.cron_jobs:
            if job["last_failure_at"]:
                print(
                    f"  last failure of {job['jobname']} at {format_time(job['last_failure_at'])}: "
                    f"{one_line(job['last_failure_message'])}",
                    file=out,
                )
    print(file=out)

    print("Failing rows (sync_queue status failed, by error)", file=out)
    if not status.failing:
        print("  none", file=out)
    else:
        rows = [("rows", "permanent", "last failed", "error", "records (table:record_id, newest first)")]
        for group in status.failing:
            rows.append(
                (
                    str(group["rows"]),
                    str(group["permanent"]),
                    format_time(group["last_failed_at"]),
                    one_line(group["error_message"], 70),
                    ", ".join(group["records"] or []),
                )
            )
        print_table(rows, out)
    print(file=out)

    print("pg_net errors (net._http_response: HTTP >= 400, timeout or error, newest first)", file=out)
    if not status.pg_net_available:
        print("  pg_net is not installed", file=out)
    elif not status.pg_net_errors:
        print("  none", file=out)
    else:
        rows = [("id", "at", "status", "error / response")]
        for r in status.pg_net_errors:
            detail = r["error_msg"] or ("timed out" if r["timed_out"] else r["content"])
            code = "-" if r["status_code"] is None else str(r["status_code"])
            rows.append((str(r["id"]), format_time(r["created"]), code, one_line(detail, 90)))
        print_table(rows, out)
        if status.pg_net_error_count > len(status.pg_net_errors):
            print(f"  ({status.pg_net_error_count} in all)", file=out)
    print(file=out)

    for warning in status.warnings:
        print(f"warning: {warning}", file=out)
    if status.healthy:
        print("HEALTHY (exit 0)", file=out)
    elif not status.problems:
        print(f"BUBBLE UNAVAILABLE (exit 3): {status.bubble_outage}", file=out)
    else:
        print(f"UNHEALTHY (exit 1): {len(status.problems)} problem(s)", file=out)
        for problem in status.problems:
            print(f"  - {problem}", file=out)
        if status.bubble_outage is not None:
            print(f"  and: {status.bubble_outage}", file=out)


def _render_by_mapping(status: Status, out: TextIO) -> None:
    print(
        "Queue by mapping (sync_queue rows by the mapping of their table_name, other tables by name; "
        "latency: queued to completed, changes of the last 24 h)",
        file=out,
    )
    if not status.by_mapping:
        print("  no mapping deployed and no row queued", file=out)
    else:
        rows = [("mapping", "table", "pending", "processing", "retrying", "failed for good", "completed 24h",
                 "oldest pending", "latency p50 / p95")]  # fmt: skip
        for e in status.by_mapping:
            rows.append(
                (
                    e["mapping"] or "-",
                    e["table_name"],
                    str(e["pending"]),
                    str(e["processing"]),
                    str(e["retrying"]),
                    str(e["failed_for_good"]),
                    str(e["completed_24h"]),
                    format_duration(e["oldest_pending_age"]),
                    f"{_seconds(e['latency_p50'])} / {_seconds(e['latency_p95'])}",
                )
            )
        print_table(rows, out)
    print(file=out)


def _render_verifications(status: Status, out: TextIO) -> None:
    print(
        "Verification (the last scheduled verification of each mapping, bubble_sync.verifications: a sample "
        "checked against Bubble)",
        file=out,
    )
    verifications = (status.health or {}).get("last_verifications") or []
    if not verifications:
        print(
            "  none yet (the job bubble_sync.verify runs on verifySchedule; none without mappings)", file=out
        )
    else:
        rows = [("mapping", "finished", "checked", "missing", "stale", "orphaned", "duplicated", "examples")]
        for v in verifications:
            if v.get("error"):
                rows.append((v["mapping"], format_time(health_time(v["finished_at"])), "-", "-", "-", "-",
                             "-", "could not check: " + one_line(v["error"], 70)))  # fmt: skip
                continue
            rows.append(
                (
                    v["mapping"],
                    format_time(health_time(v["finished_at"])),
                    *(str(v[k]) for k in ("checked", "missing", "stale", "orphaned", "duplicated")),
                    _examples(v.get("examples") or {}),
                )
            )
        print_table(rows, out)
        for v in verifications:
            if not v.get("error") and any(v[k] for k in ("missing", "stale", "orphaned", "duplicated")):
                print(f"  repair {v['mapping']}: {repair_command(status.stack, v['mapping'])}", file=out)
    print(file=out)


def _examples(examples: Mapping[str, Any]) -> str:
    """Up to five record ids of each kind, and the stale fields: ids and field names, never a value."""
    parts = [f"{kind}: {', '.join(examples[kind])}" for kind in ("missing", "stale", "orphaned", "duplicated")
             if examples.get(kind)]  # fmt: skip
    if examples.get("stale_fields"):
        parts.append(f"stale fields: {', '.join(examples['stale_fields'])}")
    return one_line("; ".join(parts), 110) or "-"


def _render_alerts(status: Status, out: TextIO) -> None:
    print("Alerts (bubble_sync.alert_state; posted by the job bubble_sync.alerts when what is wrong changes)",
          file=out)  # fmt: skip
    a = status.alerts
    if a is None:
        print("  not deployed in this database", file=out)
        print(file=out)
        return
    webhook = {True: "Vault secret alert_webhook_url (alertWebhookUrl)", False: "none: nothing is posted",
               None: "unknown"}[status.alert_webhook]  # fmt: skip
    causes = ", ".join(c["cause"] for c in a["causes"]) or "none"
    announced = ", ".join(c["cause"] for c in a["announced"]) or "recovered or nothing"
    lines = [
        ("webhook", webhook),
        ("causes now",
         f"{causes} (since {format_time(a['changed_at'])}, evaluated {format_time(a['evaluated_at'])})"
         if a["evaluated_at"] else "not evaluated yet (the job bubble_sync.alerts runs every minute)"),
        ("last message",
         f"{announced} at {format_time(a['announced_at'])}, HTTP {format_count(a['announced_status'])}"
         if a["announced_at"] else "none posted"),
    ]  # fmt: skip
    print_table(lines, out)
    print(file=out)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 60 else format_duration(timedelta(seconds=value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def status_json(status: Status) -> str:
    """Intervals in seconds, times in ISO 8601."""
    document = {
        "database": status.database,
        "checked_at": status.checked_at,
        "healthy": status.healthy,
        "exit_code": status.exit_code,
        "problems": status.problems,
        "warnings": status.warnings,
        "bubble_outage": status.bubble_outage,
        "health": status.health,
        "cron_jobs": status.cron_jobs if status.cron_available else None,
        "failing": status.failing,
        "by_mapping": status.by_mapping,
        "pg_net_errors": status.pg_net_errors if status.pg_net_available else None,
        "pg_net_error_count": status.pg_net_error_count,
        "alerts": status.alerts,
        "alert_webhook": status.alert_webhook,
    }
    return json.dumps(_jsonable(document), indent=2)

"""The benchmark command works (`python -m bench`, see bench/README.md): tiny runs of the default profile and
of the outage profile (a 3-second outage) on their own local stacks, and the seed and outage profiles'
analyses on synthetic observations (no minute or five-minute cron to wait for). This measures nothing; the
benchmark itself is not a test."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import PROFILES, RETRY_JOB, Observation, OutageWindow, Settings
from bench.report import analyse, markdown
from bench.stats import percentile

REPO = Path(__file__).resolve().parents[1]


def test_bench_command_runs_the_default_profile_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench", "--signups", "6", "--profiles", "default", "--arrival-rate", "20",
            "--latency-ms", "5", "--latency-jitter-ms", "5", "--drain-timeout", "20", "--out", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| `default` | 6/6 |" in result.stdout
    document = json.loads((out / "results.json").read_text())
    (profile,) = document["profiles"]
    assert profile["synced_measured"] == 6 and not profile["timed_out"]
    assert profile["duplicates_in_bubble"] == 0
    assert profile["requests_per_synced_row"] == 1.0
    assert profile["latency_s"]["measured_steady"]["n"] == 3
    assert (out / "results.md").read_text() in result.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "latency.png").read_bytes().startswith(b"\x89PNG")


def test_bench_command_runs_a_plan_profile_and_a_backfill(tmp_path: Path) -> None:
    # Team's limit for 0.2 s (117 signups at once), the double alone for 1 s, and a backfill of 150 records
    # with bulk calls of 1 ms a line.
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench", "--profiles", "team,backfill", "--plan-burst-seconds", "0.2",
            "--ceiling-seconds", "1", "--backfill-rows", "150", "--bulk-ms-per-line", "1",
            "--latency-ms", "5", "--latency-jitter-ms", "5", "--out", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| `team` | 117/117 | 35,000/min (583/s) |" in result.stdout
    assert "| `backfill` | 150/150 | 25,000/min (417/s) | – |" in result.stdout
    assert "sustained throughput" not in result.stdout  # plan profiles have their own table only
    team, backfill = json.loads((out / "results.json").read_text())["profiles"]
    assert team["ceiling"]["ok"] > 0 and team["ceiling"]["concurrency"] == 200
    for profile in (team, backfill):
        function = profile["function"]
        assert function["invocations"] >= 1 and function["runs"] >= 1
        assert function["cpu_ms_per_row"] > 0 and function["db_round_trips_per_row"] > 0
        assert function["invocations_by_end"] == {"done": function["invocations"]}
    assert backfill["requests_per_synced_row"] < 1  # bulk creates: many rows a request
    assert backfill["duplicates_in_bubble"] == 0
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "plans.png").read_bytes().startswith(b"\x89PNG")
        assert not (out / "latency.png").exists()


def test_bench_command_runs_the_outage_profile_with_a_short_outage(tmp_path: Path) -> None:
    # 3 signups at 2/s (0, 0.5, 1 s), then 3 at once (1.5 s); Bubble is down from 0.75 s to 3.75 s. Rows
    # that failed come back only through the five-minute retry job, so the run gives up 5 s after the outage
    # (with the queue most likely not empty: the smoke test does not wait for recovery).
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench", "--signups", "6", "--profiles", "outage", "--arrival-rate", "2",
            "--latency-ms", "5", "--latency-jitter-ms", "5", "--outage-seconds", "3", "--drain-timeout", "5",
            "--recovery-timeout", "5", "--out", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| `outage` | 3.0 s from 0." in result.stdout
    assert "sustained throughput" not in result.stdout  # the outage profile has its own table only
    document = json.loads((out / "results.json").read_text())
    (profile,) = document["profiles"]
    outage = profile["outage"]
    assert abs(outage["seconds"] - 3) < 0.5 and abs(outage["began_s"] - 0.75) < 0.5
    assert outage["signups_during"] == 4
    assert set(outage["requests_during_by_status"]) <= {"503"}  # Bubble down: nothing else answers
    assert outage["rows_synced_during"] == 0
    assert outage["failed_for_good"] == 0 and profile["duplicates_in_bubble"] == 0
    assert document["ratios_against_seed"] == {}
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "outage.png").read_bytes().startswith(b"\x89PNG")
        assert not (out / "latency.png").exists()


def test_outage_figures_count_requests_by_window_and_time_recovery_on_the_rows() -> None:
    # Bubble down from 10 s to 70 s. Requests: 2 answered before, 3 during (503), 4 after (one 429). Rows:
    # 3 synced, the last at 100 s, and 1 failed for good at 90 s: the queue was empty 30 s after recovery.
    t0 = 2_000_000.0

    def at(seconds: float) -> str:
        return (
            datetime.fromtimestamp(t0 + seconds, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    def request(seconds: float, status: int, method: str = "POST") -> dict[str, object]:
        return {
            "path": "/version-test/api/1.1/obj/user",
            "method": method,
            "status": status,
            "time": at(seconds),
        }

    requests = [request(1, 201), request(2, 201), request(10.5, 503), request(30, 503),
                request(69.9, 503, "GET"), request(70, 429), request(71, 201), request(95, 201),
                request(100, 201)]  # fmt: skip
    rows = [
        {"record_id": rid, "status": status, "created_at": t0 + created, "completed_at": done,
         "updated_at": t0 + updated, "retry_count": retries, "max_retries": 3, "error_message": None}
        for rid, status, created, done, updated, retries in [
            ("s1", "completed", 0.5, t0 + 2, 2, 0),
            ("s2", "completed", 20, t0 + 71, 71, 0),
            ("s3", "completed", 30, t0 + 100, 100, 0),
            ("s4", "failed", 40, None, 90, 3),
        ]
    ]  # fmt: skip
    obs = Observation(
        profile=PROFILES["outage"], settings=Settings(signups=4, steady_fraction=1.0),
        started_at=t0, steady_ids=[r["record_id"] for r in rows], burst_ids=[], burst_at=t0 + 41,
        inserts_done_at=t0 + 41, ended_at=t0 + 101, rows=rows,
        bubble_created={"s1": t0 + 2, "s2": t0 + 71, "s3": t0 + 100}, requests=requests, bubble_records=3,
        outage=OutageWindow(planned_seconds=60, began_at=t0 + 10, ended_at=t0 + 70),
        cron_runs={RETRY_JOB: [t0 + 95]},
    )  # fmt: skip
    outage = analyse(obs)["outage"]
    assert outage["requests_during"] == 3 and outage["requests_during_per_minute"] == 3.0
    assert outage["requests_during_by_status"] == {"503": 3}
    assert outage["requests_during_by_kind"] == {"create": 2, "get": 1}
    assert outage["status_429_after_recovery"] == 1 and outage["status_429_total"] == 1
    assert outage["failed_for_good"] == 1
    assert outage["rows_synced_before"] == 1 and outage["rows_synced_during"] == 0
    assert outage["signups_during"] == 3
    assert outage["recovery_to_empty_queue_s"] == 30.0
    assert outage["cron_runs_s"][RETRY_JOB] == [95.0]
    # a row still waiting for its retry: the queue never emptied
    rows[3]["retry_count"] = 0
    assert analyse(obs)["outage"]["recovery_to_empty_queue_s"] is None


def test_seed_profile_latency_is_measured_then_derived_for_the_backlog() -> None:
    # 25 rows created at t=0..24 s; ticks at 30 s and 90 s synced 10 rows each (oldest first, 0.5 s after the
    # tick); 5 rows still wait: the next tick after 90 s (150 s) takes them.
    t0 = 1_000_000.0
    rows = [
        {"record_id": f"s{i}", "status": "completed" if i <= 20 else "pending", "created_at": t0 + i - 1,
         "completed_at": None, "retry_count": 0, "error_message": None}
        for i in range(1, 26)
    ]  # fmt: skip
    synced = {f"s{i}": t0 + (30.5 if i <= 10 else 90.5) for i in range(1, 21)}
    obs = Observation(
        profile=PROFILES["seed"], settings=Settings(signups=25, steady_fraction=1.0),
        started_at=t0, steady_ids=[r["record_id"] for r in rows], burst_ids=[], burst_at=t0 + 25,
        inserts_done_at=t0 + 25, ended_at=t0 + 95, rows=rows, bubble_created=synced,
        requests=[{"path": "/version-test/api/1.1/obj/user", "method": "POST", "status": 201}] * 20,
        bubble_records=20, ticks=[t0 + 30, t0 + 90],
    )  # fmt: skip
    result = analyse(obs)
    assert result["rows_per_tick_measured"] == 10
    assert abs(result["throughput_rows_per_min"] - 10) < 1e-9
    assert result["derivation"]["rows_derived"] == 5
    derived = result["latencies"]["derived"]
    assert derived["s21"] == (t0 + 150.5) - (t0 + 20)
    assert result["latency_s"]["measured_all"]["n"] == 20
    assert result["latency_s"]["all_with_derived"]["n"] == 25
    table = markdown([result], {**vars(obs.settings), "steady_signups": 25, "burst_signups": 0}, "x")
    assert "† `seed`" in table and "derived" in table


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([], 50) is None


def test_queue_scale_bench_runs_and_writes_its_table(tmp_path: Path) -> None:
    # `python -m bench.queue_scale` with a small queue (the real run: 1,000,000 + 100,000 rows)
    out = tmp_path / "queue-scale.md"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench.queue_scale", "--history", "2000", "--pending", "300", "--runs", "5",
            "--out", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "2,000 completed rows of history and 300 pending" in text
    for statement, calls in (("claim", 5), ("report_verdicts", 5), ("enqueue", 10)):
        assert f"| `{statement}` | {calls} |" in text, text

"""The benchmark command works (`python -m bench`, see bench/README.md): a tiny run of the default profile on
its own local stack, and the seed profile's analysis on synthetic observations (no minute cron to wait for).
This measures nothing; the benchmark itself is not a test."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from bench.harness import PROFILES, Observation, Settings
from bench.report import analyse, markdown, percentile

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

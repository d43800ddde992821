"""The reconcile benchmark works (`python -m bench.reconcile`, bench/README.md): a tiny run on its own local
stack finds every planted difference at 100 things a request and writes its tables. This measures nothing;
the benchmark itself is not a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_reconcile_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results-reconcile.md"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench.reconcile", "--records", "300", "--shared-per-minute", "1200",
            "--baseline-seconds", "2", "--latency-ms", "5", "--latency-jitter-ms", "5", "--out", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert text in result.stdout
    # 300 things plus the planted ones: 4 pages, and a second look at the records that differ
    assert "| whole (scan) | 25,000/min (5,000/min) | 300 | 5 | 0.0167 |" in text
    assert "missing 20, stale 20, orphaned 20, duplicated 1" in text
    assert "| sync alone |" in text and "| sync + whole reconcile |" in text

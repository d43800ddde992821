"""One rule for Bubble's HTTP statuses: the Edge Function's classification (supabase/functions/bubble_sync/
status_kind.ts, `failureKind`) is the database's bubble_sync.failure_kind (sql/functions/lease.sql), status by
status. The function pauses, reports to Bubble's gate and recovers used emails by the same classes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from devstack.functions import deno_binary
from tests.conftest import Database

STATUS_KIND = (
    Path(__file__).resolve().parents[1] / "supabase" / "functions" / "bubble_sync" / "status_kind.ts"
)
STATUSES = range(100, 600)


def typescript_kinds() -> dict[str | None, str]:
    """failureKind of each status in STATUSES (keys as text) and of no answer (None), printed by Deno."""
    script = (
        f"import {{ failureKind }} from {json.dumps(STATUS_KIND.as_uri())};\n"
        "const kinds = {};\n"
        f"for (let s = {STATUSES.start}; s < {STATUSES.stop}; s++) kinds[s] = failureKind(s);\n"
        'kinds["null"] = failureKind(null);\n'
        "console.log(JSON.stringify(kinds));\n"
    )
    result = subprocess.run(
        [deno_binary(), "eval", "--ext=ts", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    kinds: dict[str, str] = json.loads(result.stdout)
    return {None if status == "null" else status: kind for status, kind in kinds.items()}


def database_kinds(database: Database) -> dict[str | None, str]:
    with database.connect() as conn:
        rows = conn.execute(
            "select s::text, bubble_sync.failure_kind(s) from generate_series(%s::integer, %s::integer) s"
            " union all select null, bubble_sync.failure_kind(null::integer)",
            (STATUSES.start, STATUSES.stop - 1),
        ).fetchall()
    return dict(rows)


def test_the_function_classifies_every_status_as_the_database_does(queue_db: Database) -> None:
    expected = database_kinds(queue_db)
    actual = typescript_kinds()
    assert len(expected) == len(STATUSES) + 1
    differ = {
        status: (expected[status], actual.get(status))
        for status in expected
        if actual.get(status) != expected[status]
    }
    assert differ == {}, "status: (failure_kind, failureKind)"
    assert set(actual) == set(expected)

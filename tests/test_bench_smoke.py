"""The benchmark command works (`python -m bench`, see bench/README.md): tiny runs of the default profile, of
a plan profile and the backfill, of growth and the mappings profile, and of the outage profile (a 3-second
outage) on their own local stacks; the seed and outage profiles' analyses on synthetic observations (no
minute or five-minute cron to wait for); the mappings profile's checks on a Bubble that differs from Supabase
in every way they look for. This measures nothing; the benchmark itself is not a test."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.harness import PROFILES, RETRY_JOB, Observation, OutageWindow, Settings
from bench.mapped import Deleter, check
from bench.mapped_app import SCHEMA, TABLES, sizes_for
from bench.report import analyse, markdown
from bench.stats import percentile
from devstack.bubble_double import BubbleDouble
from tests.conftest import Database

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


def test_bench_command_runs_the_mappings_profile_beside_growth(tmp_path: Path) -> None:
    # Growth's limit for 0.2 s: 83 Bubble requests, split across the three mappings (21 users and a test
    # account, 29 listings, 25 messages, 8 of them deleted once in Bubble); the double alone for 1 s.
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, "-m", "bench", "--profiles", "growth,mappings", "--plan-burst-seconds", "0.2",
            "--ceiling-seconds", "1", "--latency-ms", "5", "--latency-jitter-ms", "5", "--out", str(out),
        ],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "CHECK FAILED" not in result.stderr
    assert "| `mappings` | 83/83 | 25,000/min (417/s) |" in result.stdout
    assert "| `listings` | public.listings → listing (Host: ref users) | 29 | 29 |" in result.stdout
    assert "Correctness, Bubble against Supabase after the run: no difference." in result.stdout
    assert "- CPU ms per row " in result.stdout and " against `growth`'s " in result.stdout
    growth, mappings = json.loads((out / "results.json").read_text())["profiles"]
    assert growth["mapped"] is None
    mapped = mappings["mapped"]
    assert mapped["sizes"] == {
        "users": 21, "test_accounts": 1, "listings": 29, "messages": 25, "deleted": 8, "requests": 83,
    }  # fmt: skip
    assert mapped["failures"] == [] and mapped["test_accounts_in_bubble"] == 0 and mapped["deleted"] == 8
    assert mapped["bubble_things"] == {"user": 21, "listing": 29, "message": 17}
    groups = {(g["mapping"], g["operation"]): g for g in mapped["groups"]}
    assert {key: (g["rows"], g["synced"]) for key, g in groups.items()} == {
        ("users", "create"): (21, 21), ("listings", "create"): (29, 29), ("messages", "create"): (25, 25),
        ("messages", "delete"): (8, 8),
    }  # fmt: skip
    assert groups["messages", "delete"]["requests_by_kind"] == {"delete": 8}
    assert mapped["listing_after_host_s"]["min"] > 0  # no listing reached Bubble before its host
    assert mappings["ceiling"]["ok"] > 0  # the double alone, creating users its schema knows
    assert mappings["function"]["cpu_ms_per_row"] > 0


def test_mappings_checks_name_every_difference_between_bubble_and_supabase(db: Database) -> None:
    # Supabase: Ada and Bob, a test account, Ada's two listings, two messages; message 7 was deleted.
    # Bubble: Ada with another Last Name, no Bob, the test account, listing 2 hosted by the test account,
    # message 1 twice and no message 2, message 7 still there, a message of no row; one queue row failed.
    stamp = """to_char({} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(TABLES)
        users = conn.execute(
            "insert into public.profiles (email, first_name, last_name, is_test)"
            " values ('ada@x.example', 'Ada', 'L', false), ('bob@x.example', 'Bob', 'K', false),"
            " ('t@x.example', 'T', null, true)"
            f" returning id::text, {stamp.format('created_at')}"
        ).fetchall()
        (ada, joined), (bob, _), (tester, _) = users
        conn.execute(
            "insert into public.listings (title, price, host_id) values ('Loft', 80.25, %s), ('Barn', 9, %s)",
            (ada, ada),
        )
        (sent,) = conn.execute(
            f"insert into public.messages (body) values ('hi'), ('again') returning {stamp.format('sent_at')}"
        ).fetchall()[0]
        bubble = BubbleDouble(token="t" * 32, schema=SCHEMA)

        def add(data_type: str, key: str, **fields: object) -> str:
            return bubble.add(data_type, {**fields, "supabase_id": key}, env="test")

        ada_id = add("user", f"profiles:{ada}", email="ada@x.example", **{"First Name": "Ada"},
                     **{"Last Name": "Lovelace", "Joined": joined})  # fmt: skip
        tester_id = add("user", f"profiles:{tester}", email="t@x.example", **{"First Name": "T"})
        add("listing", "listings:1", Title="Loft", Price=80.25, Host=ada_id)
        add("listing", "listings:2", Title="Barn", Price=9, Host=tester_id)
        add("message", "messages:1", Body="hi", Sent=sent)
        add("message", "messages:1", Body="hi", Sent=sent)
        gone = add("message", "messages:7", Body="bye")
        add("message", "messages:99", Body="?")
        failed_row = {"table_name": "messages", "record_id": "2", "operation": "INSERT", "status": "failed",
                      "error_message": "boom"}  # fmt: skip
        checked = check(conn, bubble, Deleter(bubble, deleted={"7": (gone, 0.0)}), [failed_row])
    text = "\n".join(checked.failures)
    assert f"user {ada}: Last Name 'Lovelace' in Bubble, 'L' in Supabase" in text
    assert f"user {bob} (bob@x.example) is not in Bubble" in text
    assert f"test account t@x.example is in Bubble as user {tester_id}" in text
    assert f"listing 2: Host {tester_id!r} in Bubble, {ada_id!r} in Supabase" in text
    assert "message messages:1: 2 things in Bubble" in text
    assert "message 2 is not in Bubble" in text
    assert f"message 7 was deleted in Supabase, still in Bubble ({gone})" in text
    assert "1 message thing(s) in Bubble match no row of public.messages: messages:99" in text
    assert "1 queue row(s) not completed ({'failed': 1}); the first: messages:2 INSERT failed: boom" in text
    assert len(checked.failures) == 9, text
    assert checked.duplicates == 1 and checked.test_accounts_in_bubble == 1
    assert checked.bubble_counts == {"user": 2, "listing": 2, "message": 4}


def test_mappings_burst_is_split_across_the_tables() -> None:
    sizes = sizes_for(8333)  # Growth's limit for 20 s
    assert (sizes.users, sizes.test_accounts, sizes.listings, sizes.messages, sizes.deleted) == (
        2083, 20, 2917, 2500, 833,
    )  # fmt: skip
    assert sizes.requests == 8333
    assert sizes_for(1).requests == 1 and sizes_for(1).test_accounts == 1


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

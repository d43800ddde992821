"""`python -m devstack up|status|down` as a newcomer uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from devstack import assembly, stack
from devstack.processes import is_alive
from tests.engine_support import engine_or_skip

REPO = Path(__file__).resolve().parent.parent


def devstack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def parse_lines(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    state = tmp_path_factory.mktemp("stack") / "state"
    result = devstack("up", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    try:
        yield state, parse_lines(result.stdout)
    finally:
        devstack("down", "--state-dir", str(state))


def test_up_prints_the_three_connection_lines(running: tuple[Path, dict[str, str]]) -> None:
    _, urls = running
    assert set(urls) == {"DATABASE_URL", "FUNCTIONS_URL", "BUBBLE_URL"}
    assert urls["FUNCTIONS_URL"].endswith("/functions/v1")


def test_every_part_answers(running: tuple[Path, dict[str, str]]) -> None:
    _, urls = running
    with psycopg.connect(urls["DATABASE_URL"]) as conn:
        (user, cron) = conn.execute(
            "select current_user, (select count(*) from pg_extension where extname in ('pg_cron','pg_net'))"
        ).fetchone()  # type: ignore[misc]
        conn.execute("select net.check_worker_is_up()")
    assert (user, cron) == ("postgres", 2)
    assert httpx.get(urls["FUNCTIONS_URL"] + "/bubble_sync").json() == {
        "status": "ok",
        "function": "bubble_sync",
    }
    assert httpx.get(urls["BUBBLE_URL"] + "/_double/health").status_code == 200


def test_state_holds_keys_readable_only_by_the_owner(running: tuple[Path, dict[str, str]]) -> None:
    state, _ = running
    assert (state / "stack.json").stat().st_mode & 0o077 == 0


def test_up_when_already_up_says_so(running: tuple[Path, dict[str, str]]) -> None:
    state, urls = running
    again = devstack("up", "--state-dir", str(state))
    assert again.returncode == 0
    assert "already up" in again.stderr
    assert parse_lines(again.stdout) == urls


def test_up_with_config_on_a_running_devstack_applies_the_stack_again(
    running: tuple[Path, dict[str, str]],
) -> None:
    state, urls = running
    again = devstack("up", "--state-dir", str(state), "--config", "maxRetries=4")
    assert again.returncode == 0, again.stderr
    assert "applying stack `local` again" in again.stderr
    assert parse_lines(again.stdout) == urls
    info = stack.load(state)
    assert info is not None and info.config.get("maxRetries") in ("4", 4)
    with psycopg.connect(urls["DATABASE_URL"]) as conn:
        (source,) = conn.execute(
            "select prosrc from pg_proc where oid = 'bubble_sync.enqueue(text, text, text, jsonb, integer,"
            " timestamptz)'::regprocedure"
        ).fetchone()  # type: ignore[misc]
    assert "p_max_retries, v_prev.max_retries, 4)" in source  # the new default reached the database


def test_status_lists_every_part_running(running: tuple[Path, dict[str, str]]) -> None:
    state, _ = running
    result = devstack("status", "--state-dir", str(state))
    assert result.returncode == 0
    for part in ("postgres", "pgnet_worker", "bubble_double", "functions_host"):
        assert f"{part}" in result.stdout
    assert "NOT RUNNING" not in result.stdout


def test_down_stops_every_process_and_removes_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert devstack("up", "--state-dir", str(state)).returncode == 0
    info = stack.load(state)
    assert info is not None
    down = devstack("down", "--state-dir", str(state))
    assert down.returncode == 0
    assert not any(is_alive(p) for p in info.processes.values())
    assert not state.exists()
    assert devstack("status", "--state-dir", str(state)).returncode == 3


def test_bubble_url_without_token_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BUBBLE_API_TOKEN"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack",
            "up",
            "--state-dir",
            str(tmp_path / "s"),
            "--bubble-url",
            "http://x",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "BUBBLE_API_TOKEN" in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_failed_part_is_named_and_everything_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_host(**_: object) -> None:
        # By now PostgreSQL, the pg_net worker and the Bubble double are running.
        assert (tmp_path / "s" / "cluster.json").exists()
        raise RuntimeError("deno exploded")

    monkeypatch.setattr(stack.functions, "start_functions_host", broken_host)
    spawned: list[object] = []
    real_spawn = assembly.spawn  # the Bubble double and the pg_net worker are spawned by the assembly

    def recording_spawn(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        proc, value = real_spawn(*args, **kwargs)  # type: ignore[arg-type]
        spawned.append(proc)
        return proc, value

    monkeypatch.setattr(assembly, "spawn", recording_spawn)
    with pytest.raises(stack.StackError, match="edge function host .*deno exploded"):
        stack.up(tmp_path / "s")
    assert len(spawned) == 2
    assert all(p.poll() is not None for p in spawned)  # type: ignore[attr-defined]
    assert not (tmp_path / "s").exists()


def test_up_applies_the_local_stack_so_the_seeds_verification_passes(
    running: tuple[Path, dict[str, str]],
) -> None:
    _, urls = running
    with psycopg.connect(urls["DATABASE_URL"]) as conn:
        jobs = conn.execute(
            "SELECT jobname, schedule, active FROM cron.job WHERE jobname LIKE 'bubble-sync%'"
            " ORDER BY jobname"
        ).fetchall()
        secrets = conn.execute(
            "SELECT name FROM vault.secrets WHERE name IN ('supabase_url', 'service_role_key') ORDER BY name"
        ).fetchall()
        functions = conn.execute(
            "SELECT proname FROM pg_proc"
            " WHERE proname IN ('invoke_bubble_sync_processor', 'invoke_bubble_sync_retry') ORDER BY proname"
        ).fetchall()
        conn.execute("SELECT status, COUNT(*) FROM sync_queue GROUP BY status")
    assert jobs == [("bubble-sync-processor", "* * * * *", True), ("bubble-sync-retry", "*/5 * * * *", True)]
    assert secrets == [("service_role_key",), ("supabase_url",)]
    assert functions == [("invoke_bubble_sync_processor",), ("invoke_bubble_sync_retry",)]


def test_a_new_queue_row_reaches_the_edge_function_through_pg_net(
    running: tuple[Path, dict[str, str]],
) -> None:
    # trigger -> debounced dispatch -> net.http_post -> pg_net worker -> Deno host -> bubble_sync -> Bubble
    _, urls = running
    with psycopg.connect(urls["DATABASE_URL"], autocommit=True) as conn:
        # Bubble creates no user without an email (manual, "Creating users"), and neither does its double
        conn.execute(
            "select bubble_sync.enqueue('profiles', 'devstack-probe', 'INSERT',"
            ' \'{"email": "devstack-probe@example.com"}\'::jsonb)'
        )
        deadline = time.monotonic() + 10
        row = synced = None
        while (row is None or synced is None) and time.monotonic() < deadline:
            time.sleep(0.2)
            row = conn.execute(
                "select status_code, error_msg from net._http_response order by id desc limit 1"
            ).fetchone()
            synced = conn.execute(
                "select bubble_id from public.sync_queue"
                " where record_id = 'devstack-probe' and status = 'completed'"
            ).fetchone()
        conn.execute("delete from public.sync_queue where record_id = 'devstack-probe'")
    assert row is not None, "no HTTP call reached the edge function within 10 s"
    assert row == (202, None)  # accepted at once; the sync itself runs after the answer
    assert synced is not None, "the edge function did not sync the row to the Bubble double within 10 s"


# -- the local stack through the real Pulumi engine ----------------------------------------------------------


def test_up_applies_the_local_stack_with_the_real_engine(running: tuple[Path, dict[str, str]]) -> None:
    engine_or_skip()
    state, _ = running
    info = stack.load(state)
    assert info is not None and info.applied_with.startswith("pulumi up (v3.")
    assert "applied with pulumi up" in devstack("status", "--state-dir", str(state)).stdout
    # `./dev pulumi` reaches the same stack: its outputs, and no drift right after `up`.
    outputs = devstack("pulumi", "--state-dir", str(state), "stack", "output", "--json", "--stack", "local")
    assert outputs.returncode == 0, outputs.stderr
    assert json.loads(outputs.stdout)["cronJobs"] == [
        "bubble-sync-processor",
        "bubble-sync-retry",
        "bubble_sync.purge",
        "bubble_sync.verify",
        "bubble_sync.alerts",
    ]
    preview = devstack(
        "pulumi", "--state-dir", str(state), "preview", "--stack", "local", "--refresh", "--expect-no-changes"
    )
    assert preview.returncode == 0, preview.stdout + preview.stderr


@pytest.mark.parametrize("engine", [True, False], ids=["pulumi up", "psql"])
def test_config_overrides_reach_the_local_stack(tmp_path: Path, engine: bool) -> None:
    if engine:
        engine_or_skip()
    state = tmp_path / "state"
    args = ["up", "--state-dir", str(state), "--config", "processorSchedule=*/2 * * * *",
            "--config", "bubble-sync:maintenanceSchedule=5 4 * * *", "--config", "batchSize=7"]  # fmt: skip
    result = devstack(*args, *([] if engine else ["--no-engine"]))
    try:
        assert result.returncode == 0, result.stderr
        assert ("applied with pulumi up" in result.stderr) is engine
        with psycopg.connect(parse_lines(result.stdout)["DATABASE_URL"]) as conn:
            schedules = dict(conn.execute("select jobname, schedule from cron.job").fetchall())
        assert schedules["bubble-sync-processor"] == "*/2 * * * *"
        assert schedules["bubble_sync.purge"] == "5 4 * * *"
        assert schedules["bubble-sync-retry"] == "*/5 * * * *"  # untouched: Pulumi.local.yaml's default
        # The function runs on the same stack's settings: the override, and the stack config's defaults.
        info = stack.load(state)
        assert info is not None
        environ = Path(f"/proc/{info.processes['functions_host'].pid}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
        assert env["BUBBLE_SYNC_BATCH_SIZE"] == "7"
        assert (env["BUBBLE_RATE_LIMIT_PER_MINUTE"], env["BUBBLE_SYNC_HTTP_TIMEOUT_MS"]) == ("1000", "5000")
        assert env["BUBBLE_BASE_URL"].endswith("/version-test/api/1.1")
    finally:
        devstack("down", "--state-dir", str(state))
    assert not state.exists()  # the local stack's Pulumi workspace went with the database


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "batchSize"], "--config expects KEY=VALUE"),
        (["--config", "batchsize=5"], "bubble-sync:batchsize: unknown key (did you mean batchSize?)"),
        (
            ["--no-engine", "--config", "bubbleApiToken=x"],
            "secrets can only be set on the `local` stack with",
        ),
        (["--config-file", "nope.yaml"], "--config-file: 1 problem:\n  - nope.yaml: no such file"),
        (
            ["--config-file", "docs/examples/mappings.yaml"],
            "bubble-sync:mappings: a new devstack's database has none of your tables yet",
        ),
    ],
    ids=[
        "no value",
        "unknown key",
        "secret without the engine",
        "no such file",
        "mappings on a new devstack",
    ],
)
def test_bad_config_overrides_are_refused_before_anything_starts(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = devstack("up", "--state-dir", str(tmp_path / "s"), *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "s").exists()


# -- up --config-file on a running devstack ------------------------------------------------------------------

TABLES = """
create table public.profiles (id uuid primary key default gen_random_uuid(), email text not null,
  first_name text, last_name text, is_test boolean not null default false);
create table public.listings (id bigint generated always as identity primary key, title text not null,
  price numeric, host_id uuid references public.profiles (id));
"""


def host_env(state: Path) -> tuple[int, dict[str, str]]:
    """The function host's pid and environment."""
    info = stack.load(state)
    assert info is not None
    pid = info.processes["functions_host"].pid
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return pid, dict(item.decode().split("=", 1) for item in environ if b"=" in item)


def test_config_file_applies_a_running_psql_devstack_again_and_restarts_the_function_host(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    first = devstack(
        "up", "--state-dir", str(state), "--no-engine", "--config", "processorSchedule=*/2 * * * *"
    )
    try:
        assert first.returncode == 0, first.stderr
        urls = parse_lines(first.stdout)
        with psycopg.connect(urls["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(TABLES)
        pid, env = host_env(state)
        assert "BUBBLE_SYNC_MAPPINGS" not in env
        later = tmp_path / "later.yaml"
        later.write_text("config:\n  bubble-sync:batchSize: 8\n  bubble-sync:retrySchedule: '*/3 * * * *'\n")

        # applied the way it was first (psql, without saying --no-engine again); the later file wins over
        # the first, --config over both, and the first `up`'s --config stays under what is not set again
        again = devstack("up", "--state-dir", str(state), "--config-file", "docs/examples/mappings.yaml",
                         "--config-file", str(later), "--config", "retrySchedule=*/4 * * * *")  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "applied again" in again.stderr and "with psql (render-sql)" in again.stderr
        assert parse_lines(again.stdout) == urls  # the same devstack, the host on its port
        new_pid, env = host_env(state)
        assert new_pid != pid
        assert [m["name"] for m in json.loads(env["BUBBLE_SYNC_MAPPINGS"])] == ["users", "listings"]
        assert env["BUBBLE_SYNC_BATCH_SIZE"] == "8"
        with psycopg.connect(urls["DATABASE_URL"], autocommit=True) as conn:
            triggers = conn.execute(
                "select tgname from pg_trigger where tgname like 'bubble_sync\\_%' order by 1"
            ).fetchall()
            schedules = dict(conn.execute("select jobname, schedule from cron.job").fetchall())
            conn.execute(
                "insert into public.profiles (email, first_name) values ('grace@example.com', 'Grace')"
            )
        assert triggers == [("bubble_sync_dispatch",), ("bubble_sync_listings",), ("bubble_sync_users",)]
        assert schedules["bubble-sync-retry"] == "*/4 * * * *"
        assert schedules["bubble-sync-processor"] == "*/2 * * * *"
        users: list[dict[str, object]] = []
        deadline = time.monotonic() + 10
        while not users and time.monotonic() < deadline:
            time.sleep(0.2)
            users = httpx.get(urls["BUBBLE_URL"] + "/_double/records?type=user&env=test").json()["records"]
        assert [u["First Name"] for u in users] == ["Grace"]  # sent as the mapping says

        # the same config again: nothing for the host to change, so it keeps running
        same = devstack("up", "--state-dir", str(state), "--config-file", "docs/examples/mappings.yaml")
        assert same.returncode == 0, same.stderr
        assert "its settings are unchanged; kept running" in same.stderr
        assert host_env(state)[0] == new_pid

        # a mapping left out: its trigger and row go, as `pulumi up` would delete them (the SQL only creates)
        example = yaml.safe_load((REPO / "docs" / "examples" / "mappings.yaml").read_text())
        example["config"]["bubble-sync:mappings"] = example["config"]["bubble-sync:mappings"][:1]
        users_only = tmp_path / "users-only.yaml"
        users_only.write_text(yaml.safe_dump(example))
        fewer = devstack("up", "--state-dir", str(state), "--config-file", str(users_only))
        assert fewer.returncode == 0, fewer.stderr
        assert "mapping listings: no longer in the config; trigger dropped, row deleted" in fewer.stderr
        with psycopg.connect(urls["DATABASE_URL"], autocommit=True) as conn:
            triggers = conn.execute(
                "select tgname from pg_trigger where tgname like 'bubble_sync\\_%' order by 1"
            ).fetchall()
            names = conn.execute("select name from bubble_sync.mappings").fetchall()
        assert triggers == [("bubble_sync_dispatch",), ("bubble_sync_users",)] and names == [("users",)]
        assert [m["name"] for m in json.loads(host_env(state)[1]["BUBBLE_SYNC_MAPPINGS"])] == ["users"]
    finally:
        devstack("down", "--state-dir", str(state))

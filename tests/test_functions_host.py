"""The local edge-function host (devstack/functions_host.ts) and its Python launcher.

One host serves the real supabase/functions (bubble_sync); another serves the small
functions in tests/fixtures/functions, which expose what a function sees (echo), throw (boom), outlive
the wall clock limit (slow), fail to import (broken) or must be skipped (_shared). The CPU-time and
wall-clock limits have their own module, test_functions_host_limits.py.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.functions import (
    HOST_SCRIPT,
    FunctionsHostError,
    deno_binary,
    runtime_env,
    start_functions_host,
    stop_process,
)

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO / "supabase" / "functions"
FIXTURE_FUNCTIONS = Path(__file__).resolve().parent / "fixtures" / "functions"
PARENT_ONLY_VAR = "BUBBLE_SYNC_TEST_PARENT_ONLY"
WALL_CLOCK_LIMIT_MS = 500
SECRET = "sk-test-do-not-log-3f9a"
RESOURCE_LIMIT = {
    "code": "WORKER_RESOURCE_LIMIT",
    "message": "Function failed due to not having enough compute resources (please check logs)",
}

# Fake values: the host never talks to Supabase; only names and plumbing are under test.
ENV = runtime_env(
    supabase_url="http://127.0.0.1:54321",
    db_url="postgresql://postgres:postgres@127.0.0.1:54322/postgres",
    service_role_key="service-role-key",
    anon_key="anon-key",
    extra={"BUBBLE_API_URL": "http://127.0.0.1:9/api/1.1"},
)


@dataclass(frozen=True)
class Host:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def origin(self) -> str:
        return self.url.removesuffix("/functions/v1")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # trust_env=False: a developer's HTTP(S)_PROXY must not capture requests to 127.0.0.1.
    with httpx.Client(timeout=10, trust_env=False) as c:
        yield c


@pytest.fixture(scope="module")
def real_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    log_path = tmp_path_factory.mktemp("real_host") / "functions.log"
    proc, url = start_functions_host(functions_dir=FUNCTIONS_DIR, port=0, env=ENV, log_path=log_path)
    yield Host(proc, url, log_path)
    stop_process(proc)


@pytest.fixture(scope="module")
def fixture_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    log_path = tmp_path_factory.mktemp("fixture_host") / "functions.log"
    env = {**ENV, "EDGE_WALL_CLOCK_LIMIT_MS": str(WALL_CLOCK_LIMIT_MS)}
    # Set in the parent only while the host starts: the echo function must still not see it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PARENT_ONLY_VAR, "parent-only")
        proc, url = start_functions_host(functions_dir=FIXTURE_FUNCTIONS, port=0, env=env, log_path=log_path)
    yield Host(proc, url, log_path)
    stop_process(proc)


def assert_gone(pid: int, timeout: float = 5) -> None:
    """The process `pid` has exited (and been reaped) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} is still there")


def wait_for_line(host: Host, pattern: str, *, after: int = 0, timeout: float = 5) -> dict[str, str]:
    """The first log line past offset `after` matching `pattern`, as its key=value fields."""
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(pattern, host.log()[after:], re.MULTILINE)
        if match:
            return dict(field.split("=", 1) for field in match[0].split()[1:])
        if time.monotonic() > deadline:
            raise AssertionError(f"no line matching {pattern!r} in:\n{host.log()[after:]}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the real bubble_sync ---------------------------------------------------------------------------------


def test_health_lists_bubble_sync(real_host: Host, client: httpx.Client) -> None:
    r = client.get(f"{real_host.origin}/_internal/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "functions": ["bubble_sync"], "boot_errors": []}


@pytest.mark.parametrize("path", ["/bubble_sync", "/bubble_sync/", "/bubble_sync/health?verbose=1"])
def test_bubble_sync_get_answers_health(real_host: Host, client: httpx.Client, path: str) -> None:
    r = client.get(real_host.url + path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"status": "ok", "function": "bubble_sync"}


def test_bubble_sync_post_needs_the_service_key(real_host: Host, client: httpx.Client) -> None:
    # The function itself is tested in tests/test_edge_function.py; here only that the host reaches it.
    r = client.post(f"{real_host.url}/bubble_sync", json={"action": "process_queue_data_api"})
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"


def test_bubble_sync_invocations_are_logged_with_their_cpu_time(
    real_host: Host, client: httpx.Client
) -> None:
    before = len(real_host.log())
    assert client.post(f"{real_host.url}/bubble_sync", json={"action": "retry_failed"}).status_code == 401
    line = wait_for_line(
        real_host,
        r"^invocation function=bubble_sync status=401 cpu_ms=\d+ wall_ms=\d+ end=done worker=\d+ "
        r"worker_cpu_ms=\d+ worker_invocations=\d+$",
        after=before,
    )
    assert int(line["cpu_ms"]) < 1000


@pytest.mark.parametrize(
    "path", ["/functions/v1/nope", "/functions/v1/nope/x?y=1", "/functions/v1/", "/bubble_sync"]
)
def test_unknown_function_is_404(real_host: Host, client: httpx.Client, path: str) -> None:
    r = client.get(real_host.origin + path)
    assert r.status_code == 404
    assert r.json() == {"code": "NOT_FOUND", "message": "Requested function was not found"}


# --- routing, environment and platform errors, with fixture functions ----------------------------------


def test_discovery_skips_underscore_dirs_and_reports_boot_errors(
    fixture_host: Host, client: httpx.Client
) -> None:
    health = client.get(f"{fixture_host.origin}/_internal/health").json()
    assert health["functions"] == ["boom", "echo", "slow"]
    assert health["boot_errors"] == ["broken"]
    assert client.get(f"{fixture_host.url}/_shared").status_code == 404
    r = client.get(f"{fixture_host.url}/broken")
    assert r.status_code == 503
    assert r.json()["code"] == "BOOT_ERROR"


@pytest.mark.parametrize(
    ("path", "seen_path", "seen_search"),
    [
        ("/echo", "/echo", ""),
        ("/echo/a/b?x=1&y=two%20words", "/echo/a/b", "?x=1&y=two%20words"),
    ],
)
def test_function_sees_supabase_style_path_and_query(
    fixture_host: Host, client: httpx.Client, path: str, seen_path: str, seen_search: str
) -> None:
    seen = client.get(fixture_host.url + path).json()
    assert (seen["path"], seen["search"]) == (seen_path, seen_search)


def test_post_body_reaches_function(fixture_host: Host, client: httpx.Client) -> None:
    seen = client.post(f"{fixture_host.url}/echo", content=b'{"hello":"world"}').json()
    assert (seen["method"], seen["body"]) == ("POST", '{"hello":"world"}')


def test_function_sees_supabase_env_and_secrets(fixture_host: Host, client: httpx.Client) -> None:
    names = set(client.get(f"{fixture_host.url}/echo").json()["env_names"])
    assert {n for n in names if n.startswith("SUPABASE_")} == {
        "SUPABASE_URL",
        "SUPABASE_DB_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_ANON_KEY",
    }
    assert "BUBBLE_API_URL" in names


def test_parent_environment_is_not_inherited(fixture_host: Host, client: httpx.Client) -> None:
    names = set(client.get(f"{fixture_host.url}/echo").json()["env_names"])
    assert PARENT_ONLY_VAR not in names
    # The limits are the host's settings, not the function's environment.
    assert names <= {"PATH", "HOME", "DENO_DIR", *ENV}


def test_throwing_handler_is_500_and_host_survives(fixture_host: Host, client: httpx.Client) -> None:
    r = client.get(f"{fixture_host.url}/boom")
    assert r.status_code == 500
    assert r.json()["code"] == "WORKER_ERROR"
    assert "Error: boom" in fixture_host.log()
    assert client.get(f"{fixture_host.url}/echo").status_code == 200


def test_wall_clock_limit_answers_546_and_kills_the_worker(fixture_host: Host, client: httpx.Client) -> None:
    started = time.monotonic()
    r = client.get(f"{fixture_host.url}/slow")
    elapsed = time.monotonic() - started
    assert r.status_code == 546
    assert r.json() == RESOURCE_LIMIT
    # The fixture sleeps 5 s; answering near the 0.5 s limit shows the host did not wait for it. A worker's
    # clock starts at its first invocation, and /slow is the first (and only) one of its workers.
    assert WALL_CLOCK_LIMIT_MS / 1000 <= elapsed < 3
    limit = re.search(
        rf"^limit_reached function=slow limit=wall_clock limit_ms={WALL_CLOCK_LIMIT_MS} "
        r"used_ms=\d+ worker=(\d+)$",
        fixture_host.log(),
        re.MULTILINE,
    )
    assert limit, fixture_host.log()
    assert_gone(int(limit[1]))
    assert client.get(f"{fixture_host.url}/echo").status_code == 200


def test_request_log_has_method_path_status_but_no_secrets(fixture_host: Host, client: httpx.Client) -> None:
    client.get(
        f"{fixture_host.url}/echo/logged?apikey={SECRET}",
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    client.post(f"{fixture_host.url}/echo/logged", content=SECRET)
    log = fixture_host.log()
    assert any(
        line.startswith("GET /functions/v1/echo/logged 200 ") and line.endswith("ms")
        for line in log.splitlines()
    )
    assert "POST /functions/v1/echo/logged 200 " in log
    assert SECRET not in log


# --- launcher: start, stop, failure -------------------------------------------------------------------


@pytest.mark.parametrize("by", ["popen", "pid"])
def test_stop_process_ends_host(tmp_path: Path, client: httpx.Client, by: str) -> None:
    port = free_port()
    proc, url = start_functions_host(
        functions_dir=FUNCTIONS_DIR, port=port, env=ENV, log_path=tmp_path / "functions.log"
    )
    assert url == f"http://127.0.0.1:{port}/functions/v1"
    stop_process(proc if by == "popen" else proc.pid, timeout=10)
    # By pid, stop_process does not wait on the Popen; once, on a loaded machine, poll() right after it still
    # found the host running (cause not pinned down), so the test waits for the end it asserts.
    assert proc.wait(timeout=10) is not None
    if by == "popen":
        assert proc.returncode == 0, "SIGTERM should be a clean exit"
    with pytest.raises(httpx.TransportError):
        client.get(f"{url}/bubble_sync")


@pytest.mark.parametrize(
    ("name", "value"),
    [("EDGE_WALL_CLOCK_LIMIT_MS", "soon"), ("EDGE_CPU_LIMIT_MS", "0"), ("EDGE_CPU_LIMIT_MS", "1.5")],
)
def test_start_failure_raises_with_log_tail(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(FunctionsHostError, match=f"{name} must be a positive integer"):
        start_functions_host(
            functions_dir=FUNCTIONS_DIR,
            port=0,
            env={**ENV, name: value},
            log_path=tmp_path / "functions.log",
            timeout=15,
        )


def test_start_refuses_missing_functions_dir(tmp_path: Path) -> None:
    with pytest.raises(FunctionsHostError, match="does not exist"):
        start_functions_host(functions_dir=tmp_path / "nope", port=0, env=ENV, log_path=tmp_path / "log")


def test_runtime_env_mirrors_supabase_defaults() -> None:
    env = runtime_env(supabase_url="u", db_url="d", service_role_key="s", extra={"BUBBLE_API_KEY": "k"})
    assert env == {
        "SUPABASE_URL": "u",
        "SUPABASE_DB_URL": "d",
        "SUPABASE_SERVICE_ROLE_KEY": "s",
        "BUBBLE_API_KEY": "k",
    }
    with pytest.raises(ValueError, match="SUPABASE_"):
        runtime_env(supabase_url="u", db_url="d", service_role_key="s", extra={"SUPABASE_URL": "x"})


def test_deno_binary_is_executable() -> None:
    assert os.access(deno_binary(), os.X_OK)


def test_typescript_type_checks() -> None:
    files = [
        HOST_SCRIPT,
        FUNCTIONS_DIR / "bubble_sync" / "index.ts",
        *sorted(FIXTURE_FUNCTIONS.glob("*/index.ts")),
    ]
    result = subprocess.run(
        [deno_binary(), "check", "--quiet", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr

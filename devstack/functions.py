"""Run the local edge-function host (devstack/functions_host.ts) for the dev stack.

The host is Deno serving ``supabase/functions/<slug>/index.ts`` at ``<FUNCTIONS_URL>/<slug>``, like
Supabase's ``/functions/v1/<slug>``, each function in worker processes held to Supabase's CPU-time and
wall-clock limits (env ``EDGE_CPU_LIMIT_MS``, ``EDGE_WALL_CLOCK_LIMIT_MS``). These helpers give it the
environment Supabase gives a function, start it, wait until it is ready, and stop it (its workers
with it: they share its process group).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from devstack.processes import ProcessError, Started, spawn, stop

HOST_SCRIPT = Path(__file__).resolve().with_name("functions_host.ts")
URL_LINE_PREFIX = "FUNCTIONS_URL="
FUNCTIONS_PATH = "/functions/v1"
HEALTH_PATH = "/_internal/health"
# Variables the host needs to run at all; everything else must come from `env`, so functions never
# see a developer's unrelated secrets (cloud credentials, tokens) that they would not see on Supabase.
PASSTHROUGH_VARS = ("PATH", "HOME", "DENO_DIR")
LOG_TAIL_LINES = 40


class FunctionsHostError(RuntimeError):
    """The functions host could not be found, started, or did not become ready."""


def deno_binary() -> str:
    """Return the deno executable: the one installed in this venv, else the one on PATH."""
    # Not resolved: in a venv sys.executable is a symlink and deno sits next to the link.
    beside_python = Path(sys.executable).parent / "deno"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    on_path = shutil.which("deno")
    if on_path:
        return on_path
    raise FunctionsHostError(
        f"deno not found next to {sys.executable} nor on PATH; install the `deno` package from PyPI "
        "(`pip install deno`, part of this project's dev extra)"
    )


def runtime_env(
    *,
    supabase_url: str,
    db_url: str,
    service_role_key: str,
    anon_key: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the environment Supabase gives an Edge Function: its default secrets plus `extra`.

    `extra` holds the function's own secrets (e.g. BUBBLE_* settings). Like Supabase, names starting
    with SUPABASE_ are refused there, so the dev stack cannot rely on a secret production rejects.
    """
    env = {
        "SUPABASE_URL": supabase_url,
        "SUPABASE_DB_URL": db_url,
        "SUPABASE_SERVICE_ROLE_KEY": service_role_key,
    }
    if anon_key is not None:
        env["SUPABASE_ANON_KEY"] = anon_key
    for name, value in (extra or {}).items():
        if name.startswith("SUPABASE_"):
            raise ValueError(f"secret name {name!r} uses the SUPABASE_ prefix, which Supabase reserves")
        env[name] = value
    return env


def start_functions_host(
    *,
    functions_dir: Path,
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float = 30,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the host and wait until it serves; return the process and its FUNCTIONS_URL.

    `port` 0 lets the host pick a free port. The host's stderr (request and invocation lines, function
    logs) goes to `log_path`. On failure the process is killed and FunctionsHostError carries the log
    tail.
    """
    functions_dir = Path(functions_dir).resolve()
    if not functions_dir.is_dir():
        raise FunctionsHostError(f"functions directory {functions_dir} does not exist")
    # The host gives its workers --allow-read=<functions dir>,<host script>; Deno separates entries
    # with commas, so a comma would silently widen or break it.
    for path in (functions_dir, HOST_SCRIPT):
        if "," in str(path):
            raise FunctionsHostError(f"path {path} contains a comma, which --allow-read cannot express")
    # --allow-all for the router only: it starts the workers (--allow-run grants as much) and reads
    # their CPU time in /proc, which Deno allows only with --allow-all. Function code runs in the
    # workers, with --allow-net, --allow-env and that --allow-read.
    command = [
        deno_binary(),
        "run",
        "--no-prompt",
        "--allow-all",
        str(HOST_SCRIPT),
        "--functions-dir",
        str(functions_dir),
        "--port",
        str(port),
    ]
    child_env = {name: os.environ[name] for name in PASSTHROUGH_VARS if name in os.environ}
    child_env.update(env)
    try:
        proc, url = spawn(
            "functions host", command, env=child_env, log_path=log_path, ready_prefix=URL_LINE_PREFIX,
            timeout=timeout,
        )  # fmt: skip
    except ProcessError as exc:
        raise FunctionsHostError(str(exc)) from None
    assert url is not None
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2, trust_env=False) as client:
        while not _is_healthy(client, url):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                raise FunctionsHostError(
                    f"functions host at {url} never became healthy; {_log_tail(log_path)}"
                )
            time.sleep(0.05)
    return proc, url


def stop_process(proc_or_pid: subprocess.Popen[bytes] | int, timeout: float = 10) -> None:
    """SIGTERM the process group, wait up to `timeout`, then SIGKILL."""
    pid = proc_or_pid.pid if isinstance(proc_or_pid, subprocess.Popen) else proc_or_pid
    try:
        started = Started.of(pid)
    except (FileNotFoundError, ProcessLookupError):
        return
    stop(started, timeout=timeout)
    if isinstance(proc_or_pid, subprocess.Popen):
        proc_or_pid.wait(timeout=5)


def _is_healthy(client: httpx.Client, functions_url: str) -> bool:
    health_url = functions_url.removesuffix(FUNCTIONS_PATH) + HEALTH_PATH
    try:
        return client.get(health_url).status_code == 200
    except httpx.TransportError:
        return False


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError as exc:
        return f"log {log_path} unreadable: {exc}"
    return f"last lines of {log_path}:\n" + "\n".join(lines)

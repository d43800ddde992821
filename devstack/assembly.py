"""The one way to assemble a local stack: PostgreSQL with pg_cron, the pg_net worker double, Bubble (the
double, as a process or in-process, or an app given by URL) and the edge-function host, started in that
order, with the `local` stack's database objects applied on top (psql, or `pulumi up` in a workspace).

`devstack.stack.up` (`./dev up`), the benchmark (bench/stack.py) and the fault tests' rig
(tests/e2e_support.py) all build on `LocalStack`; each adds only what is its own (the devstack's stack.json,
the benchmark's job limit, the rig's kills and restarts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from components.config import KEYS, ConfigError, StackConfig
from components.function_env import function_env
from components.stack_file import load_stack_config
from devstack import functions
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster, free_port
from devstack.pgnet_worker import NetWorker
from devstack.processes import ProcessError, Started, spawn, stop
from devstack.pulumi_engine import Workspace
from devstack.stack_pulumi import configure_stack, up_stack
from devstack.stack_sql import apply_stack_sql

__all__ = ["BUBBLE_DOUBLE_PREFIX", "FUNCTIONS_DIR", "LOCAL_STACK", "LOCAL_STACK_NAME", "REPO_ROOT",
           "LocalStack", "StackError", "bubble_base_url", "function_host_env", "local_config",
           "split_secrets", "start_function_host", "start_pgnet_worker"]  # fmt: skip

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "supabase" / "functions"
# The stack whose database objects the devstack applies (rendered by `python -m components render-sql`).
LOCAL_STACK = REPO_ROOT / "Pulumi.local.yaml"
LOCAL_STACK_NAME = "local"
_SECRET_KEYS = {spec.name for spec in KEYS if spec.secret}
# The devstack's function talks to the double's development environment, as a dev stack would.
BUBBLE_DOUBLE_PREFIX = "/version-test/api/1.1"

#: wraps each part's start: `devstack.stack.step` names the part in progress lines and errors
Step = Callable[[str], AbstractContextManager[None]]


class StackError(RuntimeError):
    """A part of the local stack failed; the message names the part."""


def _quietly(part: str) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass
class LocalStack:
    """The parts of one local stack. `start` starts them in order; `stop` (or leaving its `with`) stops
    whatever is running, in reverse, and removes the cluster. Each part also has its own start and stop,
    for callers that break and restart one (the fault tests)."""

    cluster: Cluster
    logs: Path
    service_role_key: str
    bubble_token: str
    #: stack config overrides on top of Pulumi.local.yaml (bare keys, secrets included)
    config: Mapping[str, object] = field(default_factory=dict)
    functions_dir: Path = FUNCTIONS_DIR
    #: the function host's port, chosen before it starts: SUPABASE_URL (and Vault) must name it
    port: int = field(default_factory=free_port)
    #: the parts running as processes of their own, by name, in the order they started (stack.json's)
    processes: dict[str, Started] = field(default_factory=dict)
    bubble_url: str | None = None
    bubble_is_double: bool = False
    #: the Bubble double when it runs in this process
    double: BubbleDouble | None = None
    #: the pg_net worker when it runs in this process
    net_worker: NetWorker | None = None
    host: subprocess.Popen[bytes] | None = None
    functions_url: str | None = None

    @property
    def dsn(self) -> str:
        return self.cluster.dsn()

    @property
    def supabase_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bubble_base_url(self) -> str:
        assert self.bubble_url is not None, "Bubble is not there yet"
        return bubble_base_url(self.bubble_url, is_double=self.bubble_is_double)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- everything --------------------------------------------------------------------------------------

    def start(
        self,
        *,
        bubble: BubbleDouble | str | None = None,
        pgnet_in_process: bool = False,
        host_env: Callable[[], Mapping[str, str]] | None = None,
        step: Step = _quietly,
    ) -> LocalStack:
        """Starts PostgreSQL, the pg_net worker, Bubble and the function host; stops them all if one fails.

        bubble: None starts the double as a process; a BubbleDouble is started in this process; a URL is
        the Bubble app to sync to. host_env: makes the function host's environment once Bubble is there
        (default: function_host_env's).
        """
        try:
            with step("PostgreSQL with pg_cron"):
                self.cluster.create()
            with step("pg_net double (delivery worker)"):
                self.start_pgnet_worker(in_process=pgnet_in_process)
            if bubble is None:
                with step("Bubble double"):
                    self.start_bubble_double_process()
            elif isinstance(bubble, BubbleDouble):
                self.start_bubble_double(bubble)
            else:
                self.bubble_url, self.bubble_is_double = bubble, False
            with step("edge function host (Deno)"):
                self.start_function_host(None if host_env is None else host_env())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops every part, even when one will not stop, then raises StackError naming those that would
        not."""
        survivors = []
        try:
            self.stop_function_host()
        except ProcessError as exc:
            survivors.append(f"the function host: {exc}")
        for name, started in reversed(self.processes.items()):
            try:
                stop(started)
            except ProcessError as exc:
                survivors.append(f"{name}: {exc}")
        self.processes.clear()
        self.stop_pgnet_worker()
        if self.double is not None:
            self.double.stop()
        self.cluster.destroy()
        if survivors:
            raise StackError(f"could not stop {'; '.join(survivors)}")

    # -- the parts ---------------------------------------------------------------------------------------

    def start_pgnet_worker(self, *, in_process: bool = False) -> None:
        """The pg_net double's delivery worker: a process of its own, or a thread here (a test stops it)."""
        if in_process:
            self.net_worker = NetWorker(self.cluster.admin_dsn("postgres")).start()
        else:
            self.processes["pgnet_worker"] = start_pgnet_worker(self.cluster, self.logs)

    def stop_pgnet_worker(self) -> None:
        if self.net_worker is not None:
            self.net_worker.stop()
            self.net_worker = None

    def start_bubble_double_process(self) -> None:
        proc, url = spawn(
            "Bubble double",
            [sys.executable, "-m", "devstack.bubble_double", "--port", "0"],
            env=_child_env(BUBBLE_DOUBLE_TOKEN=self.bubble_token),
            log_path=self.logs / "bubble_double.log",
            ready_prefix="BUBBLE_URL=",
        )
        self.processes["bubble_double"] = Started.of(proc.pid)
        self.bubble_url, self.bubble_is_double = url, True

    def start_bubble_double(self, double: BubbleDouble) -> None:
        """The double in this process, its knobs and records at hand."""
        double.start()
        self.double = double
        self.bubble_url, self.bubble_is_double = double.url, True

    def function_host_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The function host's environment as a deploy of the `local` stack with `config` would set it,
        `extra` (more of the function's secrets) on top."""
        return function_host_env(
            supabase_url=self.supabase_url,
            database_url=self.dsn,
            service_role_key=self.service_role_key,
            bubble_base=self.bubble_base_url,
            bubble_token=self.bubble_token,
            config=self.config,
            extra=extra,
        )

    def start_function_host(self, env: Mapping[str, str] | None = None) -> None:
        self.host, self.functions_url = functions.start_functions_host(
            functions_dir=self.functions_dir,
            port=self.port,
            env=self.function_host_env() if env is None else env,
            log_path=self.logs / "functions_host.log",
        )
        self.processes["functions_host"] = Started.of(self.host.pid)

    def stop_function_host(self) -> None:
        host, self.host = self.host, None
        self.processes.pop("functions_host", None)
        if host is not None:
            functions.stop_process(host)

    def kill_function_host(self) -> None:
        """SIGKILL to the host's whole process group: no cleanup, no verdicts, sockets reset."""
        host, self.host = self.host, None
        self.processes.pop("functions_host", None)
        if host is None:
            return
        try:
            os.killpg(host.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        host.wait(timeout=10)

    # -- the database objects ----------------------------------------------------------------------------

    def apply_sql(self) -> None:
        """The `local` stack's objects with `config` on top, from the generated SQL with psql."""
        overrides, _ = split_secrets(self.config)
        apply_stack_sql(
            LOCAL_STACK,
            overrides=overrides,
            dsn=self.dsn,
            variables={"supabase_url": self.supabase_url, "service_role_key": self.service_role_key},
        )

    def apply_with_pulumi(self, workspace: Workspace) -> None:
        """The `local` stack's objects with `config` on top, by `pulumi up` in `workspace`."""
        overrides, secret_overrides = split_secrets(self.config)
        configure_stack(
            workspace,
            LOCAL_STACK_NAME,
            base_file=LOCAL_STACK,
            values={
                "supabaseUrl": self.supabase_url,
                "bubbleBaseUrl": self.bubble_base_url,
                "dbHost": "127.0.0.1",
                "dbPort": str(self.cluster.port),
                "dbUser": "postgres",
                **overrides,
            },
            secret_values={
                "dbPassword": self.cluster.password,
                "serviceRoleKey": self.service_role_key,
                "bubbleApiToken": self.bubble_token,
                **secret_overrides,
            },
        )
        up_stack(workspace, LOCAL_STACK_NAME)


# -- the `local` stack's settings ----------------------------------------------------------------------------


def split_secrets(config: Mapping[str, object]) -> tuple[dict[str, object], dict[str, str]]:
    """(the plain values, the secret keys' values): `pulumi config set` and `set --secret`."""
    plain = {key: value for key, value in config.items() if key not in _SECRET_KEYS}
    secret = {key: str(value) for key, value in config.items() if key in _SECRET_KEYS}
    return plain, secret


def local_config(overrides: Mapping[str, object], secret_overrides: Mapping[str, str]) -> StackConfig:
    """Pulumi.local.yaml with values set on top, validated; a bad one is a StackError naming the key."""
    try:
        return load_stack_config(LOCAL_STACK, overrides=overrides, secret_overrides=secret_overrides)
    except ConfigError as exc:
        raise StackError(f"--config: {exc}") from None


def bubble_base_url(bubble_url: str, *, is_double: bool) -> str:
    """The function's `bubbleBaseUrl`: on the double, its development environment, as a dev stack's."""
    return bubble_url.rstrip("/") + BUBBLE_DOUBLE_PREFIX if is_double else bubble_url


def function_host_env(
    *,
    supabase_url: str,
    database_url: str,
    service_role_key: str,
    bubble_base: str,
    bubble_token: str,
    config: Mapping[str, object],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The function host's environment: what Supabase gives a function, plus the function's secrets as a
    deploy of the `local` stack (Pulumi.local.yaml with `config` on top) would set them, `extra` on top."""
    overrides, secret_overrides = split_secrets(config)
    local = local_config(
        {**overrides, "supabaseUrl": supabase_url, "bubbleBaseUrl": bubble_base},
        {"bubbleApiToken": bubble_token, **secret_overrides},
    )
    return functions.runtime_env(
        supabase_url=supabase_url,
        db_url=database_url,
        service_role_key=service_role_key,
        extra={**{name: str(value) for name, value in function_env(local).items()}, **(extra or {})},
    )


# -- processes of their own ----------------------------------------------------------------------------------


def start_function_host(logs: Path, *, port: int, env: Mapping[str, str]) -> tuple[Started, str]:
    """The edge-function host on `port` with `env`; returns it and its FUNCTIONS_URL."""
    proc, functions_url = functions.start_functions_host(
        functions_dir=FUNCTIONS_DIR, port=port, env=env, log_path=logs / "functions_host.log"
    )
    return Started.of(proc.pid), functions_url


def start_pgnet_worker(cluster: Cluster, logs: Path) -> Started:
    """The pg_net double's delivery worker for the cluster's `postgres` database, once it is connected."""
    proc, _ = spawn(
        "pg_net worker",
        [sys.executable, "-m", "devstack.pgnet_worker", "--dsn", cluster.admin_dsn("postgres")],
        env=_child_env(),
        log_path=logs / "pgnet_worker.log",
    )
    started = Started.of(proc.pid)
    try:
        _wait_until(lambda: _pg_net_worker_is_up(cluster.dsn()), "the pg_net worker to connect", logs)
    except BaseException:
        stop(started)
        raise
    return started


def _child_env(**extra: str) -> dict[str, str]:
    """Environment for our Python children: enough to run, nothing inherited by accident."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TZ") if key in os.environ}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _pg_net_worker_is_up(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("select net.check_worker_is_up()")
        except psycopg.Error:
            return False
    return True


def _wait_until(check: Callable[[], bool], what: str, logs: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise StackError(f"timed out waiting for {what}; see {logs}")

"""The local stack: PostgreSQL with pg_cron, the pg_net and Vault doubles, the Bubble double and the
edge-function host, started together and stopped together, with the `local` stack's database objects
(queue, functions, Vault secrets, cron jobs) applied by the real `pulumi up` when this machine has the
Pulumi engine (devstack/pulumi_engine.py), else from the same generated SQL with psql (`render-sql`).

Everything a later `down` or `status` needs is kept in <state dir>/stack.json (mode 600: it holds the
generated keys); the Pulumi workspace of the `local` stack (its config, state and passphrase) in
<state dir>/pulumi, removed by `down` with the database it describes. Progress goes to stderr; `up` prints
the connection lines on stdout.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from components.config import KEYS, ConfigError, StackConfig
from components.function_env import function_env
from components.stack_file import load_stack_config
from devstack import functions
from devstack.cluster import Cluster, free_port
from devstack.processes import Started, is_alive, spawn, stop
from devstack.pulumi_engine import Engine, Workspace, find_engine
from devstack.stack_pulumi import configure_stack, up_stack
from devstack.stack_sql import apply_stack_sql

__all__ = ["LOCAL_STACK", "LOCAL_STACK_NAME", "AlreadyUp", "StackError", "StackInfo", "bubble_base_url",
           "down", "function_host_env", "load", "local_config", "local_workspace", "progress", "save",
           "split_secrets", "start_function_host", "start_pgnet_worker", "status", "step", "up"]  # fmt: skip

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "supabase" / "functions"
# The stack whose database objects the devstack applies (rendered by `python -m components render-sql`).
LOCAL_STACK = REPO_ROOT / "Pulumi.local.yaml"
LOCAL_STACK_NAME = "local"
STATE_FILE = "stack.json"
#: the `local` stack's Pulumi workspace, inside the state directory
PULUMI_DIR = "pulumi"
_SECRET_KEYS = {spec.name for spec in KEYS if spec.secret}
# The devstack's function talks to the double's development environment, as a dev stack would.
BUBBLE_DOUBLE_PREFIX = "/version-test/api/1.1"


class StackError(RuntimeError):
    """A part of the local stack failed; the message names the part."""


@dataclass
class StackInfo:
    """What `up` started, as saved in stack.json."""

    database_url: str
    functions_url: str
    bubble_url: str
    bubble_is_double: bool
    service_role_key: str
    bubble_token: str
    processes: dict[str, Started] = field(default_factory=dict)
    #: how the stack's database objects were applied: "pulumi up (pulumi v3.x)" or "psql (render-sql)"
    applied_with: str = "psql (render-sql)"
    #: the values set on top of Pulumi.local.yaml (`--config`, `--config-file`; bare keys, secrets included:
    #: this file is mode 600), which a later `up --config-file` merges its own over
    config: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> StackInfo:
        data = json.loads(text)
        data["processes"] = {name: Started(**p) for name, p in data["processes"].items()}
        return cls(**data)

    @property
    def supabase_url(self) -> str:
        """The function host's address, as the stack's `supabaseUrl` (and Vault) holds it."""
        return self.functions_url.removesuffix(functions.FUNCTIONS_PATH)

    @property
    def bubble_base_url(self) -> str:
        """The function's `bubbleBaseUrl`: the double's development environment, or the app given."""
        return bubble_base_url(self.bubble_url, is_double=self.bubble_is_double)

    def connection_lines(self) -> list[str]:
        lines = [f"DATABASE_URL={self.database_url}", f"FUNCTIONS_URL={self.functions_url}"]
        if self.bubble_is_double:
            lines.append(f"BUBBLE_URL={self.bubble_url}")
        return lines


def load(state_dir: Path) -> StackInfo | None:
    try:
        return StackInfo.from_json((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None


def up(
    state_dir: Path,
    *,
    bubble_url: str | None = None,
    bubble_token: str | None = None,
    config: Mapping[str, object] | None = None,
    engine: Engine | None | bool = True,
) -> StackInfo:
    """Starts every part, or raises StackError naming the part that failed (after cleaning up).

    config: stack config overrides (bare keys), applied like `pulumi config set` on top of Pulumi.local.yaml:
    text, or a list or map (structured config, e.g. `mappings`).
    engine: True (default) applies the `local` stack with the Pulumi engine if this machine has one, else
    with psql; False always with psql; an Engine uses that one.
    """
    state_dir = state_dir.resolve()
    overrides, secret_overrides = split_secrets(config or {})
    local_config(overrides, secret_overrides)  # unknown keys and bad values fail here, before anything starts
    if engine is True:
        engine = find_engine()
    elif engine is False:
        engine = None
    if engine is None and secret_overrides:
        raise StackError(
            f"--config {', '.join(sorted(secret_overrides))}: secrets can only be set on the "
            "`local` stack with the Pulumi engine (scripts/setup builds it when Go is installed)"
        )
    existing = load(state_dir)
    if existing is not None:
        dead = [name for name, p in existing.processes.items() if not is_alive(p)]
        if not dead and Cluster(state_dir).is_running():
            raise AlreadyUp(existing)
        progress(
            f"found a stale devstack in {state_dir} ({', '.join(dead) or 'postgres'} not running);"
            " removing it"
        )
        down(state_dir)

    if local_config(overrides, secret_overrides).mappings:
        raise StackError(
            "bubble-sync:mappings: a new devstack's database has none of your tables yet: start it with"
            ' `./dev up`, create them (psql "$DATABASE_URL"), then `./dev up --config-file FILE` maps them'
        )
    if bubble_url is not None and not bubble_token:
        raise StackError(
            "--bubble-url needs the Bubble API token in the environment variable BUBBLE_API_TOKEN"
        )

    state_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(state_dir)
    logs = state_dir / "logs"
    processes: dict[str, Started] = {}
    try:
        with step("PostgreSQL with pg_cron"):
            cluster.create()

        with step("pg_net double (delivery worker)"):
            processes["pgnet_worker"] = start_pgnet_worker(cluster, logs)

        token = bubble_token or secrets.token_hex(16)
        if bubble_url is None:
            with step("Bubble double"):
                proc, bubble_url = spawn(
                    "Bubble double",
                    [sys.executable, "-m", "devstack.bubble_double", "--port", "0"],
                    env=_child_env(BUBBLE_DOUBLE_TOKEN=token),
                    log_path=logs / "bubble_double.log",
                    ready_prefix="BUBBLE_URL=",
                )
                processes["bubble_double"] = Started.of(proc.pid)
        assert bubble_url is not None

        service_role_key = "sb_secret_devstack_" + secrets.token_urlsafe(24)
        with step("edge function host (Deno)"):
            # SUPABASE_URL must be known before the host starts, so its port is chosen here.
            port = free_port()
            supabase_url = f"http://127.0.0.1:{port}"
            bubble_base = bubble_base_url(bubble_url, is_double="bubble_double" in processes)
            # The function runs on the `local` stack's settings, as a deploy of that stack would set them.
            env = function_host_env(
                supabase_url=supabase_url,
                database_url=cluster.dsn(),
                service_role_key=service_role_key,
                bubble_base=bubble_base,
                bubble_token=token,
                config=config or {},
            )
            processes["functions_host"], functions_url = start_function_host(logs, port=port, env=env)

        if engine is not None:
            version = engine.version()
            with step(f"bubble-sync database objects: pulumi up (stack {LOCAL_STACK_NAME}, {version})"):
                workspace = local_workspace(state_dir, engine)
                configure_stack(
                    workspace,
                    LOCAL_STACK_NAME,
                    base_file=LOCAL_STACK,
                    values={
                        "supabaseUrl": supabase_url,
                        "bubbleBaseUrl": bubble_base,
                        "dbHost": "127.0.0.1",
                        "dbPort": str(cluster.port),
                        "dbUser": "postgres",
                        **overrides,
                    },
                    secret_values={
                        "dbPassword": cluster.password,
                        "serviceRoleKey": service_role_key,
                        "bubbleApiToken": token,
                        **secret_overrides,
                    },
                )
                up_stack(workspace, LOCAL_STACK_NAME)
            applied_with = f"pulumi up ({version})"
        else:
            with step(f"bubble-sync database objects: psql (stack {LOCAL_STACK_NAME}, no Pulumi engine)"):
                apply_stack_sql(
                    LOCAL_STACK,
                    overrides=overrides,
                    dsn=cluster.dsn(),
                    variables={"supabase_url": supabase_url, "service_role_key": service_role_key},
                )
            applied_with = "psql (render-sql)"

        info = StackInfo(
            database_url=cluster.dsn(),
            functions_url=functions_url,
            bubble_url=bubble_url,
            bubble_is_double="bubble_double" in processes,
            service_role_key=service_role_key,
            bubble_token=token,
            processes=processes,
            applied_with=applied_with,
            config=dict(config or {}),
        )
        save(state_dir, info)
        return info
    except BaseException:
        for started in processes.values():
            stop(started)
        cluster.destroy()
        _remove_state(state_dir)
        raise


def split_secrets(config: Mapping[str, object]) -> tuple[dict[str, object], dict[str, str]]:
    """(the plain values, the secret keys' values): `pulumi config set` and `set --secret`."""
    plain = {key: value for key, value in config.items() if key not in _SECRET_KEYS}
    secret = {key: str(value) for key, value in config.items() if key in _SECRET_KEYS}
    return plain, secret


def save(state_dir: Path, info: StackInfo) -> None:
    """Writes stack.json, readable only by its owner (it holds the generated keys)."""
    state_file = state_dir / STATE_FILE
    state_file.write_text(info.to_json())
    state_file.chmod(0o600)


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
) -> dict[str, str]:
    """The function host's environment: what Supabase gives a function, plus the function's secrets as a
    deploy of the `local` stack (Pulumi.local.yaml with `config` on top) would set them."""
    overrides, secret_overrides = split_secrets(config)
    local = local_config(
        {**overrides, "supabaseUrl": supabase_url, "bubbleBaseUrl": bubble_base},
        {"bubbleApiToken": bubble_token, **secret_overrides},
    )
    return functions.runtime_env(
        supabase_url=supabase_url,
        db_url=database_url,
        service_role_key=service_role_key,
        extra={name: str(value) for name, value in function_env(local).items()},
    )


def start_function_host(logs: Path, *, port: int, env: Mapping[str, str]) -> tuple[Started, str]:
    """The edge-function host on `port` with `env`; returns it and its FUNCTIONS_URL."""
    proc, functions_url = functions.start_functions_host(
        functions_dir=FUNCTIONS_DIR, port=port, env=env, log_path=logs / "functions_host.log"
    )
    return Started.of(proc.pid), functions_url


def local_workspace(state_dir: Path, engine: Engine) -> Workspace:
    """The `local` stack's Pulumi workspace; the committed stack files other than local's are linked in."""
    committed = [
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO_ROOT.glob("Pulumi.*.yaml")
    ]
    linked = [stack for stack in committed if stack != LOCAL_STACK_NAME]
    return Workspace(state_dir.resolve() / PULUMI_DIR, engine).prepare(linked_stacks=linked)


def local_config(overrides: Mapping[str, object], secret_overrides: Mapping[str, str]) -> StackConfig:
    """Pulumi.local.yaml with values set on top, validated; a bad one is a StackError naming the key."""
    try:
        return load_stack_config(LOCAL_STACK, overrides=overrides, secret_overrides=secret_overrides)
    except ConfigError as exc:
        raise StackError(f"--config: {exc}") from None


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


def down(state_dir: Path) -> bool:
    """Stops everything `up` started and removes the state. Returns False if nothing was there."""
    state_dir = state_dir.resolve()
    info = load(state_dir)
    cluster = Cluster(state_dir)
    if info is None and not cluster.exists():
        return False
    for name, started in reversed(list((info.processes if info else {}).items())):
        progress(f"stopping {name} (pid {started.pid})")
        stop(started)
    progress("stopping PostgreSQL")
    cluster.destroy()
    _remove_state(state_dir)
    return True


def status(state_dir: Path) -> dict[str, bool]:
    """Which parts are running: an empty dict when there is no stack in `state_dir`."""
    state_dir = state_dir.resolve()
    info = load(state_dir)
    if info is None:
        return {}
    parts = {"postgres": Cluster(state_dir).is_running()}
    parts.update({name: is_alive(started) for name, started in info.processes.items()})
    return parts


class AlreadyUp(StackError):
    def __init__(self, info: StackInfo) -> None:
        super().__init__("the devstack is already up")
        self.info = info


# -- helpers -----------------------------------------------------------------------------------------------


@contextmanager
def step(part: str) -> Iterator[None]:
    started = time.monotonic()
    progress(f"starting {part} …")
    try:
        yield
    except StackError:
        raise
    except Exception as exc:
        raise StackError(f"{part} failed: {exc}") from exc
    progress(f"  {part}: ready in {time.monotonic() - started:.1f} s")


def progress(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


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


def _remove_state(state_dir: Path) -> None:
    """Removes only what the devstack wrote, so a --state-dir pointing at a shared folder is safe."""
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(state_dir / "logs", ignore_errors=True)
    # The `local` stack's state describes the database that just went away.
    shutil.rmtree(state_dir / PULUMI_DIR, ignore_errors=True)
    try:
        state_dir.rmdir()
    except OSError:
        pass  # not empty: something else lives there

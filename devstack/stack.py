"""The local stack: PostgreSQL with pg_cron, the pg_net and Vault doubles, the Bubble double and the
edge-function host, started together and stopped together, with the `local` stack's database objects
(queue, functions, Vault secrets, cron jobs) applied by the real `pulumi up` when this machine has the
Pulumi engine (devstack/pulumi_engine.py), else from the same generated SQL with psql (`render-sql`).

Everything a later `down` or `status` needs is kept in <state dir>/stack.json (mode 600: it holds the
generated keys); the Pulumi workspace of the `local` stack (its config, state and passphrase) in
<state dir>/pulumi, removed by `down` with the database it describes. Progress goes to stderr; `up` prints
the connection lines on stdout. The parts are started by devstack/assembly.py's LocalStack, as the benchmark's
and the fault tests' stacks are.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devstack import functions
from devstack.assembly import (
    BUBBLE_DOUBLE_PREFIX,
    FUNCTIONS_DIR,
    LOCAL_STACK,
    LOCAL_STACK_NAME,
    REPO_ROOT,
    LocalStack,
    StackError,
    bubble_base_url,
    function_host_env,
    local_config,
    split_secrets,
    start_function_host,
    start_pgnet_worker,
)
from devstack.cluster import Cluster
from devstack.processes import ProcessError, Started, is_alive, stop
from devstack.pulumi_engine import Engine, Workspace, find_engine

# The assembly's names are re-exported: they were this module's; the devstack CLI and tests use them here.
__all__ = ["BUBBLE_DOUBLE_PREFIX", "FUNCTIONS_DIR", "LOCAL_STACK", "LOCAL_STACK_NAME", "REPO_ROOT",
           "AlreadyUp", "StackError", "StackInfo", "bubble_base_url", "down", "function_host_env", "load",
           "local_config", "local_workspace", "progress", "save", "split_secrets", "start_function_host",
           "start_pgnet_worker", "status", "step", "up"]  # fmt: skip

STATE_FILE = "stack.json"
#: the `local` stack's Pulumi workspace, inside the state directory
PULUMI_DIR = "pulumi"


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
    stack = LocalStack(
        Cluster(state_dir),
        state_dir / "logs",
        service_role_key="sb_secret_devstack_" + secrets.token_urlsafe(24),
        bubble_token=bubble_token or secrets.token_hex(16),
        config=config or {},
    )
    try:
        stack.start(bubble=bubble_url, step=step)
        if engine is not None:
            version = engine.version()
            with step(f"bubble-sync database objects: pulumi up (stack {LOCAL_STACK_NAME}, {version})"):
                stack.apply_with_pulumi(local_workspace(state_dir, engine))
            applied_with = f"pulumi up ({version})"
        else:
            with step(f"bubble-sync database objects: psql (stack {LOCAL_STACK_NAME}, no Pulumi engine)"):
                stack.apply_sql()
            applied_with = "psql (render-sql)"

        assert stack.bubble_url is not None and stack.functions_url is not None
        info = StackInfo(
            database_url=stack.dsn,
            functions_url=stack.functions_url,
            bubble_url=stack.bubble_url,
            bubble_is_double=stack.bubble_is_double,
            service_role_key=stack.service_role_key,
            bubble_token=stack.bubble_token,
            processes=dict(stack.processes),
            applied_with=applied_with,
            config=dict(config or {}),
        )
        save(state_dir, info)
        return info
    except BaseException:
        stack.stop()
        _remove_state(state_dir)
        raise


def save(state_dir: Path, info: StackInfo) -> None:
    """Writes stack.json, readable only by its owner (it holds the generated keys)."""
    state_file = state_dir / STATE_FILE
    state_file.write_text(info.to_json())
    state_file.chmod(0o600)


def local_workspace(state_dir: Path, engine: Engine) -> Workspace:
    """The `local` stack's Pulumi workspace; the committed stack files other than local's are linked in."""
    committed = [
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO_ROOT.glob("Pulumi.*.yaml")
    ]
    linked = [stack for stack in committed if stack != LOCAL_STACK_NAME]
    return Workspace(state_dir.resolve() / PULUMI_DIR, engine).prepare(linked_stacks=linked)


def down(state_dir: Path) -> bool:
    """Stops everything `up` started and removes the state. Returns False if nothing was there."""
    state_dir = state_dir.resolve()
    info = load(state_dir)
    cluster = Cluster(state_dir)
    if info is None and not cluster.exists():
        return False
    survivors = []
    for name, started in reversed(list((info.processes if info else {}).items())):
        progress(f"stopping {name} (pid {started.pid})")
        try:
            stop(started)
        except ProcessError as exc:  # stop the others all the same
            survivors.append(f"{name}: {exc}")
    progress("stopping PostgreSQL")
    cluster.destroy()
    if survivors:
        # The state keeps their pids, so that `down` can be run again once they can be stopped.
        raise StackError(f"could not stop {'; '.join(survivors)}; {state_dir} is kept: run `down` again")
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

"""What the real-engine tests share: the engine (or a clear skip), a Pulumi workspace on a fresh PostgreSQL
cluster, the README's and the workflows' own `pulumi` commands, and a recorder of every CLI output so a test
can prove no secret was printed.

The engine is `devstack.pulumi_engine.find_engine()`: the user's `pulumi`, or the one scripts/engine/build
made. Without one the tests are skipped with the reason, and the session's summary says so plainly; with
`BUBBLE_SYNC_REQUIRE_ENGINE=1` (what `.ci/run` sets) they fail instead.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from devstack.cluster import Cluster
from devstack.pulumi_engine import Engine, Workspace, find_engine
from tests.management_api_double import ManagementApiDouble
from tests.markdown_support import stack_setup_block

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
REQUIRE_ENGINE = "BUBBLE_SYNC_REQUIRE_ENGINE"
NO_ENGINE = (
    "no Pulumi engine on this machine (no `pulumi` on PATH, and no .engine/bin from scripts/engine/build, "
    "which needs Go >= 1.26.6): the real-engine tests did not run"
)
#: `pulumi up`/`destroy` prompt for confirmation; without a terminal the CLI needs these instead
CONFIRM = ("--yes", "--non-interactive")


def engine_or_skip() -> Engine:
    engine = find_engine()
    if engine is None:
        if os.environ.get(REQUIRE_ENGINE) == "1":
            pytest.fail(f"{NO_ENGINE}, and {REQUIRE_ENGINE}=1 requires them", pytrace=False)
        pytest.skip(NO_ENGINE)
    return engine


@dataclass
class Cli:
    """A workspace plus everything its commands printed (checked for secrets at the end)."""

    workspace: Workspace
    env: dict[str, str | None] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)

    def run(self, args: Sequence[str], *, input: str | None = None, timeout: float = 600) -> Result:
        result = self.workspace.run(args, input=input, extra_env=self.env, timeout=timeout)
        self.transcript.append(f"$ pulumi {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        return Result(list(args), result)

    def ok(self, args: Sequence[str], *, input: str | None = None) -> str:
        """The command's standard output; it must succeed."""
        result = self.run(args, input=input)
        assert result.code == 0, result.output
        return result.completed.stdout

    def shell_line(self, line: str, *, values: Mapping[str, str], variables: Mapping[str, str]) -> Result:
        """Runs one `pulumi ...` line as written in the README or a workflow: `$VAR`s from `variables`;
        a `config set KEY` with the README's placeholder or no value gets `values[KEY]` (on stdin when the
        line gives none, as a user types it at the prompt); `up`/`destroy` get the confirmation flags."""
        words = shlex.split(_expand(line.split(" #", 1)[0], variables))
        assert words[0] == "pulumi", line
        args = words[1:]
        stdin = None
        if args[:2] == ["config", "set"]:
            key = next(w for w in args[2:] if not w.startswith("-"))
            positional = [w for w in args[2:] if not w.startswith("-")]
            if len(positional) == 1:
                stdin = values[key]
            else:
                args = [*args[: args.index(positional[1])], values[key]]
        if args[0] in ("up", "destroy") and "--yes" not in args:
            args += CONFIRM
        return self.run(args, input=stdin)


@dataclass
class Result:
    args: list[str]
    completed: subprocess.CompletedProcess[str]

    @property
    def code(self) -> int:
        return self.completed.returncode

    @property
    def output(self) -> str:
        head = f"$ pulumi {' '.join(self.args)} (exit {self.code})"
        return f"{head}\n{self.completed.stdout}{self.completed.stderr}"


def _expand(text: str, variables: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), text)


# -- a database of its own -----------------------------------------------------------------------------------


@dataclass
class Postgres:
    """A fresh cluster: the stack needs the `postgres` database, the only one pg_cron runs jobs in."""

    cluster: Cluster

    @property
    def dsn(self) -> str:
        return self.cluster.dsn()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(sql, params or None)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


@contextmanager
def fresh_postgres(path: Path) -> Iterator[Postgres]:
    cluster = Cluster(path)
    cluster.create()
    try:
        yield Postgres(cluster)
    finally:
        cluster.destroy()


# -- the commands of the README and the workflows ------------------------------------------------------------


def readme_flow() -> list[str]:
    """The `pulumi` lines of the README's block that sets up a stack (`pulumi stack init dev` ...)."""
    block = stack_setup_block()
    return [line.strip() for line in block.splitlines() if line.strip().startswith("pulumi ")]


def workflow_command(file: str, step_name: str) -> list[str]:
    """The `pulumi` command a workflow step runs, as CLI arguments (without `pulumi`).

    A `pulumi/actions` step is translated as the action runs it (Automation API: non-interactive, `--yes` for
    up/refresh/destroy): `command`, then `--refresh`, `--diff`, `--expect-no-changes` from its inputs. A `run`
    step gives its `pulumi ...` command line (continuation lines joined), `$STACK` left for the caller.
    """
    workflow = yaml.safe_load((WORKFLOWS / file).read_text())
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    step = next(s for s in steps if s.get("name") == step_name)
    if str(step.get("uses", "")).startswith("pulumi/actions@"):
        inputs = step["with"]
        args = [inputs["command"]]
        for flag in ("refresh", "diff", "expect-no-changes"):
            if str(inputs.get(flag, "false")).lower() == "true":
                args.append(f"--{flag}")
        if inputs["command"] in ("up", "refresh", "destroy"):
            args.append("--yes")
        return [*args, "--non-interactive", "--stack", "$STACK"]
    script = step["run"].replace("\\\n", " ")
    line = next(line.strip() for line in script.splitlines() if line.strip().startswith("pulumi "))
    return shlex.split(line.split(">", 1)[0])[1:]


def drift_exit_codes() -> dict[int, str]:
    """The exit codes drift.yml's preview step tells apart, from its `case` (0 clean, 7 drift, ...)."""
    workflow = yaml.safe_load((WORKFLOWS / "drift.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    script = next(s for s in steps if s.get("id") == "preview")["run"]
    return {int(code): result for code, result in re.findall(r"^\s*(\d+)\) result=(\w+);", script, re.M)}


def secrets_in(text: str, secrets: Mapping[str, str]) -> list[str]:
    """The names of the secrets whose values appear in `text`."""
    return sorted(name for name, value in secrets.items() if value and value in text)


# -- a stack made the README's way ------------------------------------------------------------------------

#: the project ref and stack name the engine tests deploy as (the stack is the README's)
REF = "enginetestprojectref"
STACK = "dev"


def stack_values(
    postgres: Postgres, api: ManagementApiDouble, token: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(every value the README's commands and the local extras set, the secret ones among them)."""
    secret_values = {
        "dbPassword": postgres.cluster.password,
        "serviceRoleKey": "sb_secret_enginetest_" + secrets.token_urlsafe(16),
        "bubbleApiToken": "bubble-token-" + secrets.token_hex(12),
        "supabaseAccessToken": token,
    }
    values = {
        "projectRef": REF,
        "dbHost": "127.0.0.1",
        "dbUser": "postgres",
        "bubbleBaseUrl": "https://enginetest.bubbleapps.io/version-test/api/1.1",
        # the local extras (see the module docstring)
        "dbPort": str(postgres.cluster.port),
        "dbSslMode": "disable",
        "supabaseUrl": "http://127.0.0.1:54321",
        "managementApiUrl": api.url,
        "manageExtensions": "false",
        **secret_values,
    }
    return values, secret_values


LOCAL_EXTRAS = ("dbPort", "dbSslMode", "supabaseUrl", "managementApiUrl", "manageExtensions")


def new_cli(engine: Engine, root: Path) -> Cli:
    # Nothing from the caller's environment may stand in for the stack's config.
    env: dict[str, str | None] = {
        var: None
        for var in (
            "SUPABASE_ACCESS_TOKEN",
            "SUPABASE_MANAGEMENT_API_URL",
            "BUBBLE_SYNC_DATABASE_URL",
            "PGPASSWORD",
        )
    }
    return Cli(Workspace(root, engine).prepare(), env=env)


def make_stack_the_readme_way(cli: Cli, values: dict[str, str], *, stack: str = STACK) -> dict[str, str]:
    """Runs the README's flow up to (not including) `preview`, plus the local extras; returns the outputs of
    the commands that failed (none, when all is well)."""
    failures = {}
    for line in readme_flow():
        words = line.split()
        if words[1] in ("preview", "up"):
            break
        line = line.replace("stack init dev", f"stack init {stack}")
        result = cli.shell_line(line, values=values, variables={})
        if result.code != 0:
            failures[line] = result.output
    # one command for all of them (none is a secret): each CLI start costs a few hundred ms of CPU
    pairs = [arg for key in LOCAL_EXTRAS for arg in ("--plaintext", f"{key}={values[key]}")]
    result = cli.run(["config", "set-all", "--stack", stack, *pairs])
    if result.code != 0:
        failures[" ".join(LOCAL_EXTRAS)] = result.output
    return failures

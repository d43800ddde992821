"""The real Pulumi engine on this machine, and a workspace to run the project with it against a local file
backend: what `./dev pulumi`, `./dev up` and the real-engine tests use.

`find_engine()` prefers the user's own `pulumi` on PATH (the official distribution, with its language host
and plugins); otherwise the engine `scripts/engine/build` made from Go modules in `.engine/bin`; otherwise
None (no Go, no `pulumi`).

A `Workspace` is a directory that looks like the project to the CLI: links to `Pulumi.yaml`, `__main__.py`,
`components/`, `sql/`, `supabase/` and `.venv` in this repository, so the CLI runs the repository's program,
plus stack files of its own. Stacks whose config this machine generates (the devstack's `local` stack with
its ports and keys, the tests' stacks) live there instead of dirtying the repository; committed stack files
can be linked in, so `./dev pulumi config set ... --stack dev` edits `Pulumi.dev.yaml` as a user expects.
State goes to a file backend inside the workspace, secrets are encrypted with a passphrase kept there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENGINE_BIN", "Engine", "Workspace", "find_engine"]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: where scripts/engine/build puts the engine it builds
ENGINE_BIN = REPO_ROOT / ".engine" / "bin"
VENV = REPO_ROOT / ".venv"
#: what a workspace links from the repository: the project file, the program and what it reads at run time
PROJECT_ENTRIES = ("Pulumi.yaml", "__main__.py", "components", "sql", "supabase", ".venv")


@dataclass(frozen=True)
class Engine:
    """A Pulumi CLI. `built`: ours from scripts/engine/build (its directory goes first on PATH, for the
    language host and the dynamic-provider launcher beside it), rather than the user's own installation."""

    pulumi: Path
    built: bool

    def version(self) -> str:
        result = subprocess.run([str(self.pulumi), "version"], capture_output=True, text=True, timeout=60)
        return result.stdout.strip()


def find_engine(path: str | None = None) -> Engine | None:
    """The user's `pulumi` on PATH, else the built one, else None."""
    search = os.environ.get("PATH", "") if path is None else path
    dirs = [d for d in search.split(os.pathsep) if d and Path(d).resolve() != ENGINE_BIN.resolve()]
    own = shutil.which("pulumi", path=os.pathsep.join(dirs))
    if own:
        return Engine(Path(own), built=False)
    if (ENGINE_BIN / "pulumi").is_file() and (ENGINE_BIN / "pulumi-language-python").is_file():
        return Engine(ENGINE_BIN / "pulumi", built=True)
    return None


class Workspace:
    """A project directory for the CLI under `root`, with its own file backend and passphrase."""

    def __init__(self, root: Path, engine: Engine) -> None:
        self.root = root.resolve()
        self.engine = engine
        self.project_dir = self.root / "project"
        self.backend_dir = self.root / "backend"
        self.home = self.root / "home"
        self._passphrase_file = self.root / "passphrase"

    def prepare(self, linked_stacks: Iterable[str] = (), *, source: Path = REPO_ROOT) -> Workspace:
        """Creates the directories and links (again, if they exist); `linked_stacks` are committed stack
        files (`Pulumi.<name>.yaml`) to use in place rather than a copy. `source` is the tree whose program
        the links point at: another release's, unpacked, to deploy that release (the virtualenv is always
        this repository's; put `source` first on PYTHONPATH too, so its `components` is the one imported)."""
        for directory in (self.project_dir, self.backend_dir, self.home):
            directory.mkdir(parents=True, exist_ok=True)
        names = [*PROJECT_ENTRIES, *(f"Pulumi.{stack}.yaml" for stack in linked_stacks)]
        for name in names:
            link = self.project_dir / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to((REPO_ROOT if name == ".venv" else source) / name)
        if not self._passphrase_file.exists():
            self._passphrase_file.write_text(secrets.token_urlsafe(24))
            self._passphrase_file.chmod(0o600)
        return self

    def stack_file(self, stack: str) -> Path:
        return self.project_dir / f"Pulumi.{stack}.yaml"

    def environment(self, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The environment to run the CLI with: this one's, plus the workspace's backend and passphrase, the
        project's virtualenv, and (for the built engine) its directory first on PATH and no plugin
        downloads; then `extra` (a None value removes the variable)."""
        env = dict(os.environ)
        env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        env.update(
            PULUMI_BACKEND_URL=self.backend_dir.as_uri(),
            PULUMI_CONFIG_PASSPHRASE=self._passphrase_file.read_text(),
            PULUMI_SKIP_UPDATE_CHECK="true",
            # The built language host predates runtime options sent by RPC: this is its interpreter.
            PULUMI_PYTHON_CMD=str(VENV / "bin" / "python"),
        )
        # The CLI and the language host are Go programs that live for one command and allocate most at
        # start (about 0.14 s of package init): collecting garbage a quarter as often saved 0.05 s of CPU a
        # start and about 4 % of a `preview` + `up` (measured on 2 cores). A GOGC of the caller's is kept.
        env.setdefault("GOGC", "400")
        path = [str(VENV / "bin"), env.get("PATH", "")]
        if self.engine.built:
            path.insert(0, str(self.engine.pulumi.parent))
            # Nothing to download plugins from (and no postgresql plugin to find): fail at use, not at start.
            env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
            env["PULUMI_HOME"] = str(self.home)
        env["PATH"] = os.pathsep.join(p for p in path if p)
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def command(self, args: Sequence[str]) -> list[str]:
        return [str(self.engine.pulumi), *args]

    def run(
        self,
        args: Sequence[str],
        *,
        input: str | None = None,
        extra_env: Mapping[str, str | None] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Runs `pulumi ARGS` in the project directory; never raises for a non-zero exit."""
        return subprocess.run(
            self.command(args),
            cwd=self.project_dir,
            env=self.environment(extra_env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

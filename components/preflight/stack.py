"""The stack preflight checks: `Pulumi.<stack>.yaml` read and validated as `render-sql` and `status` read it
(`components/stack_file.py`), plus the one thing those two do not need and `pulumi up` does: every key
without a default is set. Anything wrong here is exit 2, before any check runs.

Encrypted (`secure:`) values cannot be read without the stack's secrets provider, so the secrets come from
the environment, as for `status`: the database password from $PGPASSWORD or $BUBBLE_SYNC_DATABASE_URL, the
access token from $SUPABASE_ACCESS_TOKEN (each check says which `pulumi config get` gives it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from components.config import KEYS, ConfigError, ConfigProblem
from components.errors import SettingsError
from components.preflight.checks import Context
from components.stack_file import load_stack_config, read_stack_values

__all__ = ["StackFileError", "load_context", "stack_file"]


class StackFileError(SettingsError):
    """The stack file is missing or is not YAML. The message names the file, never a value."""


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def load_context(
    stack: str,
    project_dir: Path,
    *,
    environ: Mapping[str, str],
    write_probe: bool = False,
) -> Context:
    """The checks' context, or `ConfigError` (every problem, each naming its key) / `StackFileError`."""
    path = stack_file(project_dir, stack)
    if not path.is_file():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"no stack file {path} (stacks here: {', '.join(stacks) or 'none'})")
    try:
        config = load_stack_config(path)
        values = read_stack_values(path)
    except yaml.YAMLError as exc:
        # The parser's message quotes the offending line, which may hold a plain-text secret: say where only.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise StackFileError(f"{path.name} is not valid YAML{where}") from None
    missing = [
        ConfigProblem(spec.name, _required(spec.name, spec.secret))
        for spec in KEYS
        if spec.default is None and _unset(values.get(spec.name))
    ]
    if missing:
        raise ConfigError(missing)
    return Context(
        stack=stack,
        project_dir=project_dir,
        config=config,
        stack_values=values,
        environ=environ,
        write_probe=write_probe,
    )


def _unset(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _required(key: str, secret: bool) -> str:
    # The Pulumi CLI refuses such a stack before the program runs ("missing configuration value").
    command = f"pulumi config set --secret {key} <value>" if secret else f"pulumi config set {key} <value>"
    return f"is required (pulumi up refuses the stack without it): run `{command}`"

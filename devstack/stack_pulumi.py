"""Applies a stack to the devstack with the real `pulumi up`, as a user would: the committed stack file as
the base, then what only this machine knows (ports, generated keys, `--config` and `--config-file` values)
with `pulumi config set` (secrets with `--secret`, their values on stdin), then `pulumi up`.

A structured value (a list or map: `bubble-sync:mappings`) is set with `pulumi config set-all --json`, in the
form `pulumi config --json` prints (`objectValue`): the stack file then holds it as YAML, as `pulumi config
set --path` writes it, and the program gets it as JSON text, as under a real stack. Unlike `--path`, which
makes `"true"` a boolean and `"7"` a number, the JSON keeps every value's type as the file gave it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from components.config_keys import PROJECT
from devstack.pulumi_engine import Workspace

__all__ = ["StackPulumiError", "configure_stack", "set_config", "up_stack"]


class StackPulumiError(RuntimeError):
    """A `pulumi` command failed; the message carries the CLI's own output (which never shows secrets)."""


def configure_stack(
    workspace: Workspace,
    stack: str,
    *,
    base_file: Path,
    values: Mapping[str, object],
    secret_values: Mapping[str, str],
) -> None:
    """Makes `stack` in the workspace from `base_file` plus `values` and `secret_values` (bare keys)."""
    shutil.copyfile(base_file, workspace.stack_file(stack))
    _check(workspace, ["stack", "select", "--create", stack, "--non-interactive"])
    set_config(workspace, stack, values=values, secret_values=secret_values)


def set_config(
    workspace: Workspace, stack: str, *, values: Mapping[str, object], secret_values: Mapping[str, str]
) -> None:
    """Sets `values` (text, or a list or map set as structured config) and `secret_values` on an existing
    stack of the workspace."""
    structured = {key: value for key, value in values.items() if isinstance(value, (list, dict))}
    for key, value in values.items():
        if key not in structured:
            _check(workspace, ["config", "set", "--stack", stack, "--", key, str(value)])
    if structured:
        document = {
            f"{PROJECT}:{key}": {"value": json.dumps(value), "objectValue": value, "secret": False}
            for key, value in structured.items()
        }
        _check(workspace, ["config", "set-all", "--stack", stack, "--json", json.dumps(document)])
    for key, value in secret_values.items():
        _check(workspace, ["config", "set", "--stack", stack, "--secret", key], input=value)


def up_stack(workspace: Workspace, stack: str) -> str:
    """`pulumi up` without a separate preview; returns the CLI's output."""
    return _check(
        workspace,
        ["up", "--stack", stack, "--yes", "--skip-preview", "--non-interactive", "--suppress-progress"],
        timeout=900,
    )


def _check(workspace: Workspace, args: list[str], *, input: str | None = None, timeout: float = 120) -> str:
    result = workspace.run(args, input=input, timeout=timeout)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise StackPulumiError(
            f"`pulumi {' '.join(_shown(args))}` exited {result.returncode}:\n{output[-4000:]}"
        )
    return result.stdout


def _shown(args: list[str]) -> list[str]:
    """The command as an error names it: a long JSON document elided (the file it came from says it all)."""
    return [a if len(a) <= 200 else a[:60] + " … " + a[-20:] for a in args]

"""Applies a stack to the devstack with the real `pulumi up`, as a user would: the committed stack file as
the base, then what only this machine knows (ports, generated keys, `--config` overrides) with `pulumi
config set` (secrets with `--secret`, their values on stdin), then `pulumi up`."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from devstack.pulumi_engine import Workspace

__all__ = ["StackPulumiError", "configure_stack", "up_stack"]


class StackPulumiError(RuntimeError):
    """A `pulumi` command failed; the message carries the CLI's own output (which never shows secrets)."""


def configure_stack(
    workspace: Workspace,
    stack: str,
    *,
    base_file: Path,
    values: Mapping[str, str],
    secret_values: Mapping[str, str],
) -> None:
    """Makes `stack` in the workspace from `base_file` plus `values` and `secret_values` (bare keys)."""
    shutil.copyfile(base_file, workspace.stack_file(stack))
    _check(workspace, ["stack", "select", "--create", stack, "--non-interactive"])
    for key, value in values.items():
        _check(workspace, ["config", "set", "--stack", stack, "--", key, value])
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
        raise StackPulumiError(f"`pulumi {' '.join(args)}` exited {result.returncode}:\n{output[-4000:]}")
    return result.stdout

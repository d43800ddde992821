"""Applies a stack's generated setup SQL (`python -m components render-sql`) to the devstack's database,
as `postgres` with psql, exactly as a user would run it against Supabase. Secrets travel as psql variables
on stdin, never on a command line that `ps` would show."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from components.sql.render import render_script
from components.stack_file import load_stack_config

__all__ = ["StackSqlError", "apply_stack_sql"]


class StackSqlError(RuntimeError):
    """psql failed on the stack's script; the message carries psql's error, never the variables."""


def apply_stack_sql(
    stack_file: Path,
    *,
    dsn: str,
    variables: Mapping[str, str],
    overrides: Mapping[str, object] | None = None,
    psql: str = "psql",
) -> str:
    """Renders the stack in `stack_file` (with `overrides` set on top, as `pulumi config set` would) and runs
    it; returns psql's output (the verification queries)."""
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    script = render_script(load_stack_config(stack_file, overrides=overrides), stack=stack)
    preamble = "".join(f"\\set {name} {_psql_literal(value)}\n" for name, value in variables.items())
    result = subprocess.run(
        [psql, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=preamble + script,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise StackSqlError(f"the {stack!r} stack's SQL failed: {result.stderr.strip()}")
    return result.stdout


def _psql_literal(value: str) -> str:
    # psql's \set takes a single-quoted word; a quote or backslash inside is escaped with a backslash.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

"""Where the database is, and connecting to it, for both operator commands.

`resolve_database_url` finds the URL (first match wins: --database-url, --stack NAME,
$BUBBLE_SYNC_DATABASE_URL, $DATABASE_URL; the package docstring says what each means); `connect` opens a
connection, its error message scrubbed of the password. URLs are shown masked (components/url_secrets.py,
`masked`, which the package exports as `mask_url`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from components.config import KEYS, ConfigError
from components.connection import ENV_VAR, ConnectionConfigError, database_url
from components.errors import BubbleSyncError
from components.stack_file import is_encrypted, load_stack_config, read_stack_values
from components.url_secrets import MASK, masked, password_of, spellings

__all__ = ["ENV_VAR", "EXIT_CANNOT_CONNECT", "OperatorError", "connect", "resolve_database_url"]

#: exit code of both commands when no connection is configured or the database cannot be reached
EXIT_CANNOT_CONNECT = 2


class OperatorError(BubbleSyncError):
    """No usable connection settings, or the database cannot be reached. The message holds no secret."""


def resolve_database_url(
    *,
    database_url_arg: str | None,
    stack: str | None,
    project_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """(url, where it came from). Raises OperatorError saying what is missing."""
    env = os.environ if environ is None else environ
    if database_url_arg:
        return database_url_arg, "--database-url"
    if stack:
        return _stack_url(stack, project_dir, env)
    for name in (ENV_VAR, "DATABASE_URL"):
        if env.get(name, "").strip():
            return env[name].strip(), f"${name}"
    raise OperatorError(
        f"no database given: pass --database-url URL or --stack NAME, or set ${ENV_VAR} (or $DATABASE_URL)"
    )


def _stack_url(stack: str, project_dir: Path, env: Mapping[str, str]) -> tuple[str, str]:
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise OperatorError(f"no stack file {stack_file} (stacks here: {', '.join(stacks) or 'none'})")
    try:
        load_stack_config(stack_file)  # the same validation render-sql applies: unknown keys, plain secrets
        values = read_stack_values(stack_file)
    except ConfigError as exc:
        raise OperatorError(str(exc)) from None
    defaults = {spec.name: spec.default for spec in KEYS}
    where = f"--stack {stack} ({stack_file.name})"
    env_url = env.get(ENV_VAR, "").strip()

    if not values.get("dbHost"):
        if env_url:
            return env_url, f"${ENV_VAR} (stack {stack} has no dbHost)"
        if is_encrypted(values.get("databaseUrl")):
            raise OperatorError(
                f"stack {stack}: its databaseUrl is encrypted and cannot be read here; set ${ENV_VAR}: "
                f'`export {ENV_VAR}="$(pulumi config get databaseUrl --stack {stack})"`'
            )
        raise OperatorError(
            f"stack {stack}: it sets no dbHost (its connection comes from the environment); set ${ENV_VAR} "
            f"to the database's postgresql:// URL (for the devstack: the DATABASE_URL `./dev up` prints)"
        )

    password = env.get("PGPASSWORD") or (password_of(env_url) if env_url else None)
    if not password:
        raise OperatorError(
            f"stack {stack}: the connection (dbHost {values['dbHost']}) needs its password, a secret "
            f'in {stack_file.name}: `export PGPASSWORD="$(pulumi config get dbPassword --stack {stack})"` '
            f"(or set ${ENV_VAR} to a URL with the password)"
        )

    def get(key: str) -> Any:
        if key == "dbPassword":
            return password
        if key == "databaseUrl":
            return None
        value = values.get(key, defaults.get(key))
        return None if is_encrypted(value) else value

    try:
        return database_url(get, environ={}), where
    except ConnectionConfigError as exc:
        raise OperatorError(f"stack {stack}: {exc}") from None


def connect(url: str) -> psycopg.Connection[DictRow]:
    """A connection to `url` whose rows are dicts; OperatorError (the password masked) when there is none."""
    password = password_of(url)
    try:
        return psycopg.connect(url, connect_timeout=10, row_factory=dict_row)
    except (psycopg.Error, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for spelling in spellings(password) if password else ():
            message = message.replace(spelling, MASK)
        raise OperatorError(f"cannot connect to {masked(url)}: {message}") from None

"""The program's check of the stack's mappings against its database, before any change (docs/mappings.md,
"Checks"): `pulumi preview` and `pulumi up` run the program first, so a mapping whose table, key, columns,
types or row filter do not fit the database fails there with every problem at once, each keyed by its path,
instead of half-way through an `up`.

A database the program cannot reach (CI previewing without network access to it, a project paused) is not an
error here: the check is skipped with a warning saying why, and the trigger's own check
(sql/mapping_trigger.sql) still stops an `up` before anything is attached to a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from components.config import ConfigError, StackConfig
from components.connection import ConnectionConfigError, database_url
from components.mapping_check import check_mappings

__all__ = ["verify_mappings"]

#: seconds to wait for the database before the check is skipped
CONNECT_TIMEOUT = 10


def verify_mappings(
    config: StackConfig,
    get: Callable[[str], Any],
    warn: Callable[[str], None],
    *,
    connect_timeout: int = CONNECT_TIMEOUT,
) -> None:
    """Raises `ConfigError` listing every problem of `config.mappings` against the database the stack config
    names (`get`: a bare key's value, as `pulumi.Config().get`); warns and returns when it cannot connect.
    Without mappings it does nothing and connects to nothing."""
    if not config.mappings:
        return
    try:
        url = database_url(get)
        with psycopg.connect(url, connect_timeout=connect_timeout, autocommit=True) as conn:
            problems = check_mappings(conn, config.mappings)
    except (ConnectionConfigError, psycopg.OperationalError) as exc:
        warn(f"the mappings were not checked against the database (it could not be reached: {_reason(exc)})")
        return
    if problems:
        raise ConfigError(problems)


def _reason(exc: Exception) -> str:
    """What went wrong, without the connection URL (it holds the password): psycopg's messages name the host
    and port, never the password."""
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__

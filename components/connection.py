"""Where the providers find the database: stack config first, then an environment variable.

Stack config (project namespace `bubble-sync:`), either

* `databaseUrl` (secret): a complete `postgresql://` URL, or
* `dbHost`, `dbPassword` (secret) and optionally `dbPort` (5432), `dbUser` (postgres), `dbName` (postgres),
  `dbSslMode` (require) — for Supabase's session pooler, e.g. host `aws-0-<region>.pooler.supabase.com`,
  user `postgres.<project-ref>`.

Without either, the environment variable `BUBBLE_SYNC_DATABASE_URL`. The password never appears in an
error message raised here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from components.errors import SettingsError

__all__ = [
    "CONFIG_KEYS",
    "CONFIG_NAMESPACE",
    "ConnectionConfigError",
    "ENV_VAR",
    "database_url",
    "database_url_from_env",
]

CONFIG_NAMESPACE = "bubble-sync"
ENV_VAR = "BUBBLE_SYNC_DATABASE_URL"
CONFIG_KEYS = ("databaseUrl", "dbHost", "dbPort", "dbUser", "dbPassword", "dbName", "dbSslMode")

# The sslmodes the stack config accepts: lib/pq (under pulumi-postgresql) has no `prefer` or `allow`.
SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
_URL_SCHEMES = ("postgres://", "postgresql://")

_HOW_TO_CONFIGURE = (
    f"set `{CONFIG_NAMESPACE}:databaseUrl` (pulumi config set --secret databaseUrl postgresql://...), "
    f"or `{CONFIG_NAMESPACE}:dbHost` and `{CONFIG_NAMESPACE}:dbPassword` (secret) with optional "
    f"`dbPort`, `dbUser`, `dbName`, `dbSslMode`, or the environment variable {ENV_VAR}"
)


class ConnectionConfigError(SettingsError):
    """The database connection is missing or malformed. The message names the setting, never its value."""


def database_url(get: Callable[[str], Any], *, environ: Mapping[str, str] | None = None) -> str:
    """Composes the connection URL from config keys read with `get` (bare keys such as `dbHost`; `get`
    returns None when a key is unset), falling back to the environment variable `BUBBLE_SYNC_DATABASE_URL`.

    `get` may be `pulumi.Config().get` in a program, or a dynamic provider's `req.config.get` wrapped to
    add the project namespace.
    """
    values = {key: _text(get(key), strip=key != "dbPassword") for key in CONFIG_KEYS}
    url, host = values["databaseUrl"], values["dbHost"]
    if url and host:
        raise ConnectionConfigError(
            f"both `{CONFIG_NAMESPACE}:databaseUrl` and `{CONFIG_NAMESPACE}:dbHost` are set; "
            "set only one of them"
        )
    if url:
        return _checked_url(url, f"`{CONFIG_NAMESPACE}:databaseUrl`")
    if host:
        return _compose(values)
    # dbPort, dbUser, dbName and dbSslMode may carry schema defaults from Pulumi.yaml, so only a lone
    # password says that the host was forgotten.
    if values["dbPassword"]:
        raise ConnectionConfigError(
            f"`{CONFIG_NAMESPACE}:dbPassword` is set but `{CONFIG_NAMESPACE}:dbHost` is not; "
            f"{_HOW_TO_CONFIGURE}"
        )
    return database_url_from_env(environ)


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The URL in `BUBBLE_SYNC_DATABASE_URL`; a clear error when it is unset."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not value:
        raise ConnectionConfigError(f"no database connection configured: {_HOW_TO_CONFIGURE}")
    return _checked_url(value, f"the environment variable {ENV_VAR}")


def _compose(values: Mapping[str, str | None]) -> str:
    host = values["dbHost"] or ""
    password = values["dbPassword"]
    if not password:
        raise ConnectionConfigError(
            f"`{CONFIG_NAMESPACE}:dbHost` is set but `{CONFIG_NAMESPACE}:dbPassword` is not "
            f"(pulumi config set --secret dbPassword ...)"
        )
    port_text = values["dbPort"] or "5432"
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) < 65536:
        raise ConnectionConfigError(f"`{CONFIG_NAMESPACE}:dbPort` must be a port number (1-65535)")
    sslmode = values["dbSslMode"] or "require"
    if sslmode not in SSL_MODES:
        raise ConnectionConfigError(f"`{CONFIG_NAMESPACE}:dbSslMode` must be one of {', '.join(SSL_MODES)}")
    if any(c in host for c in "/@?# ") or host.startswith(_URL_SCHEMES):
        raise ConnectionConfigError(
            f"`{CONFIG_NAMESPACE}:dbHost` must be a host name or address; put a full URL in "
            f"`{CONFIG_NAMESPACE}:databaseUrl` instead"
        )
    if ":" in host and not host.startswith("["):  # an IPv6 literal
        host = f"[{host}]"
    user = values["dbUser"] or "postgres"
    dbname = values["dbName"] or "postgres"
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{int(port_text)}"
        f"/{quote(dbname, safe='')}?sslmode={sslmode}"
    )


def _checked_url(url: str, where: str) -> str:
    if not url.startswith(_URL_SCHEMES):
        raise ConnectionConfigError(f"{where} must be a postgresql:// URL")
    return url


def _text(value: Any, *, strip: bool = True) -> str | None:
    """Config values arrive as strings, or as numbers for structured config; blank means unset."""
    if value is None:
        return None
    text = str(value)
    if not text.strip():
        return None
    return text.strip() if strip else text

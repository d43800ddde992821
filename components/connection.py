"""Where the database is: the one set of rules for the connection settings, and the resolver the providers and
the operator commands use (`components/config.py` applies the same rules to report problems by key).

Stack config (project namespace `bubble-sync:`), either

* `databaseUrl` (secret): a complete `postgresql://` URL, or
* `dbHost`, `dbPassword` (secret) and optionally `dbPort` (5432), `dbUser` (postgres), `dbName` (postgres),
  `dbSslMode` (require) — for Supabase's session pooler, e.g. host `aws-0-<region>.pooler.supabase.com`,
  user `postgres.<project-ref>`.

Without either, the environment variable `BUBBLE_SYNC_DATABASE_URL`. The password never appears in an
error message raised here, and a URL is never echoed (it holds the password).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from components.errors import SettingsError

__all__ = [
    "CONFIG_KEYS",
    "CONFIG_NAMESPACE",
    "ConnectionConfigError",
    "ENV_VAR",
    "SSL_MODES",
    "UrlParts",
    "compose_url",
    "database_url",
    "database_url_from_env",
    "host_problem",
    "parse_database_url",
]

CONFIG_NAMESPACE = "bubble-sync"
ENV_VAR = "BUBBLE_SYNC_DATABASE_URL"
CONFIG_KEYS = ("databaseUrl", "dbHost", "dbPort", "dbUser", "dbPassword", "dbName", "dbSslMode")

# The sslmodes the stack config accepts: lib/pq (under pulumi-postgresql) has no `prefer` or `allow`.
SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
_URL_SCHEMES = ("postgres://", "postgresql://")
_NOT_SHOWN = "(value not shown: it is a secret)"

_HOW_TO_CONFIGURE = (
    f"set `{CONFIG_NAMESPACE}:databaseUrl` (pulumi config set --secret databaseUrl postgresql://...), "
    f"or `{CONFIG_NAMESPACE}:dbHost` and `{CONFIG_NAMESPACE}:dbPassword` (secret) with optional "
    f"`dbPort`, `dbUser`, `dbName`, `dbSslMode`, or the environment variable {ENV_VAR}"
)


class ConnectionConfigError(SettingsError):
    """The database connection is missing or malformed. The message names the setting, never its value."""


@dataclass(frozen=True)
class UrlParts:
    """A connection URL taken apart; `sslmode` is None when the URL does not say."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str | None


def parse_database_url(url: str) -> UrlParts:
    """Takes a postgresql:// URL apart, or raises ValueError with the reason (never the URL, which holds the
    password)."""
    shape = f"must be a postgresql:// URL, like postgresql://user:password@host:5432/postgres {_NOT_SHOWN}"
    if not url.strip().startswith(_URL_SCHEMES):
        raise ValueError(shape)
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 5432
    except ValueError:
        raise ValueError(f"is not a valid URL {_NOT_SHOWN}") from None
    if not parts.hostname:
        raise ValueError(shape)
    if not parts.username or parts.password is None:
        raise ValueError(f"must include the user and the password {_NOT_SHOWN}")
    sslmodes = parse_qs(parts.query).get("sslmode")
    sslmode = sslmodes[-1] if sslmodes else None
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ValueError(f"sslmode must be one of {' | '.join(SSL_MODES)}, got {sslmode!r}")
    return UrlParts(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        sslmode=sslmode,
    )


def host_problem(host: str) -> str | None:
    """Why `host` is not a host name or address (a URL given as dbHost, say), or None."""
    if any(c in host for c in "/@?# ") or host.startswith(_URL_SCHEMES):
        return f"must be a host name or address; put a full URL in `{CONFIG_NAMESPACE}:databaseUrl` instead"
    return None


def compose_url(*, host: str, port: int, user: str, password: str, dbname: str, sslmode: str) -> str:
    """The postgresql:// URL of these settings (an IPv6 address in brackets, every part quoted)."""
    if ":" in host and not host.startswith("["):  # an IPv6 literal
        host = f"[{host}]"
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}"
        f"/{quote(dbname, safe='')}?sslmode={sslmode}"
    )


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
    reason = host_problem(host)
    if reason:
        raise ConnectionConfigError(f"`{CONFIG_NAMESPACE}:dbHost` {reason}")
    return compose_url(
        host=host,
        port=int(port_text),
        user=values["dbUser"] or "postgres",
        password=password,
        dbname=values["dbName"] or "postgres",
        sslmode=sslmode,
    )


def _checked_url(url: str, where: str) -> str:
    try:
        parse_database_url(url)
    except ValueError as exc:
        raise ConnectionConfigError(f"{where} {exc}") from None
    return url


def _text(value: Any, *, strip: bool = True) -> str | None:
    """Config values arrive as strings, or as numbers for structured config; blank means unset."""
    if value is None:
        return None
    text = str(value)
    if not text.strip():
        return None
    return text.strip() if strip else text

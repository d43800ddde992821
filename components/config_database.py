"""The stack config keys that say how Pulumi reaches the database: `databaseUrl`, or `dbHost` + `dbPassword`
(with `dbPort`, `dbUser`, `dbName`, `dbSslMode`), or the environment variable BUBBLE_SYNC_DATABASE_URL; and
the checks that catch a connection to another project or to the pooler's transaction mode.
"""

from __future__ import annotations

import re

import pulumi

from components import url_secrets
from components.config_reader import KeyReader
from components.connection import ENV_VAR as DATABASE_URL_ENV
from components.connection import SSL_MODES, host_problem, parse_database_url
from components.stack_config import DbConnection, Secret

__all__ = ["DatabaseKeys"]

_POOLER_HOST = re.compile(r"^aws-\d+-[a-z0-9-]+\.pooler\.supabase\.com$")
_DIRECT_HOST = re.compile(r"^db\.([a-z]+)\.supabase\.co$")


class DatabaseKeys(KeyReader):
    """The read of the database connection, for the loader (components/config.py)."""

    def _database(self, project_ref: str | None) -> DbConnection | None:
        url = self._secret_text("databaseUrl", required=False)
        host = self._raw("dbHost")
        password = self._secret_text("dbPassword", required=False)
        sslmode = self._raw("dbSslMode") or "require"
        if sslmode not in SSL_MODES:
            self._problem("dbSslMode", f"must be one of {' | '.join(SSL_MODES)}, got {sslmode!r}")
        port = self._int("dbPort")
        user = self._raw("dbUser") or "postgres"
        dbname = self._raw("dbName") or "postgres"

        if url is not None and (host is not None or password is not None):
            self._problem("databaseUrl", "set either databaseUrl or dbHost + dbPassword, not both")
            return None
        from_env = url is None and host is None and password is None and bool(self._env.get(DATABASE_URL_ENV))
        if from_env:
            # The providers fall back to the same variable (components/connection.py).
            url = self._env[DATABASE_URL_ENV]
        if url is not None:
            try:
                parts = parse_database_url(url)
            except ValueError as exc:
                self._problem("databaseUrl", str(exc))
                return None
            host, port, user, dbname = parts.host, parts.port, parts.user, parts.dbname
            sslmode = parts.sslmode or sslmode
            secret: Secret = url
            if self._wrap_secret:
                secret = pulumi.Output.secret(url) if from_env else self._wrap_secret("databaseUrl", url)
            password_value: Secret = _url_password(secret)
        elif host is not None:
            reason = host_problem(host)
            if reason:
                self._problem("dbHost", reason)
                return None
            if password is None:
                # A plain-text password is already reported as such; "required" would mislead.
                if not self._for_sql and not self._problem_for("dbPassword"):
                    self._problem(
                        "dbPassword",
                        "is required with dbHost: run `pulumi config set --secret dbPassword <value>`",
                    )
                return None
            password_value = self._wrap_secret("dbPassword", password) if self._wrap_secret else password
        else:
            if not self._for_sql:
                self._problem(
                    "databaseUrl",
                    f"no database connection: set databaseUrl (secret), or dbHost and dbPassword (secret), "
                    f"or the environment variable {DATABASE_URL_ENV}; from IPv4-only CI use the session "
                    f"pooler aws-0-<region>.pooler.supabase.com:5432 with user postgres.<projectRef>",
                )
            return None
        if port is None or sslmode not in SSL_MODES:
            return None
        self._check_supabase_host(
            "databaseUrl" if url is not None else "dbHost", host, port, user, project_ref
        )
        return DbConnection(
            host=host, port=port, user=user, password=password_value, dbname=dbname, sslmode=sslmode
        )

    def _check_supabase_host(
        self, key: str, host: str, port: int, user: str, project_ref: str | None
    ) -> None:
        """Catches a connection that points at another project, or at the pooler's transaction mode."""
        direct = _DIRECT_HOST.match(host)
        if direct and project_ref and direct.group(1) != project_ref:
            self._problem(
                key, f"host {host} belongs to project {direct.group(1)}, not projectRef {project_ref}"
            )
        if _POOLER_HOST.match(host):
            if port != 5432:
                self._problem(
                    key,
                    f"use the pooler's session mode (port 5432), not port {port}: transaction mode breaks "
                    f"session state and prepared statements",
                )
            if project_ref and user != f"postgres.{project_ref}":
                self._problem(key, f"the session pooler needs user postgres.{project_ref}, got {user!r}")


def _url_password(url: Secret) -> Secret:
    def password(text: str) -> str:
        return url_secrets.password_of(text) or ""

    if isinstance(url, str):
        return password(url)
    return url.apply(password)

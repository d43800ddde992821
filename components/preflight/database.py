"""The database checks: the stack's database is reachable as configured, and pg_cron, pg_net and Vault are
there (or can be created by the stack's user) and usable.

    database.connection        reachable through the configured host, port, user and sslmode
    database.server_version    the server's version (a warning below the version the project is tested on)
    database.pg_cron           installed and usable, or installable by the user when the stack manages it
    database.pg_cron_database  cron.database_name is this database (pg_cron runs jobs in that one only)
    database.pg_net            as pg_cron
    database.vault             schema vault: create_secret/update_secret executable, decrypted_secrets
                               readable, vault.secrets readable and deletable

Read-only: the session refuses writes (`default_transaction_read_only`), privileges are asked of the catalogs
(has_*_privilege), never tried; `--write-probe` changes nothing here. The queries are in `database.sql`.
Without a connection, every other check is skipped with that reason.

Who may create an extension (PostgreSQL's rules, plus Supabase's supautils): a superuser; a role with CREATE
on the database for a trusted extension (pg_available_extension_versions.trusted), or for one listed in
`supautils.privileged_extensions`, which is how `postgres` creates pg_cron and pg_net on Supabase.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from components.connection import parse_database_url
from components.operator.connection import OperatorError, resolve_database_url
from components.operator.queries import split_queries
from components.preflight.checks import CheckResult, Context, Status, failed, ok, skipped, warning
from components.url_secrets import masked

__all__ = ["GROUP", "TESTED_MAJOR", "checks"]

GROUP = "database"
#: the PostgreSQL major version the project's tests run on (Supabase runs 15 and 17)
TESTED_MAJOR = 15

CONNECTION = "database.connection"
SERVER_VERSION = "database.server_version"
PG_CRON = "database.pg_cron"
PG_CRON_DATABASE = "database.pg_cron_database"
PG_NET = "database.pg_net"
VAULT = "database.vault"

_TITLES = {
    SERVER_VERSION: "PostgreSQL server version",
    PG_CRON: "pg_cron installed or installable",
    PG_CRON_DATABASE: "pg_cron runs jobs in this database",
    PG_NET: "pg_net installed or installable",
    VAULT: "Vault usable",
}
_QUERY_FILE = Path(__file__).with_name("database.sql")
_DASHBOARD = "the Supabase dashboard (Database > Extensions)"


def checks(ctx: Context) -> Iterator[CheckResult]:
    try:
        url, _source = resolve_database_url(
            database_url_arg=None, stack=ctx.stack, project_dir=ctx.project_dir, environ=ctx.environ
        )
    except OperatorError as exc:
        yield failed(
            CONNECTION,
            "database connection settings",
            str(exc),
            "preflight cannot decrypt the stack's secrets: give it the password or the URL from the "
            "environment as said, then run it again",
        )
        yield from _skip_rest("no database connection settings")
        return
    ctx.add_secret(url)
    title = f"database reachable ({_where(url)})"
    try:
        conn = psycopg.connect(
            url, connect_timeout=ctx.connect_timeout, autocommit=True, row_factory=dict_row
        )
    except (psycopg.Error, ValueError) as exc:
        message = str(exc).strip() or type(exc).__name__
        yield failed(CONNECTION, title, message, _connection_fix(message, ctx))
        yield from _skip_rest("the database cannot be reached")
        return
    with conn:
        try:
            conn.execute(_query("session"))
            server = _one(conn, "server")
        except psycopg.Error as exc:
            yield failed(CONNECTION, title, f"connected, but the first query failed: {exc}", _RETRY_FIX)
            yield from _skip_rest("the database does not answer queries")
            return
        yield ok(CONNECTION, title, f"as {server['user']}, database {server['database']}")
        yield from _checks(ctx, conn, server)


def _checks(
    ctx: Context, conn: psycopg.Connection[DictRow], server: Mapping[str, Any]
) -> Iterator[CheckResult]:
    done: set[str] = set()
    try:
        yield _server_version(server)
        done.add(SERVER_VERSION)
        cron = _extension(conn, "pg_cron")
        cron_result = _extension_check(ctx, conn, server, cron, PG_CRON)
        yield cron_result
        done.add(PG_CRON)
        yield _cron_database(conn, server, cron, cron_result)
        done.add(PG_CRON_DATABASE)
        yield _extension_check(ctx, conn, server, _extension(conn, "pg_net"), PG_NET)
        done.add(PG_NET)
        yield _vault(_one(conn, "vault"), server)
        done.add(VAULT)
    except psycopg.Error as exc:  # the connection dropped, a statement timed out: not a finding
        check = next(c for c in _TITLES if c not in done)
        yield failed(check, _TITLES[check], f"the catalog query failed: {exc}", _RETRY_FIX)
        for rest in [c for c in _TITLES if c not in done and c != check]:
            yield skipped(rest, _TITLES[rest], f"{_TITLES[check]} could not be checked")


_RETRY_FIX = "run preflight again; if it fails the same way, check that the role may read the catalogs"


# -- the checks ----------------------------------------------------------------------------------------------


def _server_version(server: Mapping[str, Any]) -> CheckResult:
    major = int(server["version_num"]) // 10000
    title = _TITLES[SERVER_VERSION]
    if major < TESTED_MAJOR:
        return warning(
            SERVER_VERSION,
            title,
            f"PostgreSQL {server['version']}: bubble-sync is tested on {TESTED_MAJOR} "
            "(Supabase runs 15 and 17)",
            "upgrade the project's database (Project Settings > Infrastructure) when you can",
        )
    return ok(SERVER_VERSION, title, f"PostgreSQL {server['version']}")


@dataclass(frozen=True)
class Extension:
    name: str
    available: bool
    default_version: str | None
    installed_version: str | None
    installed_schema: str | None
    trusted: bool


def _extension(conn: psycopg.Connection[DictRow], name: str) -> Extension:
    row = _one(conn, "extension", {"name": name})
    return Extension(name=name, **row)


def installable_by(server: Mapping[str, Any], ext: Extension) -> str | None:
    """Why the connected user could create `ext`, or None when it could not (or the server lacks it)."""
    if not ext.available:
        return None
    if server["superuser"]:
        return f"{server['user']} is a superuser"
    if not server["can_create"]:
        return None
    privileged = {p.strip() for p in (server["privileged_extensions"] or "").split(",")}
    if ext.name in privileged:
        return f"supautils.privileged_extensions lets {server['user']} create it"
    if ext.trusted:
        return f"it is a trusted extension and {server['user']} may create in this database"
    return None


def _extension_check(
    ctx: Context, conn: psycopg.Connection[DictRow], server: Mapping[str, Any], ext: Extension, check: str
) -> CheckResult:
    title = _TITLES[check]
    user = server["user"]
    if ext.installed_version is not None:
        missing = _missing_privileges(conn, ext.name)
        where = f"{ext.name} {ext.installed_version} in schema {ext.installed_schema}"
        if missing:
            return failed(
                check,
                title,
                f"{where} is installed, but {user} lacks {', '.join(missing)}",
                _grant_fix(user),
            )
        return ok(check, title, f"{where}, usable by {user}")
    how = installable_by(server, ext)
    if not ctx.config.manage_extensions:
        return failed(
            check,
            title,
            f"{ext.name} is not enabled in this database, and manageExtensions is false (the stack only "
            f"checks that it is there)",
            f"enable {ext.name} in {_DASHBOARD}"
            + (", or set manageExtensions to true so that pulumi up creates it" if how else ""),
        )
    if how:
        return ok(check, title, f"not installed yet; pulumi up will create it ({how})")
    if not ext.available:
        return failed(
            check,
            title,
            f"{ext.name} is not installed and not available on this server (not in pg_available_extensions)",
            f"every Supabase project has {ext.name}: check that dbHost (or databaseUrl) points at your "
            f"project's database",
        )
    return failed(
        check,
        title,
        f"{ext.name} is not installed, and {user} cannot create it: " + _why_not(server, ext),
        f"enable {ext.name} in {_DASHBOARD} and set manageExtensions to false"
        + ("" if user == "postgres" else "; or connect as postgres (dbUser), whom Supabase lets create it"),
    )


def _why_not(server: Mapping[str, Any], ext: Extension) -> str:
    if not server["can_create"]:
        return "it has no CREATE privilege on the database"
    return (
        "it is not a superuser, and the extension is neither trusted nor in supautils.privileged_extensions"
    )


def _missing_privileges(conn: psycopg.Connection[DictRow], name: str) -> list[str]:
    """The privileges the stack needs on an installed pg_cron or pg_net that the user lacks."""
    if name == "pg_cron":
        row = _one(conn, "pg_cron_usable")
        needed = {
            "schema_usage": "USAGE on schema cron",
            "schedule": "EXECUTE on cron.schedule (by job name)",
            "unschedule": "EXECUTE on cron.unschedule (by job name)",
            "alter_job": "EXECUTE on cron.alter_job",
            "read_jobs": "SELECT on cron.job",
        }
    else:
        row = _one(conn, "pg_net_usable")
        needed = {
            "schema_usage": "USAGE on schema net",
            "http_post": "EXECUTE on net.http_post",
        }
    return [what for column, what in needed.items() if not row[column]]


def _cron_database(
    conn: psycopg.Connection[DictRow], server: Mapping[str, Any], cron: Extension, cron_result: CheckResult
) -> CheckResult:
    title = _TITLES[PG_CRON_DATABASE]
    database = server["database"]
    if cron_result.status is Status.FAILED:
        return skipped(PG_CRON_DATABASE, title, "pg_cron is not usable here; see above")
    try:
        setting = _one(conn, "cron_database")["cron_database"]
    except psycopg.errors.InsufficientPrivilege:
        if cron.installed_version is not None:
            # pg_cron's install script refuses any database but cron.database_name.
            return ok(PG_CRON_DATABASE, title, "pg_cron is installed here, which it allows only there")
        return warning(
            PG_CRON_DATABASE,
            title,
            f"{server['user']} may not read cron.database_name (needs pg_read_all_settings): pg_cron will "
            f"run our jobs only if it is {database}",
            "on Supabase it is postgres: keep dbName postgres",
        )
    if setting is None:
        return failed(
            PG_CRON_DATABASE,
            title,
            "cron.database_name is not set: pg_cron is not loaded on this server (shared_preload_libraries)",
            "every Supabase project loads pg_cron: check that dbHost (or databaseUrl) points at your project",
        )
    if setting != database:
        return failed(
            PG_CRON_DATABASE,
            title,
            f"pg_cron runs jobs only in database {setting} (cron.database_name), and this stack connects to "
            f"{database}",
            f"set dbName to {setting} (or the database in databaseUrl); on Supabase it is postgres",
        )
    return ok(PG_CRON_DATABASE, title, f"cron.database_name is {setting}")


def _vault(row: Mapping[str, Any], server: Mapping[str, Any]) -> CheckResult:
    title = _TITLES[VAULT]
    user = server["user"]
    if not row["has_schema"]:
        return failed(
            VAULT,
            title,
            "there is no schema vault: Vault (supabase_vault) is not enabled in this database",
            f"enable Vault in {_DASHBOARD}, extension supabase_vault; it is on in every hosted project",
        )
    needed = {
        "schema_usage": "USAGE on schema vault",
        "create_secret": "EXECUTE on vault.create_secret",
        "update_secret": "EXECUTE on vault.update_secret",
        "read_decrypted": "SELECT on vault.decrypted_secrets",
        "read_secrets": "SELECT on vault.secrets",
        "delete_secrets": "DELETE on vault.secrets",
    }
    missing = [what for column, what in needed.items() if not row[column]]
    if missing:
        return failed(
            VAULT,
            title,
            f"{user} lacks {', '.join(missing)}",
            _grant_fix(user),
        )
    version = f"supabase_vault {row['version']}" if row["version"] else "schema vault"
    return ok(VAULT, title, f"{version}: {user} can create, update and read secrets")


# -- helpers -------------------------------------------------------------------------------------------------


def _grant_fix(user: str) -> str:
    # On the pooler the user is postgres.<ref>, but the session's current_user is postgres.
    grant = f"have a superuser grant them to {user}"
    if user == "postgres":
        return f"{grant} (Supabase grants them to postgres by default: something revoked them)"
    return (
        f"connect as postgres (dbUser; postgres.<projectRef> on the pooler), to whom Supabase grants these, "
        f"or {grant}"
    )


def _skip_rest(why: str) -> Iterator[CheckResult]:
    for check, title in _TITLES.items():
        yield skipped(check, title, why)


def _where(url: str) -> str:
    """user@host:port/database and sslmode, without the password."""
    try:
        parts = parse_database_url(url)
    except ValueError:
        return masked(url)
    sslmode = parts.sslmode or "prefer, libpq's default"
    return f"{parts.user}@{parts.host}:{parts.port}/{parts.dbname}, sslmode {sslmode}"


def _connection_fix(message: str, ctx: Context) -> str:
    lower = message.lower()
    ref = ctx.config.project_ref or "<projectRef>"
    if "password authentication failed" in lower or "no password supplied" in lower:
        first = (
            "check dbUser and the password: dbPassword (here $PGPASSWORD) or the one in databaseUrl "
            "(here $BUBBLE_SYNC_DATABASE_URL)"
        )
    elif "does not exist" in lower and "database" in lower:
        first = "check dbName (or the database in databaseUrl)"
    elif "ssl" in lower:
        first = "check dbSslMode (Supabase needs require or stricter)"
    else:
        first = "check dbHost and dbPort (or databaseUrl), and that this machine may reach them"
    return (
        f"{first}; the connection is dbHost, dbPort, dbUser, dbPassword (or databaseUrl): from an IPv4-only "
        f"network such as GitHub's runners use the session pooler aws-0-<region>.pooler.supabase.com, port "
        f"5432, user postgres.{ref} (the direct host db.{ref}.supabase.co is IPv6 only)"
    )


@functools.cache
def _queries() -> Mapping[str, str]:
    return split_queries(_QUERY_FILE.read_text(encoding="utf-8"), _QUERY_FILE.name)


def _query(name: str) -> str:
    return _queries()[name]


def _one(
    conn: psycopg.Connection[DictRow], name: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    row = conn.execute(_query(name), params).fetchone()
    assert row is not None, name  # every query here returns exactly one row
    return dict(row)

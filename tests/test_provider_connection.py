"""Where the providers find the database (components/connection.py and `configure`), and that the
password never shows up in an error."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict
from pulumi.dynamic import Config, ConfigureRequest

from components.connection import ENV_VAR, ConnectionConfigError, database_url, database_url_from_env
from components.providers import ProviderError, VaultSecretProvider
from tests.conftest import Database


@pytest.fixture
def db(module_db: Database) -> Iterator[Database]:
    """This module's database, shared because a fresh one per test costs about 0.6 s; cleaned after
    each test (nothing to clean: these tests only connect)."""
    yield module_db


PASSWORD = "pa:ss/w@rd?#-not-in-errors"


def getter(**values: Any) -> Callable[[str], Any]:
    return values.get


def request(config: dict[str, Any]) -> ConfigureRequest:
    return ConfigureRequest(Config({f"bubble-sync:{k}": v for k, v in config.items()}, "bubble-sync"))


def test_database_url_is_taken_as_given() -> None:
    url = "postgresql://postgres.abcdefghijklmnopqrst:x@aws-0-eu-west-1.pooler.supabase.com:5432/postgres"
    assert database_url(getter(databaseUrl=url), environ={}) == url


def test_host_settings_compose_a_url_with_defaults_and_quoting() -> None:
    url = database_url(getter(dbHost="db.abcdefghijklmnopqrst.supabase.co", dbPassword=PASSWORD), environ={})
    assert url == (
        "postgresql://postgres:pa%3Ass%2Fw%40rd%3F%23-not-in-errors@db.abcdefghijklmnopqrst.supabase.co:5432"
        "/postgres?sslmode=require"
    )
    assert conninfo_to_dict(url)["password"] == PASSWORD  # libpq reads it back intact

    url = database_url(
        getter(
            dbHost="::1",
            dbPort=6543,
            dbUser="postgres.ref",
            dbPassword="p",
            dbName="app",
            dbSslMode="disable",
        ),
        environ={},
    )
    assert url == "postgresql://postgres.ref:p@[::1]:6543/app?sslmode=disable"


def test_blank_config_values_count_as_unset_and_fall_back_to_the_environment() -> None:
    # Pulumi.yaml declares "" defaults for the optional secrets and real defaults for port/user/name/sslmode
    config = getter(
        databaseUrl="", dbHost="", dbPassword="", dbPort=5432, dbUser="postgres", dbSslMode="require"
    )
    assert database_url(config, environ={ENV_VAR: "postgresql://u:p@h/db"}) == "postgresql://u:p@h/db"
    assert database_url_from_env({ENV_VAR: "postgres://u:p@h/db"}) == "postgres://u:p@h/db"


@pytest.mark.parametrize(
    ("config", "environ", "message"),
    [
        ({}, {}, f"no database connection configured: set `bubble-sync:databaseUrl`.*{ENV_VAR}"),
        ({"databaseUrl": f"postgresql://u:{PASSWORD}@h/db", "dbHost": "h"}, {}, "set only one of them"),
        ({"dbHost": "h"}, {}, "`bubble-sync:dbPassword` is not"),
        ({"dbPassword": PASSWORD}, {}, "`bubble-sync:dbHost` is not"),
        ({"dbHost": "h", "dbPassword": PASSWORD, "dbPort": "54x"}, {}, "`bubble-sync:dbPort` must be a port"),
        ({"dbHost": "h", "dbPassword": PASSWORD, "dbPort": 70000}, {}, "`bubble-sync:dbPort` must be a port"),
        (
            {"dbHost": "h", "dbPassword": PASSWORD, "dbSslMode": "on"},
            {},
            "`bubble-sync:dbSslMode` must be one of",
        ),
        ({"dbHost": f"postgresql://u:{PASSWORD}@h", "dbPassword": PASSWORD}, {}, "put a full URL in"),
        (
            {"databaseUrl": f"mysql://u:{PASSWORD}@h/db"},
            {},
            "`bubble-sync:databaseUrl` must be a postgresql://",
        ),
        ({}, {ENV_VAR: f"u:{PASSWORD}@h"}, f"the environment variable {ENV_VAR} must be a postgresql://"),
    ],
)
def test_bad_settings_are_named_and_the_password_is_not_shown(
    config: dict[str, Any], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConnectionConfigError, match=message) as excinfo:
        database_url(getter(**config), environ=environ)
    assert PASSWORD not in str(excinfo.value)


def test_configure_composes_the_connection_from_stack_config(db: Database) -> None:
    parts = conninfo_to_dict(db.dsn)
    provider = VaultSecretProvider()
    provider.configure(
        request(
            {
                "dbHost": parts["host"],
                "dbPort": int(parts["port"]),  # structured config may deliver a number
                "dbPassword": parts["password"],
                "dbName": db.name,
                "dbSslMode": "disable",
            }
        )
    )
    assert provider.read("x", {"name": "absent"}).id == ""  # connected and looked


def test_configure_falls_back_to_the_environment(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, db.dsn)
    provider = VaultSecretProvider()
    provider.configure(request({}))
    assert provider.read("x", {"name": "absent"}).id == ""

    unconfigured = VaultSecretProvider()  # configure never called: the environment at call time
    assert unconfigured.read("x", {"name": "absent"}).id == ""


def test_without_a_connection_operations_fail_clearly_but_check_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    provider = VaultSecretProvider()
    provider.configure(request({}))
    assert provider.check({}, {"name": "n", "value": "v"}).failures == []
    with pytest.raises(ConnectionConfigError, match="`bubble-sync:dbHost` and `bubble-sync:dbPassword`"):
        provider.read("x", {"name": "n"})

    provider.configure(request({"dbHost": "h", "dbPassword": PASSWORD, "dbSslMode": "sometimes"}))
    with pytest.raises(ConnectionConfigError, match="dbSslMode") as excinfo:
        provider.create({"name": "n", "value": "v"})
    assert PASSWORD not in str(excinfo.value)


def test_a_refused_login_does_not_reveal_the_password(db: Database) -> None:
    parts = conninfo_to_dict(db.dsn)
    url = f"postgresql://postgres:{quote(PASSWORD, safe='')}@{parts['host']}:{parts['port']}/{db.name}"
    provider = VaultSecretProvider()
    provider.configure(request({"databaseUrl": url}))
    with pytest.raises(
        ProviderError, match="Vault secret 'n': cannot connect to the database to read"
    ) as excinfo:
        provider.read("x", {"name": "n"})
    rendered = "".join(traceback.format_exception(excinfo.value))
    assert "password authentication failed" in rendered
    assert PASSWORD not in rendered and quote(PASSWORD, safe="") not in rendered


@pytest.mark.parametrize("sslmode", ["prefer", "allow"])
def test_the_providers_take_the_sslmodes_the_stack_config_takes(sslmode: str) -> None:
    # One list (components/connection.py SSL_MODES): what `pulumi up` accepted, the providers accept too.
    with pytest.raises(ConnectionConfigError, match="disable, require, verify-ca, verify-full"):
        database_url(getter(dbHost="db.example", dbPassword=PASSWORD, dbSslMode=sslmode), environ={})

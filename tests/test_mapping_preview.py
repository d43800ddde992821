"""The program's check of the mappings against the database before any change (components/mapping_preview.py):
problems at their config paths, nothing connected without mappings, a database out of reach only warned
about."""

from __future__ import annotations

import pytest

from components.config import ConfigError, StackConfig, load_config
from components.mapping_preview import verify_mappings
from tests.conftest import Database

MAPPINGS = """[
  {"name": "users", "table": "public.profiles", "dataType": "user",
   "fields": {"email": "email", "nickname": "Nick"}, "where": "not is_tset"}
]"""


def config(db_url: str, mappings: str | None) -> StackConfig:
    values = {"databaseUrl": db_url, "bubbleBaseUrl": "https://a.bubbleapps.io/api/1.1", "mappings": mappings}
    return load_config(values.get, for_sql=True, env={})


def test_problems_against_the_database_fail_naming_their_paths(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("create table public.profiles (id uuid primary key, email text, is_test boolean)")
    warnings: list[str] = []
    with pytest.raises(ConfigError) as info:
        verify_mappings(config(db.dsn, MAPPINGS), {"databaseUrl": db.dsn}.get, warnings.append)
    keys = {p.key for p in info.value.problems}
    assert keys == {"mappings[0].fields.nickname", "mappings[0].where"}, info.value
    assert warnings == []


def test_without_mappings_nothing_is_checked(db: Database) -> None:
    warnings: list[str] = []
    verify_mappings(config(db.dsn, None), lambda key: pytest.fail(f"read {key}"), warnings.append)
    assert warnings == []


def test_a_database_out_of_reach_is_a_warning_without_the_password() -> None:
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres?sslmode=disable"
    warnings: list[str] = []
    verify_mappings(config(url, MAPPINGS), {"databaseUrl": url}.get, warnings.append, connect_timeout=2)
    assert len(warnings) == 1 and "were not checked against the database" in warnings[0]
    assert "s3cret-pw" not in warnings[0]

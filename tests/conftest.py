"""Shared fixtures: one real PostgreSQL cluster (with the real pg_cron) per test session, and a fresh
database per test, copied from the Supabase-shaped template so each test starts clean in ~0.1 s."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from devstack.cluster import Cluster


@dataclass(frozen=True)
class Database:
    """A test database: connect as `postgres` (a Supabase client) or as the bootstrap superuser."""

    name: str
    dsn: str
    admin_dsn: str

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=autocommit)

    def connect_admin(self, *, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.admin_dsn, autocommit=autocommit)

    def connect_as(self, role: str, *, autocommit: bool = True) -> psycopg.Connection:
        """A `postgres` session switched into an API role, as PostgREST does for anon/authenticated."""
        conn = psycopg.connect(self.dsn, autocommit=autocommit)
        conn.execute(psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(role)))
        return conn


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("devstack")))
    c.create()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
def db(cluster: Cluster) -> Iterator[Database]:
    """A fresh database from the template: Supabase roles, default privileges, extensions."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    cluster.create_database(name)
    try:
        yield Database(name=name, dsn=cluster.dsn(name), admin_dsn=cluster.admin_dsn(name))
    finally:
        cluster.drop_database(name)


@pytest.fixture
def cron_db(cluster: Cluster) -> Database:
    """The `postgres` database, the only one where pg_cron runs jobs (cron.database_name). Shared by
    the session: tests that use it must clean up the jobs they schedule."""
    return Database(name="postgres", dsn=cluster.dsn("postgres"), admin_dsn=cluster.admin_dsn("postgres"))

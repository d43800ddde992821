"""Shared fixtures: one real PostgreSQL cluster (with the real pg_cron) per test session, and a fresh
database per test, copied from the Supabase-shaped template so each test starts clean in ~0.1 s."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from devstack.cluster import TEMPLATE_DB, Cluster
from devstack.pulumi_engine import Engine
from tests.engine_support import engine_or_skip
from tests.queue_support import EMPTY_GATE

# pulumi.dynamic's serialize_provider wraps pickle._Pickler._batch_setitems in a sorting wrapper on every
# call and never unwraps it (pulumi 3.260.0): harmless in a `pulumi up`, which serializes a few dozen
# providers, but a test process serializes thousands and reaches Python's recursion limit. Each test starts
# from the original.
_BATCH_SETITEMS = pickle._Pickler._batch_setitems  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _unwrap_pulumis_pickler() -> Iterator[None]:
    yield
    pickle._Pickler._batch_setitems = _BATCH_SETITEMS  # type: ignore[attr-defined]


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
def engine() -> Engine:
    """The real Pulumi engine (scripts/setup builds it), or a skip that says it is missing. Cheap: found, not
    started."""
    return engine_or_skip()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("devstack")))
    c.create()
    try:
        yield c
    finally:
        c.destroy()


@contextmanager
def fresh_database(cluster: Cluster, template: str = TEMPLATE_DB) -> Iterator[Database]:
    """A new database copied from `template`, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    cluster.create_database(name, template=template)
    try:
        yield Database(name=name, dsn=cluster.dsn(name), admin_dsn=cluster.admin_dsn(name))
    finally:
        cluster.drop_database(name)


@pytest.fixture
def db(cluster: Cluster) -> Iterator[Database]:
    """A fresh database from the template: Supabase roles, default privileges, extensions."""
    with fresh_database(cluster) as database:
        yield database


@pytest.fixture(scope="module")
def module_db(cluster: Cluster) -> Iterator[Database]:
    """One fresh database for a whole test module, for modules that clean up after each test themselves."""
    with fresh_database(cluster) as database:
        yield database


@pytest.fixture
def cron_db(cluster: Cluster) -> Database:
    """The `postgres` database, the only one where pg_cron runs jobs (cron.database_name). Shared by
    the session: tests that use it must clean up the jobs they schedule."""
    return Database(name="postgres", dsn=cluster.dsn("postgres"), admin_dsn=cluster.admin_dsn("postgres"))


def apply_sql(conn: psycopg.Connection, relative_path: str, params: dict[str, object] | None = None) -> None:
    """Runs one file under sql/, rendered with the suggested defaults (overridden by `params`), one statement
    at a time."""
    from components.sql.catalogue import split_statements
    from components.sql.params import DEFAULT_PARAMS
    from components.sql.templates import load, render

    for statement in split_statements(render(load(relative_path), {**DEFAULT_PARAMS, **(params or {})})):
        conn.execute(statement)


@pytest.fixture(scope="session")
def queue_template(cluster: Cluster) -> str:
    """A database with the queue layer (sql/, default params) applied once, in one transaction, as `postgres`;
    `queue_db` copies it, which is cheaper than applying the SQL for every test."""
    from components.sql.templates import QUEUE_FILES

    name = "bubble_sync_queue_template"
    cluster.create_database(name)
    with psycopg.connect(cluster.dsn(name)) as conn:
        for relative_path in QUEUE_FILES:
            apply_sql(conn, relative_path)
    # No connections from now on, autovacuum's included: CREATE DATABASE waits for them to leave a template.
    cluster.psql(f'alter database "{name}" with is_template true allow_connections false')
    return name


@pytest.fixture
def queue_db(cluster: Cluster, queue_template: str) -> Iterator[Database]:
    """A fresh database with the queue layer applied (no dispatch trigger, no cron jobs: tests that want those
    apply sql/dispatch_trigger.sql themselves or use cron_db)."""
    with fresh_database(cluster, queue_template) as database:
        yield database


_EMPTY_QUEUE = f"""
drop trigger if exists bubble_sync_dispatch on public.sync_queue;
truncate public.sync_queue restart identity;
truncate bubble_sync.links, bubble_sync.mappings;
update bubble_sync.dispatch_state set wake_requested_at = null, wake_consumed_at = null;
{EMPTY_GATE};
delete from net.http_request_queue;
delete from vault.secrets;
"""


@pytest.fixture(scope="module")
def _module_queue_db(cluster: Cluster, queue_template: str) -> Iterator[Database]:
    with fresh_database(cluster, queue_template) as database:
        yield database


@pytest.fixture
def shared_queue_db(_module_queue_db: Database) -> Database:
    """Like `queue_db`, but one database per test module, emptied before each test (queue rows, dispatch
    state and trigger, queued pg_net requests, Vault secrets). For tests that create no other objects."""
    with _module_queue_db.connect() as conn:
        conn.execute(_EMPTY_QUEUE)
    return _module_queue_db


# `./dev test` hands work to its workers in this order (--no-loadscope-reorder), every other module after
# these in file order. First the modules that wait for a pg_cron minute tick (wall clock, not CPU): started
# early, their waits overlap the other workers' engine runs instead of idling a core near the end, where three
# of them once waited for the same tick. Then the modules that take longest on 2 cores (`./dev test
# --durations=0`), longest first: a long module handed out last would run alone while the others sit idle.
WAIT_FOR_A_CRON_MINUTE = ("test_end_to_end", "test_pg_cron", "test_bad_input", "test_faults")
SLOWEST_FIRST = (
    "test_devstack_mappings", "test_pulumi_engine", "test_upgrade", "test_devstack_cli",
    "test_edge_function", "test_bench_smoke", "test_bench_reconcile_smoke", "test_backfill",
    "test_reconcile_pacing", "test_functions_host_limits",
)  # fmt: skip
HANDED_OUT_FIRST = WAIT_FOR_A_CRON_MINUTE + SLOWEST_FIRST


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: position for position, module in enumerate(HANDED_OUT_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: file order within a module


def pytest_itemcollected(item: pytest.Item) -> None:
    """`./dev test` runs the suite on several workers (pytest-xdist, `--dist loadgroup`). A test that uses a
    module-scoped fixture (a running rig, a deployed stack, a shared database) shares it with the module's
    other tests, which may rely on their order: they go to one worker together, in file order. Every other
    test goes to whichever worker is free, so a module of independent slow tests (each upgrade of an earlier
    release, say) is spread over the workers. (Marked as each test is collected: pytest-xdist reads the marks
    in its own pytest_collection_modifyitems.)"""
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return
    if any(
        definitions[-1].scope in ("module", "package", "class")
        for definitions in fixture_info.name2fixturedefs.values()
    ):
        item.add_marker(pytest.mark.xdist_group(item.path.stem))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says plainly, at the end, when the real-engine tests did not run (no Pulumi engine here)."""
    from tests.engine_support import NO_ENGINE

    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_ENGINE in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("!", f"{len(skipped)} real-engine tests did not run", red=True, bold=True)
        terminalreporter.write_line(NO_ENGINE)

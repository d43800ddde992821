"""Helpers for tests/test_bad_input.py: the edge function on the local stack, queue snapshots, and the Pulumi
program under `pulumi.runtime.set_mocks` with a monitor that records every registration attempt."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pulumi
from psycopg.types.json import Jsonb
from pulumi.runtime.mocks import MockMonitor

from components.config import PROJECT
from devstack.bubble_double import BubbleDouble
from tests import function_support
from tests.conftest import Database
from tests.function_support import Host

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO / "supabase" / "functions"
MAIN = REPO / "__main__.py"

# Distinctive values: none may ever appear in an error message, a queue row or a log line.
BUBBLE_TOKEN = "bubble-BADINPUT-SECRET-5e1d7c"
REVOKED_TOKEN_HINT = "bubble-ROTATED-SECRET-0b9f"  # what the double expects once our token is "revoked"
LEGACY_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.bad-input-signature"
SECRET_KEY = "sb_secret_BADINPUT_9d3a2f"
HTTP_TIMEOUT_MS = 1000
PROCESS = "process_queue_data_api"
RETRY = "retry_failed"
BUBBLE_PATH = "/version-test/api/1.1/obj/user"


def start_host(tmp: Path, database: Database, bubble: BubbleDouble, **settings: str | None) -> Iterator[Host]:
    # A fixed concurrency of 5: a test counts the requests in flight when Bubble refuses the token.
    settings = {"BUBBLE_SYNC_CONCURRENCY": "5", **settings}
    yield from function_support.start_host(
        tmp, database, bubble, bubble_token=BUBBLE_TOKEN, service_role_key=LEGACY_KEY, secret_key=SECRET_KEY,
        http_timeout_ms=HTTP_TIMEOUT_MS, **settings,
    )  # fmt: skip


def database_password(database: Database) -> str:
    return database.dsn.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


# -- the queue -----------------------------------------------------------------------------------------------


def enqueue_good(conn: psycopg.Connection[Any], count: int, prefix: str = "ok") -> list[str]:
    ids = [f"{prefix}{i:03d}" for i in range(count)]
    for record_id in ids:
        conn.execute(
            "select bubble_sync.enqueue('profiles', %s, 'INSERT', %s)",
            (record_id, Jsonb({"email": f"{record_id}@example.com", "first_name": "Ada"})),
        )
    return ids


def insert_raw(
    conn: psycopg.Connection[Any],
    record_id: str,
    payload_sql: str,
    *,
    operation: str = "INSERT",
    bubble_id: str | None = None,
) -> None:
    """A row written by direct SQL, as a hand-made producer (or the seed's setup) would: any jsonb payload,
    any operation the table allows."""
    conn.execute(
        "insert into public.sync_queue (table_name, record_id, operation, payload, bubble_id)"
        f" values ('profiles', %s, %s, ({payload_sql})::jsonb, %s)",
        (record_id, operation, bubble_id),
    )


def row(conn: psycopg.Connection[dict[str, Any]], record_id: str) -> dict[str, Any]:
    found = conn.execute(
        "select * from public.sync_queue where record_id = %s order by id", (record_id,)
    ).fetchall()
    assert len(found) == 1, found
    return found[0]


def snapshot(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every queue row, every column, and the dispatch bookkeeping: equal before and after means untouched."""
    rows = conn.execute("select to_jsonb(q)::text from public.sync_queue q order by id").fetchall()
    state = conn.execute("select to_jsonb(s)::text from bubble_sync.dispatch_state s").fetchall()
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows + state]


def assert_dead(found: dict[str, Any], message: str) -> None:
    """Failed for good with `message`: no retry will pick it up."""
    assert found["status"] == "failed", found
    assert found["retry_count"] >= found["max_retries"], found
    assert found["next_retry_at"] is None, found
    assert found["lease_token"] is None, found
    assert found["error_message"] == message, found


def assert_synced(conn: psycopg.Connection[Any], bubble: BubbleDouble, ids: list[str]) -> None:
    """Each of `ids` completed, with the id of the one Bubble user carrying its key."""
    by_key: dict[str, list[str]] = {}
    for record in bubble.records("user", env="test"):
        by_key.setdefault(record.get("supabase_id"), []).append(record["_id"])
    for record_id in ids:
        found = row(conn, record_id)
        assert found["status"] == "completed", found
        assert by_key.get(f"profiles:{record_id}") == [found["bubble_id"]], (record_id, by_key)


def bubble_requests_for(bubble: BubbleDouble, record_id: str) -> list[dict[str, Any]]:
    """Requests whose logged body or query names the record's key (bodies are logged up to 200 chars)."""
    key = f"profiles:{record_id}"
    return [r for r in bubble.requests() if key in (r.get("body") or "") or key in (r.get("query") or "")]


# -- the Pulumi program under mocks --------------------------------------------------------------------------


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, remembering every resource the program tried to register."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[str] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(f"{request.type}::{request.name}")
        return super().RegisterResource(request)


class EchoMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}_id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def run_program(values: dict[str, str], secret_keys: list[str]) -> RecordingMonitor:
    """Runs __main__.py with this stack config; returns the monitor (what was registered). Raises what the
    program raises. The caller restores pulumi's settings (see the `pulumi_program` fixture)."""
    mocks = EchoMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="badinput", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{k}": v for k, v in values.items()},
        secret_keys=[f"{PROJECT}:{k}" for k in secret_keys if k in values],
    )
    run_program.monitor = monitor  # type: ignore[attr-defined]

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    program()
    return monitor


def saved_pulumi_settings() -> tuple[Any, ...]:
    s = pulumi.runtime.settings.SETTINGS
    return (s.project, s.stack, s.monitor, s.engine, s.dry_run)


def restore_pulumi_settings(saved: tuple[Any, ...]) -> None:
    pulumi.runtime.set_all_config({}, secret_keys=[])
    s = pulumi.runtime.settings.SETTINGS
    s.project, s.stack, s.monitor, s.engine, s.dry_run = saved

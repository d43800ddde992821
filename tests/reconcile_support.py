"""What the reconcile tests share: three mapped tables (users that sync deletes, listings archived on delete
that name their host, messages that sync deletes), the stack's triggers and mapping rows applied as `pulumi
up` applies them, the bubble_sync function served by Deno against the Bubble double, a background processor
(what pg_cron and the dispatch trigger do on a stack), and `reconcile` run in-process."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from components.mapping_config import parse_mappings
from components.mappings import Mapping
from components.operator.reconcile import BubbleSettings, run_reconcile
from components.sql.plan import mapping_unit
from devstack.bubble_double import BubbleDouble
from tests.function_support import Host

BUBBLE_TOKEN = "bubble-reconcile-token-4a9c2e7f1b"
LEGACY_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.reconcile-test-signature"
SECRET_KEY = "sb_secret_reconcile_test_5b8d2f"
PROCESS = "process_queue_data_api"

TABLES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  email      text not null,
  first_name text,
  is_test    boolean not null default false,
  created_at timestamptz not null default now()
);
create table public.listings (
  id      bigint generated always as identity primary key,
  title   text not null,
  price   numeric,
  host_id uuid references public.profiles (id) on delete set null
);
create table public.messages (
  id   bigint generated always as identity primary key,
  body text not null
);
"""
MAPPINGS = [
    {
        "name": "users", "table": "public.profiles", "dataType": "user", "where": "not is_test",
        "fields": {"email": "email", "first_name": "First Name", "created_at": "Joined"},
        "operations": ["insert", "update", "delete"],
    },
    {
        "name": "listings", "table": "public.listings", "dataType": "listing",
        "fields": {"title": "Title", "price": "Price", "host_id": {"field": "Host", "ref": "users"}},
        "onDelete": {"set": {"Archived": True}},
    },
    {
        "name": "messages", "table": "public.messages", "dataType": "message",
        "fields": {"body": "Body"}, "operations": ["insert", "update", "delete"],
    },
]  # fmt: skip
SCHEMA = {
    "user": {"First Name": "text", "Joined": "date", "supabase_id": "text"},
    "listing": {
        "Title": "text", "Price": "number", "Host": "user", "Archived": "boolean", "supabase_id": "text",
    },
    "message": {"Body": "text", "supabase_id": "text"},
}  # fmt: skip


def parsed() -> tuple[Mapping, ...]:
    mappings, problems = parse_mappings(MAPPINGS, "supabase_id")
    assert problems == []
    return mappings


def deploy(conn: psycopg.Connection[Any]) -> None:
    """The tables, fresh, with the mappings' rows and triggers as `pulumi up` applies them."""
    conn.execute("drop table if exists public.messages, public.listings, public.profiles")
    conn.execute(TABLES)
    conn.execute("truncate bubble_sync.mappings")
    every = parsed()
    for mapping in every:
        unit = mapping_unit(mapping, every)
        with conn.transaction():
            conn.execute(unit.record.apply_sql)
            conn.execute(unit.trigger.apply_sql)


def run_function(client: httpx.Client, host: Host) -> dict[str, Any]:
    response = client.post(
        host.function_url,
        json={"action": PROCESS, "wait": True},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def sync(client: httpx.Client, host: Host, conn: psycopg.Connection[Any]) -> None:
    """Runs the function until no row is pending."""
    for _ in range(10):
        run_function(client, host)
        if (
            conn.execute("select count(*) as n from public.sync_queue where status = 'pending'").fetchone()[
                "n"
            ]
            == 0
        ):
            return
    raise AssertionError("rows still pending after 10 runs")


@contextmanager
def processor(host: Host, every_seconds: float = 0.3) -> Iterator[None]:
    """Runs the function every `every_seconds` in the background, as pg_cron and the dispatch trigger do on a
    stack, while the block runs (a --repair follows its rows until they are applied)."""
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(timeout=120, trust_env=False) as client:
            while not stop.wait(every_seconds):
                run_function(client, host)

    thread = threading.Thread(target=loop, name="test-processor", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.out)

    def counts(self, key: str = "mappings") -> dict[str, dict[str, int]]:
        """{mapping: {kind: count}} from the JSON document (`after` for a repair's second look)."""
        kinds = ("missing", "stale", "orphaned", "duplicated")
        return {m["mapping"]: {k: m[k]["count"] for k in kinds} for m in self.document[key]}


def settings(
    bubble: BubbleDouble, *, rate_limit_per_minute: int = 0, share_percent: int = 20
) -> BubbleSettings:
    return BubbleSettings(
        base_url=f"{bubble.url}/version-test/api/1.1",
        token=BUBBLE_TOKEN,
        rate_limit_per_minute=rate_limit_per_minute,
        share_percent=share_percent,
    )


def reconcile(dsn: str, bubble: BubbleDouble, *flags: str, **options: Any) -> Outcome:
    """`reconcile` in-process: flags as the command line's (--json, --repair, ...), options as
    run_reconcile's."""
    out, err = io.StringIO(), io.StringIO()
    named = {flag.removeprefix("--").replace("-", "_"): True for flag in flags}
    if "json" in named:
        named["as_json"] = named.pop("json")
    code = run_reconcile(
        dsn,
        options.pop("settings", None) or settings(bubble),
        out=out,
        err=err,
        tty=False,
        poll_seconds=0.2,
        **named,
        **options,
    )
    return Outcome(code, out.getvalue(), err.getvalue())


def mappings_json_env() -> dict[str, str]:
    """The function's BUBBLE_SYNC_MAPPINGS for these mappings."""
    from components.mappings import mappings_json

    return {"BUBBLE_SYNC_MAPPINGS": mappings_json(parsed())}

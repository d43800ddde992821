"""The bubble_sync function served by the local Deno host against a test database and the Bubble double:
shared by the function's tests (test_edge_function.py, test_bad_input.py, test_backfill_sync.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from components.config import load_config
from components.function_env import function_env
from devstack.bubble_double import BubbleDouble
from devstack.functions import runtime_env, start_functions_host, stop_process
from tests.conftest import Database
from tests.queue_support import EMPTY_GATE

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "supabase" / "functions"
# A fast, healthy Bubble answering the way the double answers by default: a test that chose another answer
# (a used-email wording, a Retry-After form) must not hand it to the next test.
HEALTHY_BUBBLE: dict[str, object] = {
    "latency_ms": 0,
    "latency_jitter_ms": 0,
    "rate_limit_per_minute": 0,
    "faults": [],
    "bulk_ms_per_line": 0,
    "used_email_answer": "code",
    "user_email_search": "builtin",
    "user_email_patch": "refuse",
    "retry_after": "seconds",
}


def empty_queue_and_bubble(conn: psycopg.Connection[Any], bubble: BubbleDouble, **knobs: object) -> None:
    """An empty queue, Bubble's gate as a fresh install has it, and an empty Bubble answering as
    HEALTHY_BUBBLE (with `knobs` on top): what each test of a module sharing a database and a double starts
    from."""
    bubble.reset()
    bubble.configure(**{**HEALTHY_BUBBLE, **knobs})
    # links too: tests reuse record ids, and a stale link would make a create a modify
    conn.execute("truncate public.sync_queue restart identity; truncate bubble_sync.links")
    conn.execute(EMPTY_GATE)


def function_settings(bubble_base_url: str, bubble_token: str, **overrides: str | None) -> dict[str, str]:
    """The function's own settings as a stack with the stack config's defaults gives them
    (components.function_env), but unpaced: these tests drive Bubble's rate limit themselves, and pacing has
    tests of its own. `overrides` on top (None: unset)."""
    given = {"bubbleBaseUrl": bubble_base_url, "bubbleApiToken": bubble_token}
    config = load_config(given.get, for_sql=True, env={})
    settings: dict[str, str | None] = {name: str(value) for name, value in function_env(config).items()}
    settings["BUBBLE_RATE_LIMIT_PER_MINUTE"] = "0"
    settings.update(overrides)
    return {name: value for name, value in settings.items() if value is not None}


@dataclass(frozen=True)
class Host:
    url: str
    log_path: Path

    @property
    def function_url(self) -> str:
        return f"{self.url}/bubble_sync"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_host(
    tmp: Path,
    database: Database,
    bubble: BubbleDouble,
    *,
    bubble_token: str,
    service_role_key: str,
    secret_key: str,
    http_timeout_ms: int,
    **settings: str | None,
) -> Iterator[Host]:
    """Serves bubble_sync against `database` and `bubble` until the generator is closed. The function's
    caller keys are the legacy `service_role_key` and, in SUPABASE_SECRET_KEYS, `secret_key`; `settings`
    override the function's own secrets (None: unset)."""
    extra = function_settings(
        f"{bubble.url}/version-test/api/1.1",
        bubble_token,
        BUBBLE_SYNC_HTTP_TIMEOUT_MS=str(http_timeout_ms),
        **settings,
    )
    env = runtime_env(
        supabase_url="http://127.0.0.1:54321",
        db_url=database.dsn,
        service_role_key=service_role_key,
        extra=extra,
    )
    # Supabase injects this one too; runtime_env's `extra` refuses the reserved prefix, rightly.
    env["SUPABASE_SECRET_KEYS"] = json.dumps({"default": secret_key})
    log_path = tmp / "functions.log"
    proc, url = start_functions_host(functions_dir=FUNCTIONS_DIR, port=0, env=env, log_path=log_path)
    try:
        yield Host(url, log_path)
    finally:
        stop_process(proc)

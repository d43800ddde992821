"""Helpers for the end-to-end and fault tests (tests/test_end_to_end.py, tests/test_faults.py).

* the user's signup table and its trigger, attached the way sql/functions/enqueue.sql documents it;
* `recover`: drives the edge function with `"wait": true` POSTs (service key as Bearer) until the queue is
  quiescent, moving time forward between rounds by rewriting `next_retry_at` / `lease_expires_at` in SQL;
* `assert_invariants`: the ONE check every fault test ends with (nothing lost, no duplicate Bubble record,
  every row completed or failed for good with its reason, nothing stuck in `processing`);
* the fault tests' rig, a local stack whose parts a test can break, is tests/fault_rig.py's `FaultRig`.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from devstack.bubble_double import user_email

PROCESS = "process_queue_data_api"
RETRY = "retry_failed"
EXTERNAL_KEY = "supabase_id"  # BUBBLE_EXTERNAL_KEY_FIELD's default

# The user's signup table. `password_hash` must never reach Bubble: the trigger below has no allow-list, so
# enqueue_change's default filter (credential-like column names) is what keeps it out.
SIGNUP_TABLE_SQL = """
create table if not exists public.profiles (
  id            uuid primary key default gen_random_uuid(),
  email         text,
  full_name     text,
  password_hash text
);
create or replace trigger bubble_sync_enqueue
  after insert or update on public.profiles
  for each row execute function bubble_sync.enqueue_change();
"""

# Open work: what the queue would still do on its own (or after a backoff) if time moved on.
OPEN_ROWS_SQL = """
select count(*) as n from public.sync_queue
 where status in ('pending', 'processing') or (status = 'failed' and retry_count < max_retries)
"""


# --- the signup table ---------------------------------------------------------------------------------------


def create_signup_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SIGNUP_TABLE_SQL)


def sign_up(
    conn: psycopg.Connection[Any],
    count: int,
    *,
    prefix: str = "user",
    with_email: Callable[[int], bool] = lambda i: True,
) -> list[str]:
    """Inserts `count` signups in ONE statement (as a batch import would); returns their ids."""
    rows = conn.execute(
        """
        insert into public.profiles (email, full_name, password_hash)
        select case when (%(mask)s::boolean[])[i]
                    then format('%%s%%s-%%s@example.com', %(prefix)s::text, i, left(md5(random()::text), 6))
               end,
               format('Person %%s', i), 'pbkdf2$' || md5(i::text || %(prefix)s::text)
          from generate_series(1, %(n)s) i
        returning id::text as id
        """,
        {"n": count, "prefix": prefix, "mask": [with_email(i) for i in range(1, count + 1)]},
    ).fetchall()
    return [row["id"] if isinstance(row, dict) else row[0] for row in rows]


def keys_for(ids: Iterable[str]) -> set[str]:
    return {f"profiles:{i}" for i in ids}


# --- driving the function -----------------------------------------------------------------------------------


def post_action(
    client: httpx.Client, function_url: str, key: str, action: str, **body: Any
) -> dict[str, Any]:
    response = client.post(
        function_url,
        json={"action": action, "wait": True, **body},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, f"{action}: {response.status_code} {response.text}"
    return response.json()


def open_rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(OPEN_ROWS_SQL).fetchone()
    assert row is not None
    return int(row["n"] if isinstance(row, dict) else row[0])


def move_time_forward(
    conn: psycopg.Connection[Any], *, seconds: float | None = None, lease_grace_seconds: float = 2.0
) -> None:
    """What waiting would do, without the wait: every backoff and Retry-After is due now (or, with `seconds`,
    that much sooner: only what was due within them is due now), Bubble's gate likewise (the circuit
    breaker's next probe, a 429's shared pause), and a lease whose row has not moved for `lease_grace_seconds`
    (its holder is dead or stuck) has run out."""
    if seconds is None:
        conn.execute(
            "update public.sync_queue set next_retry_at = now() - interval '1 second'"
            " where next_retry_at > now()"
        )
    else:
        conn.execute(
            "update public.sync_queue set next_retry_at = next_retry_at - make_interval(secs => %s)"
            " where next_retry_at > now()",
            (seconds,),
        )
    conn.execute(
        "update public.sync_queue set lease_expires_at = now() - interval '1 second'"
        " where status = 'processing' and lease_expires_at > now()"
        "   and updated_at < now() - make_interval(secs => %s)",
        (lease_grace_seconds,),
    )
    # Bubble's gate keeps time too: the next probe and a 429's shared pause come sooner in the same way.
    conn.execute(
        "update bubble_sync.bubble_gate set"
        " last_probe_at = last_probe_at - make_interval(secs => coalesce(%s, 86400)),"
        " next_request_at = case when %s::float8 is null then least(next_request_at, now())"
        "                   else next_request_at - make_interval(secs => %s) end"
        " where id = 1",
        (seconds, seconds, seconds),
    )


def recover(
    conn: psycopg.Connection[Any],
    post: Callable[[str], dict[str, Any]],
    *,
    max_rounds: int = 30,
    between_rounds: Callable[[], None] | None = None,
    step_seconds: float | None = None,
) -> int:
    """Runs both actions until no row is open; between rounds, time moves forward (backoffs due, dead
    leases expired; by `step_seconds` only, when given). Returns the rounds it took; fails after
    `max_rounds`."""
    for round_number in range(1, max_rounds + 1):
        post(PROCESS)
        post(RETRY)
        if open_rows(conn) == 0:
            return round_number
        if between_rounds is not None:
            between_rounds()
        move_time_forward(conn, seconds=step_seconds)
        time.sleep(0.2)
    states = conn.execute(
        "select status, retry_count, max_retries, error_message, count(*) as n from public.sync_queue"
        " group by 1, 2, 3, 4 order by 1"
    ).fetchall()
    raise AssertionError(f"the queue was not quiescent after {max_rounds} rounds: {states}")


# --- the invariants -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    completed: int
    permanently_failed: int
    bubble_records: int
    failure_reasons: Counter[str]
    failed_but_in_bubble: int


def assert_invariants(
    conn: psycopg.Connection[Any], bubble_records: list[dict[str, Any]], expected_keys: set[str]
) -> Outcome:
    """The fault suite's invariants, all checked here and nowhere else:

    1. zero rows lost: every enqueued key has a row in sync_queue;
    2. zero duplicate Bubble records, per external key and per email (case-insensitive);
    3. every row is `completed` (with the bubble_id of the one record carrying its key) or `failed` for good
       (retry_count >= max_retries, so retry_failed never takes it again) with an error_message;
    4. no row is left `processing` (or `pending`).
    """
    rows = conn.execute(
        "select table_name || ':' || record_id as key, status, bubble_id, retry_count, max_retries,"
        " next_retry_at, error_message from public.sync_queue"
    ).fetchall()
    queued = {r["key"] for r in rows}
    lost = expected_keys - queued
    assert not lost, f"{len(lost)} enqueued rows are missing from sync_queue: {sorted(lost)[:5]}"

    per_key = Counter(r.get(EXTERNAL_KEY) for r in bubble_records)
    duplicates = {k: n for k, n in per_key.items() if n > 1}
    assert not duplicates, f"duplicate Bubble records per {EXTERNAL_KEY}: {duplicates}"
    emails = (user_email(r) or r.get("email") for r in bubble_records)
    per_email = Counter(email.casefold() for email in emails if isinstance(email, str))
    duplicate_emails = {k: n for k, n in per_email.items() if n > 1}
    assert not duplicate_emails, f"duplicate Bubble records per email: {duplicate_emails}"
    strangers = set(per_key) - expected_keys
    assert not strangers, f"Bubble holds records no enqueued row asked for: {sorted(map(str, strangers))[:5]}"

    bubble_id_of = {r.get(EXTERNAL_KEY): r["_id"] for r in bubble_records}
    stuck = [r for r in rows if r["status"] in ("processing", "pending")]
    assert not stuck, f"{len(stuck)} rows not finished: {stuck[:3]}"
    completed = failed = 0
    reasons: Counter[str] = Counter()
    for r in rows:
        if r["status"] == "completed":
            completed += 1
            assert r["bubble_id"] and r["bubble_id"] == bubble_id_of.get(r["key"]), (
                f"completed row without its Bubble record: {r}"
            )
        else:
            assert r["status"] == "failed", r
            assert r["error_message"], f"failed row without a reason: {r}"
            assert r["retry_count"] >= r["max_retries"], f"failed row that would still be retried: {r}"
            failed += 1
            reasons[r["error_message"][:60]] += 1
    # Not an invariant, but worth knowing: rows failed for good although Bubble has their record (a create
    # that was stored but never answered, then every lookup failed too).
    in_bubble_but_failed = set(bubble_id_of) - {r["key"] for r in rows if r["status"] == "completed"}
    return Outcome(completed, failed, len(bubble_records), reasons, len(in_bubble_but_failed))


def creates_per_key(requests: list[dict[str, Any]]) -> Counter[str]:
    """Single create requests that reached Bubble, per external key (from the request log's body summary)."""
    sent: Counter[str] = Counter()
    for r in requests:
        if (
            r["method"] == "POST"
            and re.search(r"/obj/[^/]+$", r["path"])
            and not r["path"].endswith("/bulk")
            and r.get("body")
        ):
            try:
                sent[json.loads(r["body"])[EXTERNAL_KEY]] += 1
            except (ValueError, KeyError):
                pass
    return sent


def wait_for(check: Callable[[], bool], what: str, timeout: float) -> float:
    """Polls `check` until true; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started

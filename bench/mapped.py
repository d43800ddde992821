"""The `mappings` profile's workload and checks (its app: bench/mapped_app.py).

`drive` makes one burst in one transaction (users, their listings and messages, interleaved, a few test
accounts among them), then deletes every message marked for it as soon as Bubble has it (its link is in
bubble_sync.links), until every queued row is synced or the drain timeout passes. It returns the harness's
`Observation`, each queue row named `<table>:<record id>` (`:delete` added for a DELETE row) and reaching
Bubble when the double created the thing (its `Created Date`) or answered the DELETE (its request log).

`check` then compares Bubble with Supabase: every user and listing and every message not deleted in Bubble,
once, with the mapped fields as Supabase holds them (dates as Bubble writes them), each listing's Host the
Bubble id of its host's user, the deleted messages and the test accounts absent, nothing else there, and
every queue row completed. Each difference is one line of `MappedRun.failures`.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.mapped_app import KEY_FIELD, Sizes, burst_sql, sizes_for
from bench.observation import Observation, parse_bubble_time
from bench.profiles import Profile, Settings
from bench.stack import Stack
from devstack.bubble_double import BubbleDouble

ENV = "test"  # the harness's Bubble base URL is the version-test one
#: the data type of each source table's records, by sync_queue.table_name
DATA_TYPES = {"profiles": "user", "listings": "listing", "messages": "message"}
#: each table's mapping, by sync_queue.table_name
MAPPING_NAMES = {"profiles": "users", "listings": "listings", "messages": "messages"}
DELETE_SUFFIX = ":delete"
_UTC_MS = """to_char({} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
# Messages marked for deletion that Bubble has (linked), not deleted yet.
_SYNCED_DOOMED = (
    "select m.id::text, l.bubble_id from public.messages m"
    " join bubble_sync.links l on l.table_name = 'messages' and l.record_id = m.id::text"
    " where m.deleted_later"
)


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Deleter:
    """Deletes the messages marked for it once Bubble has them, remembering each one's Bubble id and when
    the double created it (the thing is gone afterwards)."""

    double: BubbleDouble
    #: message id -> (its Bubble id, the double's Created Date as epoch seconds)
    deleted: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: the delete statements it ran, one transaction each (each queues its rows and may wake the worker)
    transactions: int = 0

    def delete_synced(self, conn: psycopg.Connection[Any]) -> int:
        """One pass: deletes the marked messages Bubble has now; how many."""
        found = conn.execute(_SYNCED_DOOMED).fetchall()
        ids = []
        for message_id, bubble_id in found:
            thing = self.double.record("message", bubble_id, env=ENV)
            created = parse_bubble_time(thing["Created Date"]) if thing else float("nan")
            self.deleted[message_id] = (bubble_id, created)
            ids.append(int(message_id))
        if ids:
            conn.execute("delete from public.messages where id = any(%s)", (ids,))
            self.transactions += 1
        return len(ids)


@dataclass
class Checked:
    """What `check` found: the differences (one line each), the things of each data type Bubble holds, how
    many are duplicates (beyond one per record) and how many are test accounts."""

    failures: list[str] = field(default_factory=list)
    bubble_counts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    test_accounts_in_bubble: int = 0


@dataclass
class MappedRun:
    """What the harness's Observation does not carry: the sizes, each queue row's mapping and operation, the
    messages deleted, the insert transaction's length and what `check` found."""

    sizes: Sizes
    #: row key (as Observation.rows name them) -> (mapping name, "create" or "delete")
    row_kinds: dict[str, tuple[str, str]]
    deleted: int
    delete_transactions: int
    insert_seconds: float
    checked: Checked
    #: listing id -> its host's id (profiles.id), to time each listing after its host
    listing_hosts: dict[str, str] = field(default_factory=dict)


def row_key(table: str, record_id: str, operation: str) -> str:
    return f"{table}:{record_id}" + (DELETE_SUFFIX if operation == "DELETE" else "")


def drive(profile: Profile, settings: Settings, stack: Stack) -> Observation:
    sizes = sizes_for(settings.signups)
    deleter = Deleter(stack.double)
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        _log(
            f"[{profile.name}] one transaction: {sizes.users:,} users (+{sizes.test_accounts} test accounts),"
            f" {sizes.listings:,} listings, {sizes.messages:,} messages; then {sizes.deleted:,} messages"
            " deleted once in Bubble"
        )
        started_at = time.time()
        conn.execute(burst_sql(sizes))
        inserts_done_at = time.time()
        deadline = inserts_done_at + settings.drain_timeout_s
        timed_out = True
        while time.time() < deadline:
            deleter.delete_synced(conn)
            if len(deleter.deleted) >= sizes.deleted and _settled(conn, sizes.requests):
                timed_out = False
                break
            time.sleep(0.2)
        ended_at = time.time()
        queue = _queue_rows(conn)
        checked = check(conn, stack.double, deleter, queue)
        hosts = conn.execute("select id::text, host_id::text from public.listings").fetchall()
    if len(deleter.deleted) < sizes.deleted:
        checked.failures.insert(
            0, f"{sizes.deleted - len(deleter.deleted)} messages to delete never reached Bubble to be deleted"
        )
    if timed_out:
        checked.failures.insert(0, f"not drained {settings.drain_timeout_s:g} s after the burst")
    requests = [r for r in stack.double.requests() if "/obj/" in r["path"]]
    reached = _reached_bubble(stack.double, deleter, requests)
    rows = [
        {
            "record_id": row_key(q["table_name"], q["record_id"], q["operation"]),
            "status": q["status"],
            "created_at": q["created_at"].timestamp(),
            "completed_at": q["completed_at"].timestamp() if q["completed_at"] else None,
            "updated_at": q["updated_at"].timestamp(),
            "retry_count": q["retry_count"],
            "max_retries": q["max_retries"],
            "error_message": q["error_message"],
        }
        for q in queue
    ]
    kinds = {
        row_key(q["table_name"], q["record_id"], q["operation"]): (
            MAPPING_NAMES.get(q["table_name"], q["table_name"]),
            "delete" if q["operation"] == "DELETE" else "create",
        )
        for q in queue
    }
    for failure in checked.failures:
        _log(f"[{profile.name}] CHECK FAILED: {failure}")
    return Observation(
        profile=profile,
        settings=settings,
        started_at=started_at,
        steady_ids=[],
        burst_ids=[r["record_id"] for r in rows],
        burst_at=started_at,
        inserts_done_at=inserts_done_at,
        ended_at=ended_at,
        rows=rows,
        bubble_created={key: at for key, at in reached.items() if key in kinds},
        requests=requests,
        # duplicates = records - synced in the report: the deleted things are synced rows with no record
        bubble_records=len([k for k in reached if k in kinds]) + checked.duplicates,
        timed_out=timed_out,
        notes=[f"not drained {settings.drain_timeout_s:g} s after the burst"] if timed_out else [],
        mapped=MappedRun(
            sizes=sizes,
            row_kinds=kinds,
            deleted=len(deleter.deleted),
            delete_transactions=deleter.transactions,
            insert_seconds=inserts_done_at - started_at,
            checked=checked,
            listing_hosts=dict(hosts),
        ),
    )


def _settled(conn: psycopg.Connection[Any], expected: int) -> bool:
    """Every queue row synced or failed for good, and at least `expected` of them."""
    found = conn.execute(
        "select count(*) filter (where status = 'completed'"
        " or (status = 'failed' and retry_count >= max_retries)), count(*) from public.sync_queue"
    ).fetchone()
    assert found is not None
    settled, total = found
    return bool(settled >= expected and settled == total)


def _queue_rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(
        "select table_name, record_id, operation, status, created_at, completed_at, updated_at, retry_count,"
        " max_retries, error_message from public.sync_queue order by queue_order, created_at"
    )
    names = [c.name for c in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _reached_bubble(
    double: BubbleDouble, deleter: Deleter, requests: list[dict[str, Any]]
) -> dict[str, float]:
    """When each row reached Bubble: a create at its thing's Created Date (a deleted message's as the deleter
    saw it), a delete when the double answered it."""
    reached: dict[str, float] = {}
    for table, data_type in DATA_TYPES.items():
        for thing in double.records(data_type, env=ENV):
            key = str(thing.get(KEY_FIELD, ""))
            if key.startswith(table + ":"):
                at = parse_bubble_time(thing["Created Date"])
                reached[key] = min(at, reached.get(key, at))
    by_bubble_id = {}
    for message_id, (bubble_id, created) in deleter.deleted.items():
        reached.setdefault(f"messages:{message_id}", created)
        by_bubble_id[bubble_id] = message_id
    for request in requests:
        if request["method"] == "DELETE" and 200 <= request["status"] < 300:
            deleted_id = by_bubble_id.get(request["path"].rsplit("/", 1)[-1])
            if deleted_id is not None:
                key = f"messages:{deleted_id}{DELETE_SUFFIX}"
                at = parse_bubble_time(request["time"])
                reached[key] = min(at, reached.get(key, at))
    return reached


# -- the checks ---------------------------------------------------------------------------------------------


def check(
    conn: psycopg.Connection[Any], double: BubbleDouble, deleter: Deleter, queue: list[dict[str, Any]]
) -> Checked:
    """Bubble against Supabase at the end of the run."""
    checked = Checked()
    failures = checked.failures
    things: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for table, data_type in DATA_TYPES.items():
        by_key: dict[str, list[dict[str, Any]]] = {}
        stored = double.records(data_type, env=ENV)
        checked.bubble_counts[data_type] = len(stored)
        for record in stored:
            by_key.setdefault(str(record.get(KEY_FIELD)), []).append(record)
        for key, found in by_key.items():
            if len(found) > 1:
                checked.duplicates += len(found) - 1
                failures.append(f"{data_type} {key}: {len(found)} things in Bubble")
        things[table] = by_key

    def one(table: str, record_id: str) -> dict[str, Any] | None:
        found = things[table].pop(f"{table}:{record_id}", None)
        return found[0] if found else None

    users = conn.execute(
        f"select id::text, email, first_name, last_name, {_UTC_MS.format('created_at')}, is_test"
        " from public.profiles"
    ).fetchall()
    user_ids: dict[str, str] = {}
    for user_id, email, first, last, joined, is_test in users:
        thing = one("profiles", user_id)
        if is_test:
            if thing is not None:
                checked.test_accounts_in_bubble += 1
                failures.append(f"test account {email} is in Bubble as user {thing['_id']}")
            continue
        if thing is None:
            failures.append(f"user {user_id} ({email}) is not in Bubble")
            continue
        user_ids[user_id] = thing["_id"]
        bubble_email = thing.get("authentication", {}).get("email", {}).get("email")
        fields = {"First Name": first, "Last Name": last, "Joined": joined}
        _compare(failures, f"user {user_id}", thing, fields)
        if bubble_email != email:
            failures.append(f"user {user_id}: email {bubble_email!r} in Bubble, {email!r} in Supabase")
    test_emails = {email for _, email, *_, is_test in users if is_test}
    for thing in (t for found in things["profiles"].values() for t in found):
        email = thing.get("authentication", {}).get("email", {}).get("email")
        if email in test_emails:
            checked.test_accounts_in_bubble += 1
            failures.append(f"test account {email} is in Bubble as user {thing['_id']}")

    listings = conn.execute("select id::text, title, price::float8, host_id::text from public.listings")
    for listing_id, title, price, host_id in listings.fetchall():
        thing = one("listings", listing_id)
        if thing is None:
            failures.append(f"listing {listing_id} is not in Bubble")
            continue
        host = user_ids.get(host_id, f"(host {host_id} not in Bubble)")
        _compare(failures, f"listing {listing_id}", thing, {"Title": title, "Price": price, "Host": host})

    messages = conn.execute(f"select id::text, body, {_UTC_MS.format('sent_at')} from public.messages")
    for message_id, body, sent in messages.fetchall():
        thing = one("messages", message_id)
        if message_id in deleter.deleted:
            failures.append(f"message {message_id} was deleted in Bubble but is still in Supabase")
        elif thing is None:
            failures.append(f"message {message_id} is not in Bubble")
        else:
            _compare(failures, f"message {message_id}", thing, {"Body": body, "Sent": sent})
    for message_id, (bubble_id, _) in deleter.deleted.items():
        if double.record("message", bubble_id, env=ENV) is not None:
            failures.append(f"message {message_id} was deleted in Supabase, still in Bubble ({bubble_id})")
        things["messages"].pop(f"messages:{message_id}", None)

    for table, rest in things.items():
        if rest:
            keys = sorted(rest)
            failures.append(
                f"{len(keys)} {DATA_TYPES[table]} thing(s) in Bubble match no row of public.{table}:"
                f" {', '.join(keys[:3])}"
            )
    statuses = Counter(q["status"] for q in queue)
    unsettled = [q for q in queue if q["status"] != "completed"]
    if unsettled:
        first = unsettled[0]
        failures.append(
            f"{len(unsettled)} queue row(s) not completed ({dict(statuses)}); the first:"
            f" {first['table_name']}:{first['record_id']} {first['operation']} {first['status']}:"
            f" {first['error_message']}"
        )
    return checked


def _compare(failures: list[str], what: str, thing: dict[str, Any], expected: dict[str, Any]) -> None:
    """A line per field whose Bubble value differs from Supabase's (a null: the field is empty in Bubble)."""
    for name, value in expected.items():
        held = thing.get(name)
        if held != value:
            failures.append(f"{what}: {name} {held!r} in Bubble, {value!r} in Supabase")

"""`python -m components backfill`: queues the records a table already holds, the way its signup trigger
would have queued them, so that an app adopting bubble-sync syncs the users it already has.

  plan_backfill  checks the flags against the database before anything is queued (BackfillError names the
                 flag, or says what to do): the table, the key (a column a primary key or unique index covers
                 alone), the fields, the signup trigger's own arguments, the --where, and a queue that takes
                 BACKFILL rows; then counts what would be queued and what skipped (all a --dry-run does)
  queue_chunks   keyset pagination over the key, one transaction per chunk (bubble_sync.enqueue_backfill
                 in sql/functions/backfill.sql; the queries are in sql/operator_backfill.sql): an interrupted
                 run loses at most the chunk in flight, which rolls back, and a re-run skips every record the
                 queue already has, whatever its state
  follow         polls the backfilled rows until none is outstanding
  Progress       rows queued, synced and failed, the rate and an ETA: one updating line on a terminal, a line
                 every --progress-interval seconds otherwise
  run_backfill   connects, runs all of it, says what happened, and which exit code

The rows are synced by the Edge Function like any other (supabase/functions/bubble_sync/backfill.ts): each is
looked up in Bubble by its key first (a record Bubble already has is linked, not created again), the rest
are created in bulk, and new signups are claimed before any backfilled row.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TextIO

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from components.errors import BubbleSyncError
from components.operator.connection import EXIT_CANNOT_CONNECT, OperatorError, _connect, mask_url
from components.operator.formatting import _one_line
from components.operator.queries import backfill_query

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EXIT_DONE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "MAX_CHUNK_SIZE",
    "BackfillError",
    "Counts",
    "Plan",
    "Progress",
    "follow",
    "plan_backfill",
    "queue_chunks",
    "run_backfill",
]

#: every chunk committed (and, when following, every row synced)
EXIT_DONE = 0
#: a chunk failed (rolled back; the chunks before it stay queued), or rows failed for good while following
EXIT_FAILED = 1
#: a flag does not fit the database (nothing was queued); also: no connection (components.operator)
EXIT_USAGE = EXIT_CANNOT_CONNECT
#: Ctrl-C: the committed chunks stay queued and keep syncing
EXIT_INTERRUPTED = 130

#: rows per chunk, and so per transaction. Each record of a chunk is locked as enqueue locks it (an entry in
#: PostgreSQL's shared lock table, which holds max_locks_per_transaction x max_connections: 6,400 by default,
#: 3,840 on Supabase's smallest compute), so a chunk stays well under that.
DEFAULT_CHUNK_SIZE = 500
MAX_CHUNK_SIZE = 2000
#: a chunk that met a lock held too long (chunk_settings: lock_timeout) or a deadlock: tried again this often
CHUNK_ATTEMPTS = 20
#: nothing synced for this long while rows wait: say where to look
STALL_SECONDS = 120.0

_RELKINDS = {"v": "a view", "m": "a materialized view", "f": "a foreign table", "S": "a sequence",
             "c": "a composite type", "i": "an index", "I": "an index", "t": "a TOAST table"}  # fmt: skip


class BackfillError(BubbleSyncError):
    """A flag does not fit the database, or the database is not ready for a backfill. The message names the
    flag (or the step to take) and holds no secret; nothing was queued."""


@dataclass(frozen=True)
class Plan:
    """What the flags mean in this database, checked, and what a run would do now."""

    source_oid: int
    schema: str
    table: str
    queue_table_name: str  # what the signup trigger writes into sync_queue.table_name
    key: str
    key_type: str
    fields: tuple[str, ...]  # empty: every column but credentials, as the trigger without an allow-list
    where: str | None
    chunk_size: int
    matching: int = 0
    null_keys: int = 0
    already_queued: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return qualified_name(self.schema, self.table)

    @property
    def to_scan(self) -> int:
        """The rows the keyset pagination visits."""
        return self.matching - self.null_keys

    @property
    def to_queue(self) -> int:
        return self.to_scan - self.already_queued

    def compose(self, name: str) -> sql.Composed:
        """The query `name` of sql/operator_backfill.sql with its slots filled in."""
        where = "true" if self.where is None else self.where.replace("%", "%%")
        return sql.SQL(backfill_query(name)).format(
            source=sql.Identifier(self.schema, self.table),
            row=sql.Identifier(self.table),
            key=sql.Identifier(self.key),
            key_type=sql.SQL(self.key_type),  # format_type's own output, from the catalogue
            where=sql.SQL(where),
        )


@dataclass
class Counts:
    """What a run has done so far. synced/failed/retrying/outstanding are the table's backfilled rows as the
    queue has them now, synced and failed counted from when the run started."""

    chunks: int = 0
    scanned: int = 0
    queued: int = 0
    skipped: int = 0
    synced: int = 0
    failed: int = 0
    retrying: int = 0
    outstanding: int = 0


def qualified_name(schema: str, table: str) -> str:
    """schema.table as SQL reads it, quoting only the parts that need quotes."""
    return ".".join(
        part if re.fullmatch(r"[a-z_][a-z0-9_$]*", part) else sql.Identifier(part).as_string(None)
        for part in (schema, table)
    )


def _run(
    conn: psycopg.Connection[Any], query: str | sql.Composed, params: Mapping[str, Any] | None = None
) -> psycopg.Cursor[dict[str, Any]]:
    """Runs one query, its rows as dicts whatever the connection's row factory."""
    return conn.cursor(row_factory=dict_row).execute(query, params)


# -- checking the flags --------------------------------------------------------------------------------------


def plan_backfill(
    conn: psycopg.Connection[Any],
    *,
    source: str,
    key: str | None,
    fields: Sequence[str] | None,
    where: str | None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Plan:
    """Checks everything against the database, in one transaction that is rolled back (its probe inserts a
    BACKFILL row), and counts the rows. Raises BackfillError naming the flag at fault."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise BackfillError(f"--chunk-size {chunk_size}: must be between 1 and {MAX_CHUNK_SIZE}")
    if where is not None and not where.strip():
        raise BackfillError("--where is empty: leave it out to take every row")
    try:
        with conn.transaction(force_rollback=True):
            return _plan(conn, source=source, key=key, fields=fields, where=where, chunk_size=chunk_size)
    except psycopg.errors.OutOfMemory as exc:  # pragma: no cover - the lock table, on a busy database
        message = _one_line(str(exc))
        raise BackfillError(f"the database ran out of lock slots ({message}): lower --chunk-size") from None


def _plan(
    conn: psycopg.Connection[Any],
    *,
    source: str,
    key: str | None,
    fields: Sequence[str] | None,
    where: str | None,
    chunk_size: int,
) -> Plan:
    present = _run(conn, backfill_query("present")).fetchone()
    if not present["queue"]:
        raise BackfillError(
            "public.sync_queue does not exist: the stack is not applied to this database (pulumi up first)"
        )
    if not present["backfill"]:
        raise BackfillError(
            "this database has the queue of an earlier release, without bubble_sync.enqueue_backfill: run "
            "`pulumi up` for this stack first (it also deploys the Edge Function that syncs backfilled rows)"
        )

    table = _source(conn, source)
    columns = {
        row["name"]: row["type"] for row in _run(conn, backfill_query("columns"), {"oid": table["oid"]})
    }
    label = qualified_name(table["schema_name"], table["table_name"])
    triggers = [_trigger_args(row) for row in _run(conn, backfill_query("triggers"), {"oid": table["oid"]})]
    warnings: list[str] = []
    if len({(k, f) for _, k, f in triggers}) > 1:
        warnings.append(
            f"{label} has signup triggers with different arguments: {_describe_triggers(triggers)}"
        )
    trigger = triggers[0] if triggers else None

    key = _checked_key(conn, key, trigger, table["oid"], columns, label)
    chosen = _checked_fields(fields, trigger, columns, label, warnings)

    plan = Plan(
        source_oid=table["oid"],
        schema=table["schema_name"],
        table=table["table_name"],
        queue_table_name=table["queue_table_name"],
        key=key,
        key_type=columns[key],
        fields=chosen,
        where=where,
        chunk_size=chunk_size,
    )
    _check_queue_accepts_backfill(conn)
    return _counted(conn, plan, tuple(warnings))


def _source(conn: psycopg.Connection[Any], source: str) -> Mapping[str, Any]:
    try:
        with conn.transaction():
            row = _run(conn, backfill_query("source"), {"name": source}).fetchone()
    except psycopg.Error as exc:
        raise BackfillError(f"--from {source}: {_one_line(str(exc))}") from None
    if row is None:
        raise BackfillError(
            f"--from {source}: no such table (named as SQL names it: schema.table, unquoted names in lower "
            "case; without a schema, the first match on the search path)"
        )
    if row["relkind"] not in ("r", "p"):
        what = _RELKINDS.get(row["relkind"], f"not a table (relkind {row['relkind']})")
        raise BackfillError(
            f"--from {source} is {what}: give the table the signup trigger is attached to (the queue names "
            "a record by its table)"
        )
    return row


def _trigger_args(row: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """(trigger name, its key column, its allow-list), read as bubble_sync.enqueue_change reads them."""
    args = [a.decode() for a in bytes(row["args"]).split(b"\x00")[: row["nargs"]]]
    return row["name"], (args[0] if args and args[0] else "id"), tuple(args[1:])


def _describe_triggers(triggers: Sequence[tuple[str, str, tuple[str, ...]]]) -> str:
    return "; ".join(f"{name} (key {key}, fields {', '.join(f) or 'all'})" for name, key, f in triggers)


def _checked_key(
    conn: psycopg.Connection[Any],
    key: str | None,
    trigger: tuple[str, str, tuple[str, ...]] | None,
    oid: int,
    columns: Mapping[str, str],
    label: str,
) -> str:
    if key is None:
        key = trigger[1] if trigger else "id"
    if key not in columns:
        raise BackfillError(f"--key {key}: {label} has no column {key}{_did_you_mean(key, columns)}")
    if trigger is not None and trigger[1] != key:
        raise BackfillError(
            f"--key {key}: the signup trigger {trigger[0]} on {label} keys records by {trigger[1]}; a "
            "backfilled record must carry the record id the trigger gives it, or a later change of it would "
            f"not find its row and Bubble would get it twice: use --key {trigger[1]} (or leave --key out)"
        )
    unique = {row["name"] for row in _run(conn, backfill_query("unique_columns"), {"oid": oid})}
    if key not in unique:
        raise BackfillError(
            f"--key {key}: {label} has no primary key or unique index on {key} alone; the key must tell "
            "records apart (the record id in Bubble is <table>:<key>) and order them for paging"
        )
    return key


def _checked_fields(
    fields: Sequence[str] | None,
    trigger: tuple[str, str, tuple[str, ...]] | None,
    columns: Mapping[str, str],
    label: str,
    warnings: list[str],
) -> tuple[str, ...]:
    if fields is None:
        if trigger is None:
            raise BackfillError(
                f"--fields is required: {label} has no signup trigger (bubble_sync.enqueue_change) to take "
                "the payload's fields from"
            )
        return trigger[2]
    chosen = tuple(fields)
    if not chosen:
        raise BackfillError("--fields is empty: name the columns Bubble gets, comma-separated")
    repeated = sorted({f for f in chosen if chosen.count(f) > 1})
    if repeated:
        raise BackfillError(f"--fields names {', '.join(repeated)} more than once")
    for name in chosen:
        if name not in columns:
            raise BackfillError(f"--fields: {label} has no column {name}{_did_you_mean(name, columns)}")
    if trigger is not None and set(trigger[2]) != set(chosen):
        warnings.append(
            f"--fields differ from the allow-list of the signup trigger {trigger[0]} "
            f"({', '.join(trigger[2]) or 'every column but credentials'}): backfilled records are sent with "
            "other fields than new signups"
        )
    return chosen


def _did_you_mean(name: str, columns: Mapping[str, str]) -> str:
    close = [c for c in columns if c.lower() == name.lower()]
    return f" (did you mean {close[0]}? column names are exact)" if close else ""


def _check_queue_accepts_backfill(conn: psycopg.Connection[Any]) -> None:
    conn.execute(backfill_query("quiet_dispatch"))
    try:
        with conn.transaction():  # a savepoint; the caller rolls the whole check back anyway
            conn.execute(backfill_query("accepts_backfill"))
    except psycopg.Error as exc:
        message = _one_line(str(exc), 300)
        hint = (
            ": its constraint predates backfills, run `pulumi up` for this stack first"
            if "sync_queue_operation_valid" in message
            else ""
        )
        raise BackfillError(f"public.sync_queue refuses a BACKFILL row ({message}){hint}") from None


def _counted(conn: psycopg.Connection[Any], plan: Plan, warnings: tuple[str, ...]) -> Plan:
    what = f"--where {plan.where!r}" if plan.where is not None else f"counting the rows of {plan.source}"
    try:
        with conn.transaction():
            conn.execute(plan.compose("check_where"), {})
    except psycopg.Error as exc:
        raise BackfillError(f"{what}: {_one_line(str(exc), 300)}") from None
    params = {"queue_table_name": plan.queue_table_name, "key_column": plan.key}
    try:
        with conn.transaction():
            row = _run(conn, plan.compose("count"), params).fetchone()
    except psycopg.Error as exc:
        raise BackfillError(f"{what} failed while counting the rows: {_one_line(str(exc), 300)}") from None
    return replace(
        plan,
        matching=row["matching"],
        null_keys=row["null_keys"],
        already_queued=row["already_queued"],
        warnings=warnings,
    )


def describe(plan: Plan) -> str:
    """One paragraph: what the run takes and what it would do."""
    fields = ", ".join(plan.fields) or "every column but credentials"
    where = f" where {_one_line(plan.where, 80)}" if plan.where is not None else ""
    lines = [
        f"{plan.source}{where}: {plan.matching:,} rows (key {plan.key}, record ids "
        f"{plan.queue_table_name}:<{plan.key}>; fields {fields})",
        f"  to queue {plan.to_queue:,}; skipped {plan.already_queued:,} (already in public.sync_queue)",
    ]
    if plan.null_keys:
        lines.append(
            f"  left out {plan.null_keys:,} with a NULL {plan.key} (the signup trigger refuses those too)"
        )
    return "\n".join(lines)


# -- queueing ------------------------------------------------------------------------------------------------


def queue_chunks(
    conn: psycopg.Connection[Any],
    plan: Plan,
    counts: Counts,
    *,
    on_chunk: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Counts:
    """Queues the plan's rows chunk by chunk, in key order, each chunk in its own transaction; `counts`
    grows as each commits (so it is right when an exception, Ctrl-C included, ends the loop)."""
    after: str | None = None
    params = {
        "source_oid": plan.source_oid,
        "key_column": plan.key,
        "fields": list(plan.fields),
        "chunk_size": plan.chunk_size,
    }
    query = plan.compose("queue_chunk")
    while True:
        row = _one_chunk(conn, query, {**params, "after": after}, sleep)
        if row["scanned"] == 0:
            return counts
        counts.chunks += 1
        counts.scanned += row["scanned"]
        counts.queued += row["queued"]
        counts.skipped += row["skipped"]
        after = row["last_key"]
        on_chunk()
        if row["scanned"] < plan.chunk_size:
            return counts


def _one_chunk(
    conn: psycopg.Connection[Any], query: sql.Composed, params: dict[str, Any], sleep: Callable[[float], None]
) -> Mapping[str, Any]:
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute(backfill_query("chunk_settings"))
                return _run(conn, query, params).fetchone()
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            # Another transaction holds a record of this chunk, or the dispatch row, for long: give way.
            if attempt == CHUNK_ATTEMPTS:
                raise
            sleep(min(0.1 * 2 ** (attempt - 1), 2.0))
    raise AssertionError("unreachable")  # pragma: no cover


# -- following -----------------------------------------------------------------------------------------------


def read_progress(conn: psycopg.Connection[Any], plan: Plan) -> Mapping[str, int]:
    return _run(conn, backfill_query("progress"), {"queue_table_name": plan.queue_table_name}).fetchone()


def update_counts(counts: Counts, now: Mapping[str, int], baseline: Mapping[str, int]) -> None:
    counts.synced = max(0, now["synced"] - baseline["synced"])
    counts.failed = max(0, now["failed"] - baseline["failed"])
    counts.retrying = now["retrying"]
    counts.outstanding = now["outstanding"]


def follow(
    conn: psycopg.Connection[Any],
    plan: Plan,
    counts: Counts,
    baseline: Mapping[str, int],
    progress: Progress,
    *,
    poll_seconds: float = 1.0,
    stall_seconds: float = STALL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    status_hint: str = "python -m components status",
) -> Counts:
    """Polls the table's backfilled rows until none is outstanding (pending, processing or retrying)."""
    last_change, last_synced, warned = clock(), -1, False
    while True:
        update_counts(counts, read_progress(conn, plan), baseline)
        progress.show("syncing", counts, force=counts.outstanding == 0)  # the last line, always
        if counts.outstanding == 0:
            return counts
        if counts.synced + counts.failed != last_synced:
            last_change, last_synced, warned = clock(), counts.synced + counts.failed, False
        elif not warned and clock() - last_change >= stall_seconds:
            warned = True
            progress.note(
                f"nothing synced for {_eta(clock() - last_change)} while {counts.outstanding:,} rows wait: "
                f"is the processor running? `{status_hint}` says why"
            )
        sleep(poll_seconds)


# -- progress ------------------------------------------------------------------------------------------------


def _eta(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 1:
        return "<1s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """The progress of a run: on a terminal, one line rewritten in place at most every `redraw` seconds; to
    anything else (a CI log, a file), a line every `interval` seconds. A phase's last line is always shown."""

    def __init__(
        self,
        out: TextIO,
        *,
        to_scan: int,
        to_queue: int,
        tty: bool,
        interval: float = 10.0,
        redraw: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.to_scan = to_scan
        self.to_queue = to_queue
        self.tty = tty
        self.interval = redraw if tty else interval
        self.clock = clock
        self.started = clock()
        self.syncing_since: float | None = None
        self._last_shown = float("-inf")
        self._last_phase: str | None = None
        self._open_line = False

    def line(self, phase: str, counts: Counts) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        failed = f"{counts.failed:,} failed" + (f" ({counts.retrying:,} retrying)" if counts.retrying else "")
        if phase == "queueing":
            rate = counts.queued / elapsed
            scan_rate = counts.scanned / elapsed
            left = max(self.to_scan - counts.scanned, 0)
            eta = _eta(left / scan_rate) if scan_rate > 0 else "-"
            return (
                f"queueing: {counts.queued:,}/{max(self.to_queue, counts.queued):,} queued, "
                f"{counts.synced:,} synced, {failed}; {rate:,.0f} rows/s queued, ETA {eta}"
            )
        total = counts.synced + counts.failed + counts.outstanding
        rate = counts.synced / elapsed
        eta = _eta(counts.outstanding / rate) if rate > 0 else "-"
        if counts.outstanding == 0:
            eta = "0s"
        return (
            f"syncing: {counts.queued:,} queued, {counts.synced:,}/{total:,} synced, {failed}; "
            f"{rate:,.0f} rows/s synced, ETA {eta}"
        )

    def show(self, phase: str, counts: Counts, *, force: bool = False) -> None:
        now = self.clock()
        if not force and phase == self._last_phase and now - self._last_shown < self.interval:
            return
        self._last_shown, self._last_phase = now, phase
        text = self.line(phase, counts)
        if self.tty:
            self.out.write(f"\r\x1b[2K{text}")
            self._open_line = True
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A message on a line of its own (the updating line, if any, is ended first)."""
        self.close()
        self.out.write(text + "\n")
        self.out.flush()

    def close(self) -> None:
        if self._open_line:
            self.out.write("\n")
            self.out.flush()
            self._open_line = False


# -- the command ---------------------------------------------------------------------------------------------


def parse_fields(text: str | None) -> list[str] | None:
    """--fields as given: comma-separated column names (spaces around them ignored)."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def run_backfill(
    url: str,
    *,
    source: str,
    key: str | None,
    fields: Sequence[str] | None,
    where: str | None,
    dry_run: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    follow_sync: bool = True,
    progress_interval: float = 10.0,
    status_hint: str = "python -m components status",
    out: TextIO | None = None,
    err: TextIO | None = None,
    tty: bool | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 1.0,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        conn = _connect(url)
    except OperatorError as exc:
        print(f"backfill: {exc} (exit 2)", file=err)
        return EXIT_CANNOT_CONNECT
    with conn:
        conn.autocommit = True
        conn.prepare_threshold = None  # every chunk planned with its own bound `after` (see queue_chunk)
        try:
            plan = plan_backfill(
                conn, source=source, key=key, fields=fields, where=where, chunk_size=chunk_size
            )
        except BackfillError as exc:
            print(f"backfill: {exc} (exit 2)", file=err)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("backfill: interrupted while checking; nothing was queued", file=err)
            return EXIT_INTERRUPTED
        print(f"database: {mask_url(url)}", file=out)
        for warning in plan.warnings:
            print(f"warning: {warning}", file=out)
        print(describe(plan), file=out)
        if dry_run:
            print(
                f"dry run: would queue {plan.to_queue:,} rows and skip {plan.already_queued:,}; "
                "nothing was queued",
                file=out,
            )
            return EXIT_DONE
        return _queue_and_follow(
            conn, plan, out=out, err=err, tty=out.isatty() if tty is None else tty,
            follow_sync=follow_sync, progress_interval=progress_interval, status_hint=status_hint,
            clock=clock, sleep=sleep, poll_seconds=poll_seconds,
        )  # fmt: skip


def _queue_and_follow(
    conn: psycopg.Connection[Any],
    plan: Plan,
    *,
    out: TextIO,
    err: TextIO,
    tty: bool,
    follow_sync: bool,
    progress_interval: float,
    status_hint: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll_seconds: float,
) -> int:
    counts = Counts()
    progress = Progress(
        out, to_scan=plan.to_scan, to_queue=plan.to_queue, tty=tty, interval=progress_interval, clock=clock
    )
    phase = "queueing"
    try:
        baseline = read_progress(conn, plan)
        update_counts(counts, baseline, baseline)
        last_poll = clock()

        def on_chunk() -> None:
            nonlocal last_poll
            if clock() - last_poll >= poll_seconds:
                update_counts(counts, read_progress(conn, plan), baseline)
                last_poll = clock()
            progress.show("queueing", counts)

        try:
            queue_chunks(conn, plan, counts, on_chunk=on_chunk, sleep=sleep)
        except psycopg.Error as exc:
            progress.close()
            print(
                f"backfill: a chunk failed and was rolled back: {_one_line(str(exc), 300)}. The "
                f"{counts.queued:,} rows queued before it stay queued and keep syncing; fix the cause and "
                "run the command again (it skips them) (exit 1)",
                file=err,
            )
            return EXIT_FAILED
        update_counts(counts, read_progress(conn, plan), baseline)
        progress.show("queueing", counts, force=True)
        elapsed = max(clock() - progress.started, 1e-9)
        progress.note(
            f"queued {counts.queued:,} rows in {counts.chunks:,} chunks in {elapsed:.1f} s "
            f"({counts.queued / elapsed:,.0f} rows/s); skipped {counts.skipped:,} already in the queue"
        )
        if not follow_sync:
            print(
                "not following (--no-follow): the queued rows sync in the background; "
                f"`{status_hint}` shows the queue",
                file=out,
            )
            return EXIT_DONE
        phase = "syncing"
        follow(
            conn, plan, counts, baseline, progress, poll_seconds=poll_seconds, clock=clock, sleep=sleep,
            status_hint=status_hint,
        )  # fmt: skip
        progress.close()
    except KeyboardInterrupt:
        progress.close()
        if phase == "queueing":
            print(
                f"interrupted: {counts.queued:,} rows queued by this run ({counts.chunks:,} chunks "
                "committed; the chunk in flight was rolled back). Queued rows keep syncing without this "
                "command. Run the same command again to queue the rest: records already in the queue are "
                "skipped.",
                file=err,
            )
        else:
            print(
                f"stopped following: {counts.queued:,} rows queued, {counts.synced:,} synced so far; the "
                f"{counts.outstanding:,} still waiting keep syncing without this command (`{status_hint}` "
                "shows the queue).",
                file=err,
            )
        return EXIT_INTERRUPTED
    if counts.failed:
        print(
            f"done: {counts.synced:,} synced, {counts.failed:,} failed for good: `{status_hint}` shows why; "
            "fix the cause, then `requeue` them (exit 1)",
            file=out,
        )
        return EXIT_FAILED
    print(f"done: {counts.synced:,} synced, none failed", file=out)
    return EXIT_DONE

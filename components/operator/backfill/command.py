"""`python -m components backfill`, the command: `run_backfill` connects, reads the deployed mappings, chooses
what to backfill (targets.py), checks every plan before anything is queued (plan.py), queues them one after
the other in that order (chunks.py) and follows them together (progress.py), says what happened, and which
exit code; `parse_fields` reads --fields.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingType
from dataclasses import replace
from typing import Any, TextIO

import psycopg

from components.mappings import Mapping
from components.operator.backfill.base import BackfillError
from components.operator.backfill.chunks import Counts, queue_chunks, read_progress, update_counts
from components.operator.backfill.interrupted import close_quietly, rows_queued
from components.operator.backfill.plan import DEFAULT_CHUNK_SIZE, Plan, describe, plan_backfill
from components.operator.backfill.progress import Progress, follow
from components.operator.backfill.targets import Targets, choose_targets
from components.operator.connection import EXIT_CANNOT_CONNECT, OperatorError, connect
from components.operator.formatting import one_line
from components.operator.mappings import deployed_mappings
from components.url_secrets import masked

__all__ = ["EXIT_DONE", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "parse_fields", "run_backfill"]

#: every chunk committed (and, when following, every row synced)
EXIT_DONE = 0
#: a chunk failed (rolled back; the chunks before it stay queued), or rows failed for good while following
EXIT_FAILED = 1
#: a flag does not fit the database (nothing was queued); also: no connection (components.operator)
EXIT_USAGE = EXIT_CANNOT_CONNECT
#: Ctrl-C: the committed chunks stay queued and keep syncing
EXIT_INTERRUPTED = 130


def parse_fields(text: str | None) -> list[str] | None:
    """--fields as given: comma-separated column names (spaces around them ignored)."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def run_backfill(
    url: str,
    *,
    source: str | None = None,
    key: str | None = None,
    fields: Sequence[str] | None = None,
    where: str | None = None,
    mapping: str | None = None,
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
    """`source` (--from TABLE) or `mapping` (--mapping NAME, or `all`): see targets.py."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        conn = connect(url)
    except OperatorError as exc:
        print(f"backfill: {exc} (exit 2)", file=err)
        return EXIT_CANNOT_CONNECT
    with conn:
        conn.autocommit = True
        conn.prepare_threshold = None  # every chunk planned with its own bound `after` (see queue_chunk)
        try:
            deployed = deployed_mappings(conn)
            targets = choose_targets(deployed, source=source, mapping=mapping, key=key, fields=fields)
            plans = _plans(
                conn, targets, deployed, key=key, fields=fields, where=where, chunk_size=chunk_size
            )
        except (BackfillError, OperatorError) as exc:
            print(f"backfill: {exc} (exit 2)", file=err)
            return EXIT_USAGE
        except KeyboardInterrupt:
            close_quietly(conn)  # the session may be mid-command: nothing more is sent on it
            print("backfill: interrupted while checking; nothing was queued", file=err)
            return EXIT_INTERRUPTED
        print(f"database: {masked(url)}", file=out)
        if len(plans) > 1:
            print(
                f"{len(plans)} mappings, referenced ones first: {', '.join(p.label for p in plans)}", file=out
            )
        for note in targets.notes:
            print(f"warning: {note}", file=out)
        for plan in plans:
            for warning in plan.warnings:
                print(f"warning: {warning}", file=out)
            print(describe(plan), file=out)
        if dry_run:
            to_queue = sum(p.to_queue for p in plans)
            skipped = sum(p.already_queued for p in plans)
            print(
                f"dry run: would queue {to_queue:,} rows and skip {skipped:,}; nothing was queued", file=out
            )
            return EXIT_DONE
        return _queue_and_follow(
            url, conn, plans, out=out, err=err, tty=out.isatty() if tty is None else tty,
            follow_sync=follow_sync, progress_interval=progress_interval, status_hint=status_hint,
            clock=clock, sleep=sleep, poll_seconds=poll_seconds,
        )  # fmt: skip


def _plans(
    conn: psycopg.Connection[Any],
    targets: Targets,
    deployed: Sequence[Mapping],
    *,
    key: str | None,
    fields: Sequence[str] | None,
    where: str | None,
    chunk_size: int,
) -> list[Plan]:
    """Every plan checked before anything is queued: a run of several mappings queues none when one does
    not fit."""
    if targets.source is not None:
        return [
            plan_backfill(
                conn, source=targets.source, key=key, fields=fields, where=where, chunk_size=chunk_size,
                deployed=deployed,
            )
        ]  # fmt: skip
    return [
        plan_backfill(conn, mapping=m, where=where, chunk_size=chunk_size, deployed=deployed)
        for m in targets.mappings
    ]


def _queue_and_follow(
    url: str,
    conn: psycopg.Connection[Any],
    plans: Sequence[Plan],
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
        out, to_scan=sum(p.to_scan for p in plans), to_queue=sum(p.to_queue for p in plans), tty=tty,
        interval=progress_interval, clock=clock,
    )  # fmt: skip
    phase = "queueing"
    current = plans[0]
    baseline: MappingType[str, int] | None = None
    try:
        baseline = read_progress(conn, plans)
        update_counts(counts, baseline, baseline)
        last_poll = clock()

        def on_chunk() -> None:
            nonlocal last_poll
            if clock() - last_poll >= poll_seconds:
                update_counts(counts, read_progress(conn, plans), baseline)
                last_poll = clock()
            progress.show("queueing", counts)

        for current in plans:  # in reference order: a row queued after those it refers to waits for them
            before = replace(counts)
            try:
                queue_chunks(conn, current, counts, on_chunk=on_chunk, sleep=sleep)
            except psycopg.Error as exc:
                progress.close()
                of = f" of {current.label}" if len(plans) > 1 else ""
                print(
                    f"backfill: a chunk{of} failed and was rolled back: {one_line(str(exc), 300)}. The "
                    f"{counts.queued:,} rows queued before it stay queued and keep syncing; fix the cause "
                    "and run the command again (it skips them) (exit 1)",
                    file=err,
                )
                return EXIT_FAILED
            if len(plans) > 1:
                progress.note(
                    f"{current.label}: queued {counts.queued - before.queued:,} rows in "
                    f"{counts.chunks - before.chunks:,} chunks; skipped {counts.skipped - before.skipped:,}"
                )
        update_counts(counts, read_progress(conn, plans), baseline)
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
            conn, plans, counts, baseline, progress, poll_seconds=poll_seconds, clock=clock, sleep=sleep,
            status_hint=status_hint,
        )  # fmt: skip
        progress.close()
    except KeyboardInterrupt:
        progress.close()
        if phase == "queueing":
            # the database's count: a chunk committed just as Ctrl-C came is queued, though not counted yet
            queued = rows_queued(url, conn, plans, baseline) if baseline is not None else None
            if queued is not None and queued > counts.queued:
                counts.queued, counts.chunks = queued, counts.chunks + 1
            during = f" while queueing {current.label}" if len(plans) > 1 else ""
            print(
                f"interrupted{during}: {counts.queued:,} rows queued by this run ({counts.chunks:,} chunks "
                "committed; the chunk in flight was rolled back). Queued rows keep syncing without this "
                "command. Run the same command again to queue the rest: records already in the queue are "
                "skipped.",
                file=err,
            )
        else:
            close_quietly(conn)
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

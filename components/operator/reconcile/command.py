"""`python -m components reconcile`, the command: `run_reconcile` connects, reads the deployed mappings,
checks every flag against the database before Bubble is asked anything, finds what differs (examine.py),
reports it (report.py), and with --repair queues the fixes and follows them (repair.py); says which exit
code.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import psycopg

from components.mappings import Mapping
from components.operator.connection import OperatorError, connect
from components.operator.formatting import one_line
from components.operator.mappings import deployed_mappings, mapping_names, reference_order
from components.operator.progress_line import ProgressLine, counted
from components.operator.queries import one_row
from components.operator.reconcile.base import (
    EXIT_DIFFERENCES,
    EXIT_IN_SYNC,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ReconcileError,
)
from components.operator.reconcile.bubble import BubbleReader
from components.operator.reconcile.examine import Examiner
from components.operator.reconcile.findings import MappingFindings
from components.operator.reconcile.gate import SharedGate
from components.operator.reconcile.queries import reconcile_query
from components.operator.reconcile.repair import (
    MappingRepair,
    describe_plan,
    follow,
    plan_repairs,
    queue_repairs,
)
from components.operator.reconcile.report import RunFigures, findings_json, render_findings, summary
from components.operator.reconcile.settings import BubbleSettings
from components.operator.reconcile.source import DEFAULT_CHUNK_SIZE, Target, resolve_target
from components.operator.reconcile.things import ThingStore
from components.operator.reconcile.values import add_values
from components.url_secrets import masked

__all__ = ["MAX_CHUNK_SIZE", "run_reconcile"]

MAX_CHUNK_SIZE = 10_000


def run_reconcile(
    url: str,
    settings: BubbleSettings,
    *,
    mapping: str | None = None,
    where: str | None = None,
    as_json: bool = False,
    show_values: bool = False,
    repair: bool = False,
    dry_run: bool = False,
    delete_duplicates: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress_interval: float = 10.0,
    command_hint: str = "python -m components reconcile",
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
    progress = ProgressLine(
        err, tty=err.isatty() if tty is None else tty, interval=progress_interval, clock=clock
    )
    problem = _flag_problem(
        repair=repair, dry_run=dry_run, delete_duplicates=delete_duplicates, chunk_size=chunk_size
    )
    if problem is not None:
        print(f"reconcile: {problem} (exit {EXIT_USAGE})", file=err)
        return EXIT_USAGE
    try:
        conn = connect(url)
    except OperatorError as exc:
        print(f"reconcile: {exc} (exit {EXIT_USAGE})", file=err)
        return EXIT_USAGE
    run = _Run(conn, settings, progress, out=out, err=err, clock=clock, sleep=sleep)
    with conn, run:
        conn.autocommit = True
        conn.prepare_threshold = None  # every chunk planned with its own bound `after`
        try:
            targets = run.check(mapping=mapping, where=where, delete_duplicates=delete_duplicates)
            if not as_json:
                print(f"database: {masked(url)}", file=out)
                print(f"bubble: {settings.describe()}", file=out)
                if where is not None:
                    print("--where: the records it selects are compared; orphans are looked for in a run "
                          "without it", file=out)  # fmt: skip
            found = run.examine(
                targets, scan_bubble=where is None, chunk_size=chunk_size, show_values=show_values
            )
        except (ReconcileError, OperatorError) as exc:
            progress.close()
            print(f"reconcile: {exc} (exit {EXIT_USAGE})", file=err)
            return EXIT_USAGE
        except psycopg.Error as exc:
            progress.close()
            print(f"reconcile: the database failed: {one_line(str(exc), 300)} (exit {EXIT_USAGE})", file=err)
            return EXIT_USAGE
        except KeyboardInterrupt:
            progress.close()
            print(f"reconcile: interrupted; nothing was written (exit {EXIT_INTERRUPTED})", file=err)
            return EXIT_INTERRUPTED
        code = EXIT_DIFFERENCES if any(f.total for f in found) else EXIT_IN_SYNC
        figures = run.figures()
        document: dict[str, Any] = {"mappings": findings_json(found)}
        if not as_json:
            out.write(render_findings(found))
            print(summary(found, figures), file=out)
        if not repair or code == EXIT_IN_SYNC:
            if code != EXIT_IN_SYNC and not as_json:
                print(f"repair them: {command_hint} --repair [--dry-run] (exit {code})", file=out)
            return _finish(out, as_json, document, figures, code)
        plans = plan_repairs(list(zip(targets, found, strict=True)), delete_duplicates=delete_duplicates)
        document["repair"] = {"plan": [_plan_json(p) for p in plans], "dry_run": dry_run}
        if not as_json:
            print(describe_plan(plans), file=out)
        if dry_run:
            if not as_json:
                print(f"dry run: nothing was queued (exit {code})", file=out)
            return _finish(out, as_json, document, figures, code)
        return run.repair(
            plans, found, document, as_json=as_json, status_hint=status_hint, poll_seconds=poll_seconds
        )


def _flag_problem(*, repair: bool, dry_run: bool, delete_duplicates: bool, chunk_size: int) -> str | None:
    if dry_run and not repair:
        return "--dry-run goes with --repair (a reconcile without it changes nothing anyway)"
    if delete_duplicates and not repair:
        return "--delete-duplicates goes with --repair"
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        return f"--chunk-size {chunk_size}: must be between 1 and {MAX_CHUNK_SIZE:,}"
    return None


class _Run:
    """One run's connection, gate, reader and store, and its steps."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        settings: BubbleSettings,
        progress: ProgressLine,
        *,
        out: TextIO,
        err: TextIO,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.conn = conn
        self.progress = progress
        self.out = out
        self.err = err
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.gate = SharedGate(
            conn, rate_limit_per_minute=settings.rate_limit_per_minute, share_percent=settings.share_percent,
            clock=clock, sleep=sleep, on_wait=progress.note,
        )  # fmt: skip
        self.reader = BubbleReader(settings, self.gate, clock=clock, sleep=sleep)
        self.examiner: Examiner | None = None
        self.targets: list[Target] = []

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reader.close()

    def check(self, *, mapping: str | None, where: str | None, delete_duplicates: bool) -> list[Target]:
        """Every flag against the database, before Bubble is asked anything."""
        deployed = deployed_mappings(self.conn)
        if not deployed:
            raise ReconcileError(
                "this database has no deployed mappings (bubble_sync.mappings is empty or missing): "
                "reconcile compares mapped tables, whose mapping says what Bubble must hold; `pulumi up` a "
                "stack with bubble-sync:mappings (docs/mappings.md)"
            )
        chosen: Sequence[Mapping] = reference_order(deployed)
        if mapping is not None:
            chosen = [m for m in deployed if m.name == mapping]
            if not chosen:
                raise ReconcileError(f"--mapping {mapping}: no such mapping in this database (deployed: "
                                     f"{mapping_names(deployed)})")  # fmt: skip
        present = one_row(self.conn.execute(reconcile_query("present")))
        if not (present["compare"] and present["gate"]):
            raise ReconcileError(
                "this database has the SQL of an earlier release, without bubble_sync.compare_with_bubble or "
                "Bubble's shared gate: run `pulumi up` for this stack first"
            )
        if delete_duplicates and not present["delete_duplicate"]:
            raise ReconcileError(
                "--delete-duplicates: this deployment cannot delete one Bubble thing of a record (no "
                "bubble_sync.enqueue_delete_duplicate; the Edge Function deletes a record's linked thing "
                "only): run without it, the duplicates are reported and the linked thing of each is kept"
            )
        self.targets = [resolve_target(self.conn, m, where) for m in chosen]
        return self.targets

    def examine(
        self, targets: Sequence[Target], *, scan_bubble: bool, chunk_size: int, show_values: bool
    ) -> list[MappingFindings]:
        store = ThingStore(self.conn)
        self.examiner = Examiner(
            self.conn, self.reader, store, self.progress, chunk_size=chunk_size, clock=self.clock
        )
        found = self.examiner.run(targets, scan_bubble=scan_bubble)
        if show_values:
            for target, findings in zip(targets, found, strict=True):
                add_values(self.conn, target, findings)
        self.progress.close()
        return found

    def figures(self) -> RunFigures:
        return RunFigures(self.clock() - self.started, self.reader.requests, self.reader.rate_limited)

    def repair(
        self,
        plans: Sequence[MappingRepair],
        found: Sequence[MappingFindings],
        document: dict[str, Any],
        *,
        as_json: bool,
        status_hint: str,
        poll_seconds: float,
    ) -> int:
        phase = "queueing"
        try:
            queue_repairs(self.conn, plans, self.progress)
            self.progress.note(f"queued {counted(sum(p.queued for p in plans), 'repair')}")
            phase = "following"
            counts = follow(
                self.conn, plans, self.progress, poll_seconds=poll_seconds, status_hint=status_hint,
                clock=self.clock, sleep=self.sleep,
            )  # fmt: skip
            self.progress.close()
            phase = "checking"
            assert self.examiner is not None
            repaired = 0
            for plan, findings in zip(plans, found, strict=True):
                repaired += self.examiner.second_look(plan.target, findings, plan.record_ids)
            self.progress.close()
        except (ReconcileError, OperatorError, psycopg.Error) as exc:
            self.progress.close()
            queued = sum(p.queued for p in plans)
            print(f"reconcile: {one_line(str(exc), 300)} while {phase} repairs; {_kept_syncing(queued)} "
                  f"(exit {EXIT_USAGE})", file=self.err)  # fmt: skip
            return EXIT_USAGE
        except KeyboardInterrupt:
            self.progress.close()
            queued = sum(p.queued for p in plans)
            if phase == "queueing":
                print(f"interrupted while queueing (the batch in flight was rolled back): "
                      f"{_kept_syncing(queued)} without this command (exit 130)", file=self.err)  # fmt: skip
            else:
                print(f"stopped {phase}: {_kept_syncing(queued)} without this command "
                      f"(`{status_hint}` shows the queue) (exit 130)", file=self.err)  # fmt: skip
            return EXIT_INTERRUPTED
        code = EXIT_DIFFERENCES if any(f.total for f in found) else EXIT_IN_SYNC
        figures = self.figures()
        document["repair"].update({"queued": sum(p.queued for p in plans), **counts, "now_in_sync": repaired})
        document["after"] = findings_json(found)
        if as_json:
            return _finish(self.out, True, document, figures, code)
        print(
            f"repaired: {counts['synced']:,} records synced, {counts['failed']:,} failed for good"
            + (f" (`{status_hint}` says why)" if counts["failed"] else "")
            + f"; a second look finds {repaired:,} of them in sync now",
            file=self.out,
        )
        print("after the repair:", file=self.out)
        self.out.write(render_findings(found))
        print(f"{summary(found, figures)} (exit {code})", file=self.out)
        return code


def _kept_syncing(queued: int) -> str:
    return f"{counted(queued, 'repair')} queued {'keeps' if queued == 1 else 'keep'} syncing"


def _plan_json(plan: MappingRepair) -> dict[str, Any]:
    return {
        "mapping": plan.name,
        "insert": len(plan.inserts),
        "update": len(plan.updates),
        "delete": len(plan.deletes),
        "delete_duplicates": len(plan.duplicates),
        "left": plan.left,
    }


def _finish(out: TextIO, as_json: bool, document: dict[str, Any], figures: RunFigures, code: int) -> int:
    if as_json:
        records = sum(m["records"] for m in document["mappings"])
        document = {
            "in_sync": code == EXIT_IN_SYNC,
            "exit_code": code,
            "seconds": round(figures.seconds, 3),
            "bubble_requests": figures.bubble_requests,
            "bubble_requests_per_record": round(figures.per_record(records), 5),
            "rate_limited": figures.rate_limited,
            **document,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False, default=str), file=out)
    return code

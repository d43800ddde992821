"""The operator commands status, requeue and backfill (components/operator/): their arguments, and running
them on the database the arguments name; reconcile's are components/cli/reconcile_command.py's."""

from __future__ import annotations

import argparse
import sys

from components import operator
from components.cli.arguments import Subcommands, add_connection_arguments
from components.cli.reconcile_command import add_reconcile_command, run_reconcile_command
from components.operator.backfill import ALL as BACKFILL_ALL
from components.operator.backfill import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE

__all__ = ["OPERATOR_COMMANDS", "add_operator_commands", "run_operator_command"]

#: the commands `run_operator_command` runs
OPERATOR_COMMANDS = ("status", "requeue", "backfill", "reconcile")


def add_operator_commands(commands: Subcommands) -> None:
    status = commands.add_parser(
        "status",
        help="health, cron runs, failing rows, pg_net errors; exit 0 healthy, 1 unhealthy, 2 cannot connect",
        description="Prints bubble_sync.health(), our cron jobs with their last runs, failed sync_queue rows "
        "grouped by error, and recent pg_net errors. Exit 0 healthy, 1 unhealthy (the reasons are printed), "
        "2 cannot connect or no connection configured. The password is never printed.",
    )
    add_connection_arguments(status)
    status.add_argument("--json", action="store_true", help="print one JSON document instead")
    status.add_argument(
        "--max-pending-minutes",
        type=float,
        default=10,
        metavar="N",
        help="unhealthy when the oldest pending row is older than this (default 10)",
    )
    status.add_argument(
        "--pg-net-minutes",
        type=int,
        default=60,
        metavar="N",
        help="show pg_net errors of the last N minutes (default 60)",
    )

    requeue = commands.add_parser(
        "requeue",
        help="put permanently failed rows back into the retry path (after fixing the cause)",
        description="Resets permanently failed rows (status failed, retry_count >= max_retries) to "
        "retry_count 0 and next_retry_at now, keeping the last error behind the prefix "
        f"'{operator.REQUEUE_PREFIX}'; the next bubble-sync-retry run picks them up. One transaction; "
        "--dry-run shows the rows and changes nothing.",
    )
    add_connection_arguments(requeue)
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("--all-permanently-failed", action="store_true", help="every permanently failed row")
    which.add_argument(
        "--id", dest="ids", metavar="ID", nargs="+", help="these sync_queue ids (the id column)"
    )
    which.add_argument(
        "--error-like",
        metavar="PATTERN",
        help="rows whose error_message matches (ILIKE; a pattern without %% matches anywhere)",
    )
    requeue.add_argument("--dry-run", action="store_true", help="show what would be requeued, change nothing")

    backfill = commands.add_parser(
        "backfill",
        help="queue the records a table already holds (existing users), as its signup trigger or its mapping "
        "would have",
        description="Queues the rows of an existing table for Bubble, in key order, one transaction per "
        "chunk, exactly as the table's signup trigger (bubble_sync.enqueue_change) or the stack's mapping of "
        "it (--mapping, read from the database) would have queued them: a "
        "record the queue already has, in any state, is skipped, so a run interrupted with Ctrl-C resumes "
        "when run again. The Edge Function looks each backfilled record up in Bubble by its key first (a "
        "record Bubble already has is linked, not created twice; so is a user whose email Bubble has), "
        "creates the rest in bulk, and takes new signups before backfilled rows. Shows rows queued, synced "
        "and failed with the rate and an ETA while queueing and then, unless --no-follow, while the rows "
        "sync. Exit codes: 0 done, 1 a chunk failed (rolled back; the chunks before it stay queued) or rows "
        "failed for good, 2 a flag does not fit the database or no connection (nothing queued), 130 "
        "interrupted (queued rows keep syncing).",
    )
    add_connection_arguments(backfill)
    what = backfill.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--from",
        dest="source",
        metavar="TABLE",
        help="the table, as SQL names it (schema.table; e.g. public.profiles or auth.users); a table the "
        "stack maps is backfilled as its mapping",
    )
    what.add_argument(
        "--mapping",
        metavar="NAME",
        help="a mapping deployed in the database (bubble_sync.mappings): its table, key, fields and where, "
        f"as its trigger queues them; '{BACKFILL_ALL}' for every mapping, referenced ones first (users "
        "before the listings that name them)",
    )
    backfill.add_argument(
        "--key",
        metavar="COLUMN",
        help="the key column (a primary key or unique column); default: the signup trigger's, else id; not "
        "with a mapping (its key is the mapping's)",
    )
    backfill.add_argument(
        "--fields",
        metavar="A,B,...",
        help="the columns Bubble gets, comma-separated, exact names; default: the signup trigger's "
        "allow-list (required when the table has no signup trigger); not with a mapping (its columns)",
    )
    backfill.add_argument(
        "--where",
        metavar="CONDITION",
        help="only rows matching this SQL condition on the table's columns (your own SQL, run as it stands "
        "with your privileges), e.g. \"created_at < '2026-01-01'\"; with a mapping, ANDed with its where",
    )
    backfill.add_argument(
        "--dry-run",
        action="store_true",
        help="check the flags and say how many rows would be queued and skipped; queue nothing",
    )
    backfill.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"rows per chunk (one transaction each; default {DEFAULT_CHUNK_SIZE}, at most {MAX_CHUNK_SIZE})",
    )
    backfill.add_argument(
        "--no-follow",
        dest="follow",
        action="store_false",
        help="stop once everything is queued instead of showing the rows sync",
    )
    backfill.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="when the output is not a terminal, a progress line every SECONDS (default 10)",
    )
    add_reconcile_command(commands)


def run_operator_command(args: argparse.Namespace) -> int:
    name = args.command
    try:
        url, _source = operator.resolve_database_url(
            database_url_arg=args.database_url, stack=args.stack, project_dir=args.project_dir
        )
    except operator.OperatorError as exc:
        print(f"{name}: {exc} (exit 2)", file=sys.stderr)
        return operator.EXIT_CANNOT_CONNECT
    if name == "backfill":
        hint = "python -m components status" + (f" --stack {args.stack}" if args.stack else "")
        return operator.run_backfill(
            url,
            source=args.source,
            mapping=args.mapping,
            key=args.key,
            fields=operator.parse_fields(args.fields),
            where=args.where,
            dry_run=args.dry_run,
            chunk_size=args.chunk_size,
            follow_sync=args.follow,
            progress_interval=args.progress_interval,
            status_hint=hint,
        )
    if name == "reconcile":
        return run_reconcile_command(args, url)
    if name == "status":
        return operator.run_status(
            url,
            as_json=args.json,
            max_pending_minutes=args.max_pending_minutes,
            pg_net_minutes=args.pg_net_minutes,
            stack=args.stack,
        )
    return operator.run_requeue(
        url,
        all_permanently_failed=args.all_permanently_failed,
        ids=args.ids or (),
        error_like=args.error_like,
        dry_run=args.dry_run,
    )

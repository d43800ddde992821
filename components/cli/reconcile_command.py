"""The reconcile command (components/operator/reconcile/): its arguments, and running it once the database
URL is known."""

from __future__ import annotations

import argparse
import sys

from components.cli.arguments import Subcommands, add_connection_arguments
from components.operator.reconcile import DEFAULT_CHUNK_SIZE as RECONCILE_CHUNK_SIZE
from components.operator.reconcile import ReconcileError, resolve_settings, run_reconcile

__all__ = ["add_reconcile_command", "run_reconcile_command"]


def add_reconcile_command(commands: Subcommands) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="does Bubble hold what Supabase holds? each mapping's records against Bubble's things; exit 0 "
        "in sync, 1 differences, 2 flags, connection or Bubble refused the token",
        description=(
            "Compares each deployed mapping's source records (the mappings are read from the database) "
            "with Bubble's things, as bubble_sync.compare_with_bubble judges them, and reports four kinds"
            " of difference with counts and up to 20 example keys: missing in Bubble, stale (which "
            "fields), orphaned (a thing whose source row is gone or filtered out), duplicated (one key on"
            " several things). A whole run reads every thing of each mapping's data type that carries a "
            "key, 100 a request; with --where, the records it selects are looked up, 100 keys a request "
            "(orphans are not looked for). Bubble's requests go through the gate the sync uses, at most "
            "reconcileRatePercent (20) of bubbleRateLimitPerMinute, so the live sync keeps the rest. "
            "--repair queues the fixes through the normal queue (never writing to Bubble itself) and "
            "follows them: missing -> INSERT, stale -> UPDATE, orphaned -> DELETE where the mapping syncs"
            " deletes; of duplicates the linked thing is kept and the others are reported (deleted with "
            "--delete-duplicates). Bubble's URL from the stack's "
            "bubbleBaseUrl or --bubble-url, its token from $BUBBLE_API_TOKEN. Progress with rate and ETA "
            "on stderr. Exit codes: 0 in sync, 1 differences found (or left after --repair), 2 a flag, "
            "the connection, the database's release, or Bubble refused the token (nothing queued), 130 "
            "interrupted (nothing half-written; repairs queued keep syncing)."
        ),
    )
    add_connection_arguments(reconcile)
    reconcile.add_argument(
        "--mapping",
        metavar="NAME",
        help="only this deployed mapping (default: every one, referenced ones first)",
    )
    reconcile.add_argument(
        "--where",
        metavar="CONDITION",
        help="only records matching this SQL condition on the table's columns (your own SQL, with your "
        "privileges), ANDed with the mapping's where; orphans are then not looked for",
    )
    reconcile.add_argument("--json", action="store_true", help="print one JSON document instead")
    reconcile.add_argument(
        "--show-values",
        action="store_true",
        help="show the Supabase and Bubble values of the stale fields of the examples (credentials hidden)",
    )
    reconcile.add_argument(
        "--repair",
        action="store_true",
        help="queue the fixes through the queue and follow them until applied",
    )
    reconcile.add_argument("--dry-run", action="store_true", help="with --repair: say what would be queued")
    reconcile.add_argument(
        "--delete-duplicates",
        action="store_true",
        help="with --repair: also delete the things duplicating a record's linked thing (needs the "
        "deployment's support, bubble_sync.enqueue_delete_duplicate)",
    )
    reconcile.add_argument(
        "--bubble-url",
        metavar="URL",
        help="Bubble's Data API root, https://<app>.bubbleapps.io[/version-test]/api/1.1 (default: the "
        "stack's bubbleBaseUrl; required with --database-url)",
    )
    reconcile.add_argument(
        "--rate-limit-per-minute",
        type=int,
        metavar="N",
        help="Bubble's rate limit the stack paces at (default: the stack's bubbleRateLimitPerMinute, else "
        "its default 1000); reconcile takes reconcileRatePercent of it",
    )
    reconcile.add_argument(
        "--chunk-size",
        type=int,
        default=RECONCILE_CHUNK_SIZE,
        metavar="N",
        help=f"records compared per statement (default {RECONCILE_CHUNK_SIZE})",
    )
    reconcile.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="when stderr is not a terminal, a progress line every SECONDS (default 10)",
    )


def run_reconcile_command(args: argparse.Namespace, url: str) -> int:
    try:
        settings = resolve_settings(
            stack=args.stack,
            project_dir=args.project_dir,
            bubble_url=args.bubble_url,
            rate_limit_per_minute=args.rate_limit_per_minute,
        )
    except ReconcileError as exc:
        print(f"reconcile: {exc} (exit 2)", file=sys.stderr)
        return 2
    where = f" --stack {args.stack}" if args.stack else ""
    mapping = f" --mapping {args.mapping}" if args.mapping else ""
    return run_reconcile(
        url,
        settings,
        mapping=args.mapping,
        where=args.where,
        as_json=args.json,
        show_values=args.show_values,
        repair=args.repair,
        dry_run=args.dry_run,
        delete_duplicates=args.delete_duplicates,
        chunk_size=args.chunk_size,
        progress_interval=args.progress_interval,
        command_hint=f"python -m components reconcile{where}{mapping}",
        status_hint=f"python -m components status{where}",
    )

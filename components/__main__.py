"""Command line: `python -m components render-sql | status | requeue | backfill | reconcile | preflight |
function-settings | config-reference`.

render-sql prints the complete setup SQL of a stack (read from `Pulumi.<NAME>.yaml` next to `Pulumi.yaml`),
or of the defaults when no stack is given. Secrets are psql variables in the output, never values; the
header says how to run it.

status prints the pipeline's health (exit 0 healthy, 1 unhealthy, 2 cannot connect); requeue puts
permanently failed rows back into the retry path; backfill queues the records a table already holds, as its
signup trigger or the stack's mapping of it would have; reconcile compares each mapping's records with
Bubble's things (exit 0 in sync, 1 differences, 2 flags or connection) and with --repair queues the fixes.
The mappings are read from the database, so a database URL is all these commands need (and, for reconcile,
Bubble's URL and token). See components/operator/.

preflight checks a stack's real database, Management API token and Bubble app before `pulumi up` (exit 0
passed, 1 a check failed, 2 the stack config cannot be read). See components/preflight/.

function-settings prints supabase/functions/bubble_sync/settings.ts, the Edge Function's defaults generated
from the stack config keys (components/function_env.py); config-reference prints
docs/configuration-reference.md, the reference of those keys (components/config_reference.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components import operator, preflight
from components.config import ConfigError, load_config
from components.config_reference import config_reference
from components.function_env import settings_ts
from components.operator.backfill import ALL as BACKFILL_ALL
from components.operator.backfill import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE
from components.operator.reconcile import DEFAULT_CHUNK_SIZE as RECONCILE_CHUNK_SIZE
from components.operator.reconcile import ReconcileError, resolve_settings, run_reconcile
from components.sql.render import render_script
from components.stack_file import load_stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser(
        "render-sql",
        help="print the complete setup SQL of a stack",
        description="Prints the stack's setup SQL: extensions, queue, functions, grants, Vault secrets "
        "(from psql variables), cron jobs and the seed's verification queries. "
        'Run it with: psql "$DATABASE_URL" -v service_role_key=... -v supabase_url=... -f bubble-sync.sql',
    )
    render.add_argument(
        "--stack", metavar="NAME", help="read Pulumi.NAME.yaml (default: defaults and placeholders)"
    )
    render.add_argument(
        "--project-dir", type=Path, default=PROJECT_DIR, help="where Pulumi.yaml and the stack files are"
    )
    _add_operator_commands(commands)
    _add_preflight_command(commands)
    commands.add_parser(
        "function-settings",
        help="print the Edge Function's settings.ts (its defaults, from the stack config keys)",
        description="Prints supabase/functions/bubble_sync/settings.ts as generated from the stack config "
        "keys: python -m components function-settings > supabase/functions/bubble_sync/settings.ts",
    )
    commands.add_parser(
        "config-reference",
        help="print docs/configuration-reference.md (every stack config key, from the keys' table)",
        description="Prints docs/configuration-reference.md as generated from the stack config keys: "
        "python -m components config-reference > docs/configuration-reference.md",
    )
    args = parser.parse_args(argv)
    if args.command in ("status", "requeue", "backfill", "reconcile"):
        return _run_operator_command(args)
    if args.command == "preflight":
        return preflight.run_preflight(
            args.stack, project_dir=args.project_dir, as_json=args.json, write_probe=args.write_probe
        )
    if args.command == "function-settings":
        sys.stdout.write(settings_ts())
        return 0
    if args.command == "config-reference":
        sys.stdout.write(config_reference())
        return 0

    try:
        if args.stack:
            stack_file = args.project_dir / f"Pulumi.{args.stack}.yaml"
            if not stack_file.is_file():
                stacks = sorted(
                    p.name[len("Pulumi.") : -len(".yaml")] for p in args.project_dir.glob("Pulumi.*.yaml")
                )
                print(
                    f"render-sql: no stack file {stack_file} (stacks here: {', '.join(stacks) or 'none'})",
                    file=sys.stderr,
                )
                return 2
            config = load_stack_config(stack_file)
        else:
            config = load_config(lambda key: None, for_sql=True, env={})
    except ConfigError as exc:
        print(f"render-sql: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_script(config, stack=args.stack))
    return 0


def _add_connection_arguments(command: argparse.ArgumentParser) -> None:
    where = command.add_mutually_exclusive_group()
    where.add_argument(
        "--stack",
        metavar="NAME",
        help="connection from Pulumi.NAME.yaml (dbHost, dbPort, dbUser, dbName, dbSslMode) with the password "
        f"from $PGPASSWORD or ${operator.ENV_VAR}",
    )
    where.add_argument(
        "--database-url",
        metavar="URL",
        help=f"postgresql:// URL (default: ${operator.ENV_VAR}, then $DATABASE_URL)",
    )
    command.add_argument(
        "--project-dir", type=Path, default=PROJECT_DIR, help="where Pulumi.yaml and the stack files are"
    )


def _add_operator_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        help="health, cron runs, failing rows, pg_net errors; exit 0 healthy, 1 unhealthy, 2 cannot connect",
        description="Prints bubble_sync.health(), our cron jobs with their last runs, failed sync_queue rows "
        "grouped by error, and recent pg_net errors. Exit 0 healthy, 1 unhealthy (the reasons are printed), "
        "2 cannot connect or no connection configured. The password is never printed.",
    )
    _add_connection_arguments(status)
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
    _add_connection_arguments(requeue)
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
    _add_connection_arguments(backfill)
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
    _add_reconcile_command(commands)


def _add_reconcile_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    _add_connection_arguments(reconcile)
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


def _add_preflight_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "preflight",
        help="check a stack's real database, Management API token and Bubble app before pulumi up; exit 0 "
        "passed, 1 a check failed, 2 the stack config cannot be read",
        description="Checks what `pulumi up` needs of the stack's real Supabase project, read-only: the "
        "database is reachable as configured, pg_cron and pg_net are installed or installable by its user, "
        "pg_cron runs jobs in it, Vault is usable; with deployEdgeFunction, the Management API token reads "
        "the project's functions and secrets; Bubble accepts the token, has the data type and the key field, "
        "finds a user by email, and how the stack paces its requests; per mapping (from the stack config, "
        "else as deployed in the database), its Bubble type and fields exist and fit the columns' types. One "
        "line per check (✓ passed, ✗ "
        "failed with the fix, ! warning, - skipped with the reason). Secrets are never printed; the "
        f"stack's encrypted values are not read: the password comes from $PGPASSWORD or "
        f"${operator.ENV_VAR}, the tokens from $SUPABASE_ACCESS_TOKEN and $BUBBLE_API_TOKEN. "
        "Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 the stack config could "
        "not be read or is invalid (its problems are printed, each naming its key).",
    )
    command.add_argument("--stack", metavar="NAME", required=True, help="check the stack of Pulumi.NAME.yaml")
    command.add_argument(
        "--project-dir", type=Path, default=PROJECT_DIR, help="where Pulumi.yaml and the stack files are"
    )
    command.add_argument(
        "--json",
        action="store_true",
        help='print one JSON document instead: {"ok", "checks": [{"id", "group", "title", "status", '
        '"detail", "fix"}]}',
    )
    command.add_argument(
        "--write-probe",
        action="store_true",
        help="also create one marked Bubble thing, modify it and delete it (proving the token may write, and "
        "recording how the app refuses a used email); the database and Management API checks never write, "
        "with or without it",
    )


def _run_operator_command(args: argparse.Namespace) -> int:
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
        return _run_reconcile(args, url)
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


def _run_reconcile(args: argparse.Namespace, url: str) -> int:
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


if __name__ == "__main__":
    sys.exit(main())

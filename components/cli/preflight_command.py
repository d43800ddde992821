"""The preflight command (components/preflight/): its arguments, and running it."""

from __future__ import annotations

import argparse
from pathlib import Path

from components import operator, preflight
from components.cli.arguments import PROJECT_DIR, Subcommands

__all__ = ["add_preflight_command", "run_preflight_command"]


def add_preflight_command(commands: Subcommands) -> None:
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


def run_preflight_command(args: argparse.Namespace) -> int:
    return preflight.run_preflight(
        args.stack, project_dir=args.project_dir, as_json=args.json, write_probe=args.write_probe
    )

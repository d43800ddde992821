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

This module builds the parser and runs render-sql and the two generators; each other command's arguments,
and how it runs, are in components/cli/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.cli.arguments import PROJECT_DIR
from components.cli.operator_commands import OPERATOR_COMMANDS, add_operator_commands, run_operator_command
from components.cli.preflight_command import add_preflight_command, run_preflight_command
from components.config import ConfigError, load_config
from components.config_reference import config_reference
from components.function_env import settings_ts
from components.sql.render import render_script
from components.stack_file import load_stack_config


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
    add_operator_commands(commands)
    add_preflight_command(commands)
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
    if args.command in OPERATOR_COMMANDS:
        return run_operator_command(args)
    if args.command == "preflight":
        return run_preflight_command(args)
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


if __name__ == "__main__":
    sys.exit(main())

"""Command line: `python -m components render-sql [--stack NAME]`.

render-sql prints the complete setup SQL of a stack (read from `Pulumi.<NAME>.yaml` next to `Pulumi.yaml`),
or of the defaults when no stack is given. Secrets are psql variables in the output, never values; the
header says how to run it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.config import ConfigError, load_config
from components.render_sql import load_stack_config, render_script

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
    args = parser.parse_args(argv)

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

"""What several commands of the command line share: where the project is, and the arguments that say which
database to connect to."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from components import operator

__all__ = ["PROJECT_DIR", "Subcommands", "add_connection_arguments"]

#: where Pulumi.yaml and the stack files are, unless --project-dir says otherwise
PROJECT_DIR = Path(__file__).resolve().parents[2]
#: what `ArgumentParser.add_subparsers` returns, to which each command adds its parser
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_connection_arguments(command: argparse.ArgumentParser) -> None:
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

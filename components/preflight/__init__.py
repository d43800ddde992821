"""`python -m components preflight --stack NAME`: what to run before the first `pulumi up` (and what the
deploy workflow runs before every one), against the real Supabase project and database of a stack.

It reads `Pulumi.NAME.yaml` as `render-sql` and `status` do, then runs groups of checks, each printing one
line per check:

    ✓ <title>[: <what was found>]
    ✗ <title>: <what is wrong> — fix: <what to do>
    ! <title>: <warning>[ — fix: <what to do>]
    - <title>: skipped (<why>)

and a summary line. `--json` prints one document instead:
`{"ok", "stack", "exit_code", "checks": [{"id", "group", "title", "status": "ok|failed|warning|skipped",
"detail", "fix"}]}`. A check that depends on an earlier one is skipped with the reason, not failed twice.

Exit codes:
  0  every check passed (warnings and skips allowed)
  1  at least one check failed
  2  the stack config could not be read or is invalid (each problem printed to stderr, naming its key);
     nothing ran. With `--json`, stdout has `{"ok": false, "exit_code": 2, "config_problems": [{"key",
     "problem"}], "checks": []}`.

Read-only by default. `--write-probe` lets the Bubble checks create one marked thing, modify it and delete it
(proving the token's permissions, and recording how the app refuses a used email); the database and
Management API checks never write, with it or without it.

Secrets are never printed: the stack's encrypted values are not read at all (the password and the token come
from the environment: $PGPASSWORD or $BUBBLE_SYNC_DATABASE_URL, $SUPABASE_ACCESS_TOKEN), and every line
passes through a redaction of every secret the run knows and of any URL's password.

The groups, in the order they run (`GROUPS`):
  database.py        the database: reachable, server version, pg_cron, its cron.database_name, pg_net, Vault
  management_api.py  the Management API token reaches the project (only with deployEdgeFunction)
  bubble.py          the Bubble app: token, data type, key field, lookup by email, rate limit; with
                     --write-probe one marked thing created, modified and deleted
  mappings.py        per mapping (from the stack config, else as deployed in the database): its Bubble type
                     and every field exist, and each column's type fits its field's (bubble_types.py reads
                     the app's types from GET <bubbleBaseUrl>/meta, else probes each type)
A group is a module with `GROUP = "<id prefix>"` and `checks(ctx: Context) -> Iterator[CheckResult]`
(checks.py); to add one, import it here and append it to `GROUPS`.

The modules: checks.py (the frame: results, context, redaction, running the groups), stack.py (reading the
stack into a Context; exit 2), report.py (text, JSON, exit code), and the groups.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from components.config import ConfigError
from components.preflight import bubble, database, management_api, mappings
from components.preflight.checks import (
    CheckResult,
    Context,
    Group,
    Status,
    failed,
    ok,
    run_groups,
    skipped,
    warning,
)
from components.preflight.report import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    exit_code,
    render_json,
    render_text,
)
from components.preflight.stack import StackFileError, load_context

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "GROUPS",
    "CheckResult",
    "Context",
    "Group",
    "Status",
    "failed",
    "ok",
    "run_preflight",
    "skipped",
    "warning",
]

#: the groups of checks, in the order they run and print
GROUPS: tuple[Group, ...] = (database, management_api, bubble, mappings)


def run_preflight(
    stack: str,
    *,
    project_dir: Path,
    as_json: bool = False,
    write_probe: bool = False,
    environ: Mapping[str, str] | None = None,
    groups: Sequence[Group] = GROUPS,
    out: TextIO | None = None,
    err: TextIO | None = None,
    http_timeout: float | None = None,
) -> int:
    """Runs the checks of `stack` and prints them; returns the exit code (0, 1, 2: see above)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        ctx = load_context(
            stack, project_dir, environ=os.environ if environ is None else environ, write_probe=write_probe
        )
    except (ConfigError, StackFileError) as exc:
        return _config_error(exc, stack, as_json, out, err)
    if http_timeout is not None:
        ctx.http_timeout = http_timeout
    results = run_groups(ctx, groups)
    out.write(render_json(results, stack=stack) if as_json else render_text(results, stack=stack))
    return exit_code(results)


def _config_error(
    exc: ConfigError | StackFileError, stack: str, as_json: bool, out: TextIO, err: TextIO
) -> int:
    print(f"preflight: {exc}", file=err)
    print(f"preflight: no check ran (exit {EXIT_CONFIG})", file=err)
    if as_json:
        problems = (
            [{"key": p.key, "problem": p.reason} for p in exc.problems]
            if isinstance(exc, ConfigError)
            else [{"key": None, "problem": str(exc)}]
        )
        document = {"ok": False, "stack": stack, "exit_code": EXIT_CONFIG, "config_problems": problems,
                    "checks": []}  # fmt: skip
        print(json.dumps(document, indent=2, ensure_ascii=False), file=out)
    return EXIT_CONFIG

"""`python -m components backfill`: queues the records a table already holds, the way its signup trigger (or
the stack's mapping of the table) would have queued them, so that an app adopting bubble-sync syncs the users
it already has.

What it backfills: `--from TABLE` (a table the stack maps is backfilled as its mapping), `--mapping NAME` or
`--mapping all` (the deployed mappings, read from bubble_sync.mappings, referenced ones first).

  plan_backfill  checks the flags against the database before anything is queued (BackfillError names the
                 flag, or says what to do): the table, the key (a column a primary key or unique index covers
                 alone), the fields, the signup trigger's own arguments, the --where, and a queue that takes
                 BACKFILL rows; then counts what would be queued and what skipped (all a --dry-run does)
  queue_chunks   keyset pagination over the key, one transaction per chunk (bubble_sync.enqueue_backfill
                 in sql/functions/backfill.sql; the queries are in sql/operator_backfill.sql): an interrupted
                 run loses at most the chunk in flight, which rolls back, and a re-run skips every record the
                 queue already has, whatever its state
  follow         polls the backfilled rows until none is outstanding
  Progress       rows queued, synced and failed, the rate and an ETA: one updating line on a terminal, a line
                 every --progress-interval seconds otherwise
  run_backfill   connects, runs all of it, says what happened, and which exit code

The modules, one job each (this package only re-exports their public names, which tests and the bench import
from `components.operator.backfill`):
  targets.py   choose_targets: which table or mappings a run backfills, in which order
  plan.py      plan_backfill, Plan, describe: the checks and the counts, one table
  flags.py     --key and --fields of a table the stack does not map (its signup trigger's arguments)
  mapped.py    a mapping's key, columns and filter, checked against its table
  chunks.py    queue_chunks, Counts, read_progress: queueing chunk by chunk
  progress.py  Progress, follow: the progress line, and following the rows as they sync
  command.py   run_backfill, parse_fields, the exit codes: the command
  interrupted.py  what a Ctrl-C leaves: the session closed, the rows queued counted by the database
  base.py      BackfillError, qualified_name, run_query: what they share

The rows are synced by the Edge Function like any other (supabase/functions/bubble_sync/backfill.ts): each is
looked up in Bubble by its key first (a record Bubble already has is linked, not created again), the rest
are created in bulk, and new signups are claimed before any backfilled row.
"""

from __future__ import annotations

from components.operator.backfill.base import BackfillError
from components.operator.backfill.chunks import CHUNK_ATTEMPTS, Counts, queue_chunks
from components.operator.backfill.command import (
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    parse_fields,
    run_backfill,
)
from components.operator.backfill.plan import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    Plan,
    describe,
    plan_backfill,
    qualified_name,
)
from components.operator.backfill.progress import STALL_SECONDS, Progress, follow
from components.operator.backfill.targets import ALL, Targets, choose_targets

__all__ = [
    "ALL",
    "CHUNK_ATTEMPTS",
    "DEFAULT_CHUNK_SIZE",
    "EXIT_DONE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "MAX_CHUNK_SIZE",
    "STALL_SECONDS",
    "BackfillError",
    "Counts",
    "Plan",
    "Progress",
    "Targets",
    "choose_targets",
    "describe",
    "follow",
    "parse_fields",
    "plan_backfill",
    "qualified_name",
    "queue_chunks",
    "run_backfill",
]

"""Operator tools: `python -m components status`, `python -m components requeue`,
`python -m components backfill` and `python -m components reconcile`.

status   the seed's monitoring queries, made usable: `bubble_sync.health()`, the queue per mapping (the
         mappings read from the database) with each one's latency, our cron jobs with their last runs,
         failed rows grouped by error, and recent pg_net errors. Exit 0 healthy, 1 unhealthy
         (each reason printed), 2 cannot connect or no connection configured (the reason printed), 3 Bubble
         unavailable (its circuit breaker open) with nothing else wrong.
requeue  puts permanently failed rows (retry_count >= max_retries) back into the retry path with
         `bubble_sync.requeue` (sql/functions/maintenance.sql): status `failed`, retry_count 0,
         next_retry_at now, lease cleared, and error_message kept behind the prefix
         `requeued by operator; last error: ` so the reason stays visible. The next `bubble-sync-retry` run
         claims them. One transaction; `--dry-run` runs the same call and rolls it back.
backfill queues the rows a table already holds, as its signup trigger (bubble_sync.enqueue_change) would
         have, or a mapping's trigger (--mapping NAME, or all: the mappings read from bubble_sync.mappings,
         referenced ones first), chunk by chunk (bubble_sync.enqueue_backfill); the Edge Function looks
         each one up in Bubble before creating it. `--dry-run` checks the flags and counts; nothing is queued.
reconcile  compares each mapping's records with Bubble's things (bubble_sync.compare_with_bubble): missing,
         stale, orphaned, duplicated; `--repair` queues the fixes and follows them. Exit 0 in sync, 1
         differences, 2 flags, connection or Bubble refused the token. Package reconcile/ (its own docstring).

Where the database is (first match wins):
  --database-url URL
  --stack NAME       the non-secret connection keys of Pulumi.NAME.yaml (dbHost, dbPort, dbUser,
                     dbName, dbSslMode) with the password from $PGPASSWORD, else from
                     $BUBBLE_SYNC_DATABASE_URL; a stack without dbHost (databaseUrl as a secret, or none)
                     uses $BUBBLE_SYNC_DATABASE_URL whole. Encrypted values cannot be read here:
                     `export PGPASSWORD="$(pulumi config get dbPassword --stack NAME)"`.
  $BUBBLE_SYNC_DATABASE_URL, then $DATABASE_URL
The password is never printed: URLs are shown with `***` in its place, and error messages are scrubbed.

The modules, one job each (this package only re-exports their public names):
  connection.py  where the database is (the order above), `mask_url`, connecting; OperatorError, exit 2
  queries.py     status's read-only SQL, by name, from sql/operator_status.sql
  mappings.py    the stack's mappings as deployed (bubble_sync.mappings): `deployed_mappings`, and
                 `reference_order`, referenced mappings first
  health.py      what healthy means: the Status read, the jobs that must run, the judgement, exit 0, 1, 3
  status.py      status: `collect_status` (read and judge, one read-only transaction) and `run_status`
  by_mapping.py  status's queue per mapping (then per table no mapping names): `queue_by_mapping`
  report.py      status's output: the text report (`render_status`) and the JSON document (`status_json`)
  formatting.py  the text helpers both commands share: durations, times, one shortened line, tables
  progress_line.py  the progress line of backfill and reconcile on stderr (one updating line on a terminal)
  requeue.py     requeue: `requeue` (the bubble_sync.requeue call), `render_requeue`, `run_requeue`
  backfill/      backfill: `plan_backfill` (the checks and counts), `queue_chunks`, `follow`, `Progress`,
                 `run_backfill`, a module each (backfill/__init__.py); its queries are in
                 sql/operator_backfill.sql
  reconcile/     reconcile: `run_reconcile`, a module per step (reconcile/__init__.py); its queries are in
                 sql/operator_reconcile.sql
"""

from __future__ import annotations

from components.operator.backfill import BackfillError, parse_fields, plan_backfill, run_backfill
from components.operator.connection import (
    ENV_VAR,
    EXIT_CANNOT_CONNECT,
    OperatorError,
    mask_url,
    resolve_database_url,
)
from components.operator.health import (
    EXIT_BUBBLE_UNAVAILABLE,
    EXIT_HEALTHY,
    EXIT_UNHEALTHY,
    EXPECTED_JOBS,
    Status,
)
from components.operator.mappings import deployed_mappings, reference_order
from components.operator.report import render_status, status_json
from components.operator.requeue import (  # `requeue` is then the function, as before, not the module
    REQUEUE_PREFIX,
    RequeueResult,
    render_requeue,
    requeue,
    run_requeue,
)
from components.operator.status import collect_status, run_status

__all__ = [
    "ENV_VAR",
    "BackfillError",
    "EXIT_BUBBLE_UNAVAILABLE",
    "EXIT_CANNOT_CONNECT",
    "EXIT_HEALTHY",
    "EXIT_UNHEALTHY",
    "EXPECTED_JOBS",
    "REQUEUE_PREFIX",
    "OperatorError",
    "RequeueResult",
    "Status",
    "collect_status",
    "deployed_mappings",
    "mask_url",
    "parse_fields",
    "plan_backfill",
    "reference_order",
    "render_requeue",
    "render_status",
    "requeue",
    "resolve_database_url",
    "run_backfill",
    "run_requeue",
    "run_status",
    "status_json",
]

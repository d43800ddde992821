"""`python -m components reconcile`: does Bubble hold what Supabase holds? For each mapping the stack deployed
(read from bubble_sync.mappings), its source records against Bubble's things, compared by the database
(bubble_sync.compare_with_bubble, sql/functions/compare.sql: the one comparison rule, which the scheduled
verification uses too). Four kinds of difference, each counted with up to 20 example keys: missing, stale
(which fields; their values with --show-values), orphaned, duplicated. With --repair the fixes go through the
normal queue and are followed until applied; reconcile itself never writes to Bubble.

Bubble is read at most at reconcileRatePercent of bubbleRateLimitPerMinute, through the gate every worker
shares (bubble_sync.take_requests), so the live sync keeps the rest; a 429's Retry-After and Bubble's circuit
breaker hold it back as they hold the function. A whole run reads every thing of each mapping's data type
that carries a key, 100 a request (a scan: the orphans come free); a run limited by --where looks up the
records it selects, 100 keys a request. Exit 0 in sync, 1 differences found (or left after --repair), 2 a
flag, the connection, the database's release, or Bubble refused the token, 130 interrupted.

The modules, one job each:
  settings.py  where Bubble is, the token, the rate limit and reconcile's share of it (stack file or flags)
  gate.py      SharedGate: turns at the shared gate, at reconcile's share; answers reported for the breaker
  bubble.py    BubbleReader: searches of the Data API, a few in flight, retried after 429s and failures
  things.py    ThingStore: Bubble's things in a temporary table of the session
  fetch.py     scan (every thing of a type, in windows of 50,000) and look_up (`in` searches of 100 keys)
  source.py    Target: a mapping's table, its records in keyset chunks, the database's comparison
  examine.py   Examiner: read, compare, orphans, a second look, archived orphans and kept duplicates
  findings.py  MappingFindings: what was found, by kind
  values.py    --show-values: source and Bubble values of stale fields, credentials hidden
  report.py    the text and JSON reports, the summary line
  repair.py    --repair: the plan, queueing through bubble_sync.enqueue, following the rows
  (progress: the operators' shared line, components/operator/progress_line.py)
  command.py   run_reconcile: the command and its exit codes
  queries.py   the queries of sql/operator_reconcile.sql
"""

from __future__ import annotations

from components.operator.reconcile.base import (
    EXIT_DIFFERENCES,
    EXIT_IN_SYNC,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    BubbleRefused,
    BubbleUnavailable,
    ReconcileError,
)
from components.operator.reconcile.command import MAX_CHUNK_SIZE, run_reconcile
from components.operator.reconcile.settings import BubbleSettings, resolve_settings
from components.operator.reconcile.source import DEFAULT_CHUNK_SIZE

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EXIT_DIFFERENCES",
    "EXIT_INTERRUPTED",
    "EXIT_IN_SYNC",
    "EXIT_USAGE",
    "MAX_CHUNK_SIZE",
    "BubbleRefused",
    "BubbleSettings",
    "BubbleUnavailable",
    "ReconcileError",
    "resolve_settings",
    "run_reconcile",
]

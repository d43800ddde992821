"""What every part of `reconcile` shares: its exit codes and the errors that end a run before it has an
answer (each exit 2; the message holds no secret)."""

from __future__ import annotations

from components.errors import BubbleSyncError

__all__ = [
    "EXIT_DIFFERENCES",
    "EXIT_INTERRUPTED",
    "EXIT_IN_SYNC",
    "EXIT_USAGE",
    "BubbleRefused",
    "BubbleUnavailable",
    "ReconcileError",
]

#: Bubble holds what Supabase holds (after --repair: every difference repaired)
EXIT_IN_SYNC = 0
#: differences found (after --repair: some are left, each named)
EXIT_DIFFERENCES = 1
#: a flag, the connection, the database's release, or Bubble refused the token (nothing was queued)
EXIT_USAGE = 2
#: Ctrl-C: nothing half-written; repairs queued before it keep syncing
EXIT_INTERRUPTED = 130


class ReconcileError(BubbleSyncError):
    """A flag does not fit, the database is not ready, or the settings are missing: the message names the flag
    or the step to take."""


class BubbleRefused(ReconcileError):
    """Bubble answered in a way that ends the run: the token refused (401, 403), a data type or field the Data
    API does not have, or a search it does not take."""


class BubbleUnavailable(ReconcileError):
    """Bubble did not answer: never in this run (a wrong --bubble-url, no network), or its circuit breaker
    stayed open longer than reconcile waits."""

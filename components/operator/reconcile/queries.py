"""The queries of `reconcile`, by name, from sql/operator_reconcile.sql (cut as components/operator/queries.py
cuts the other operator files: `split_queries`). Read on first use, not at import."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from components.operator.queries import QueryFileError, split_queries
from components.sql.templates import OPERATOR_RECONCILE_FILE, load

__all__ = ["reconcile_query"]


@functools.cache
def _queries() -> Mapping[str, str]:
    return split_queries(load(OPERATOR_RECONCILE_FILE), OPERATOR_RECONCILE_FILE)


def reconcile_query(name: str) -> str:
    """The query `name` of sql/operator_reconcile.sql, as written (its `{slot}`s not filled in)."""
    queries = _queries()
    if name not in queries:
        raise QueryFileError(
            f"sql/{OPERATOR_RECONCILE_FILE} has no query named {name} (it has: {', '.join(queries)})"
        )
    return queries[name]

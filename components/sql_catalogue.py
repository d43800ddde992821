"""The old path of `components.sql.catalogue`, which holds everything this module exported.

Kept because stacks deployed by earlier releases hold dynamic providers pickled (dill) by module path in
their Pulumi state, and that state may name this module; code outside this repository may import it too.
New code imports `components.sql.catalogue`.
"""

from components.sql.catalogue import (
    REVOKED_FROM,
    CatalogueError,
    FunctionSpec,
    functions,
    split_statements,
)

__all__ = ["REVOKED_FROM", "CatalogueError", "FunctionSpec", "functions", "split_statements"]

"""The old path of `components.sql.parser`, which holds everything this module exported.

Kept because stacks deployed by earlier releases hold dynamic providers pickled (dill) by module path in
their Pulumi state, and that state may name this module; code outside this repository may import it too.
New code imports `components.sql.parser`.
"""

from components.sql.parser import (
    FunctionGrant,
    SqlSyntaxError,
    Statement,
    function_grant,
    identity_args,
    identity_params,
    parse,
    qualified_name,
    type_name,
)

__all__ = [
    "FunctionGrant",
    "SqlSyntaxError",
    "Statement",
    "function_grant",
    "identity_args",
    "identity_params",
    "parse",
    "qualified_name",
    "type_name",
]

"""The old path of `components.sql.params`, which holds everything this module exported.

Kept because stacks deployed by earlier releases hold dynamic providers pickled (dill) by module path in
their Pulumi state, and that state may name this module; code outside this repository may import it too.
New code imports `components.sql.params`.
"""

from components.sql.params import (
    DEFAULT_PARAMS,
    KEY_PARAMS,
    KeyParam,
    key_params,
    sql_params,
)

__all__ = ["DEFAULT_PARAMS", "KEY_PARAMS", "KeyParam", "key_params", "sql_params"]

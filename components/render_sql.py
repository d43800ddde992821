"""The old path of `components.sql.render`, which holds everything this module exported.

Kept because stacks deployed by earlier releases hold dynamic providers pickled (dill) by module path in
their Pulumi state, and that state may name this module; code outside this repository may import it too.
New code imports `components.sql.render`.
"""

from components.sql.render import (
    render_script,
)

__all__ = ["render_script"]

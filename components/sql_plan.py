"""The old path of `components.sql.plan`, which holds everything this module exported.

Kept because stacks deployed by earlier releases hold dynamic providers pickled (dill) by module path in
their Pulumi state, and that state may name this module; code outside this repository may import it too.
New code imports `components.sql.plan`.
"""

from components.sql.plan import (
    DISPATCH_TRIGGER,
    QUEUE_COLUMNS,
    QUEUE_TABLE,
    CronJobUnit,
    ExtensionUnit,
    FunctionUnit,
    MappingUnit,
    QueueUnit,
    SqlObjectUnit,
    SqlPlan,
    Unit,
    VaultSecretUnit,
    mapping_unit,
    sql_params,
    sql_plan,
)

__all__ = [
    "DISPATCH_TRIGGER",
    "QUEUE_COLUMNS",
    "QUEUE_TABLE",
    "CronJobUnit",
    "ExtensionUnit",
    "FunctionUnit",
    "MappingUnit",
    "QueueUnit",
    "SqlObjectUnit",
    "SqlPlan",
    "Unit",
    "VaultSecretUnit",
    "mapping_unit",
    "sql_params",
    "sql_plan",
]

"""The old path of `components.sql.templates`, which holds everything this module exported.

Kept because stacks deployed by earlier releases hold dynamic providers pickled (dill) by module path in
their Pulumi state, and that state may name this module; code outside this repository may import it too.
New code imports `components.sql.templates`.
"""

from components.sql.templates import (
    CRON_JOBS,
    DISPATCH_TRIGGER_FILE,
    EXTENSION_CHECK_FILE,
    MAPPING_RECORD_FILE,
    MAPPING_TRIGGER_FILE,
    NULL,
    OPERATOR_BACKFILL_FILE,
    OPERATOR_RECONCILE_FILE,
    OPERATOR_STATUS_FILE,
    QUEUE_COLUMNS,
    QUEUE_FILES,
    SQL_DIR,
    UNIT_PARAMS,
    VAULT_SECRET_FILE,
    VERIFICATION_FILE,
    CronJobSpec,
    Identifier,
    literal,
    load,
    placeholders,
    render,
    schedule_statement,
)

__all__ = [
    "CRON_JOBS",
    "DISPATCH_TRIGGER_FILE",
    "EXTENSION_CHECK_FILE",
    "MAPPING_RECORD_FILE",
    "MAPPING_TRIGGER_FILE",
    "NULL",
    "OPERATOR_BACKFILL_FILE",
    "OPERATOR_RECONCILE_FILE",
    "OPERATOR_STATUS_FILE",
    "QUEUE_COLUMNS",
    "QUEUE_FILES",
    "SQL_DIR",
    "UNIT_PARAMS",
    "VAULT_SECRET_FILE",
    "VERIFICATION_FILE",
    "CronJobSpec",
    "Identifier",
    "literal",
    "load",
    "placeholders",
    "render",
    "schedule_statement",
]

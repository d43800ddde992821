"""Dynamic providers for what pulumi-postgresql cannot manage well: functions with pinned settings, pg_cron
jobs, Vault secrets, the queue's DDL, and small generic SQL objects.

Each reads its database connection in `configure()` from stack config (`bubble-sync:databaseUrl`, or
`bubble-sync:dbHost`/`dbPassword`/...) or the environment variable `BUBBLE_SYNC_DATABASE_URL`, never from
resource inputs (see `components.connection`). Each `read` reports live state under the input keys and
`diff` compares it with the program, so `pulumi refresh` / `preview --refresh` show drift and `up` repairs
it. Importing this package has no side effects: the dynamic-provider process imports these modules to
unpickle the providers.
"""

from components.providers._base import ProviderError
from components.providers.cron_job import CronJob, CronJobArgs, CronJobProvider
from components.providers.queue_schema import QueueSchema, QueueSchemaArgs, QueueSchemaProvider
from components.providers.sql_function import SqlFunction, SqlFunctionArgs, SqlFunctionProvider
from components.providers.sql_object import SqlObject, SqlObjectArgs, SqlObjectProvider
from components.providers.vault_secret import VaultSecret, VaultSecretArgs, VaultSecretProvider

__all__ = [
    "CronJob",
    "CronJobArgs",
    "CronJobProvider",
    "ProviderError",
    "QueueSchema",
    "QueueSchemaArgs",
    "QueueSchemaProvider",
    "SqlFunction",
    "SqlFunctionArgs",
    "SqlFunctionProvider",
    "SqlObject",
    "SqlObjectArgs",
    "SqlObjectProvider",
    "VaultSecret",
    "VaultSecretArgs",
    "VaultSecretProvider",
]

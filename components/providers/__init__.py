"""Dynamic providers for what pulumi-postgresql cannot manage well: functions with pinned settings, pg_cron
jobs, Vault secrets, the queue's DDL, and small generic SQL objects; and, over the Supabase Management API,
the Edge Function and its secrets.

The database providers read their connection in `configure()` from stack config (`bubble-sync:databaseUrl`,
or `bubble-sync:dbHost`/`dbPassword`/...) or the environment variable `BUBBLE_SYNC_DATABASE_URL`, never from
resource inputs (see `components.connection`). The Management API providers (`EdgeFunction`,
`FunctionSecrets`) find the API and its access token the same way: `bubble-sync:managementApiUrl` or
`SUPABASE_MANAGEMENT_API_URL`, `bubble-sync:supabaseAccessToken` or `SUPABASE_ACCESS_TOKEN` (see
`management_api`). Each `read` reports live state under the input keys and `diff` compares it with the
program, so `pulumi refresh` / `preview --refresh` show drift and `up` repairs it. Importing this package
has no side effects: the dynamic-provider process imports these modules to unpickle the providers.
"""

from components.providers._base import ProviderError
from components.providers.cron_job import CronJob, CronJobArgs, CronJobProvider
from components.providers.edge_function import (
    EdgeFunction,
    EdgeFunctionArgs,
    EdgeFunctionProvider,
    FunctionSourceError,
    function_source_hash,
)
from components.providers.function_secrets import (
    FunctionSecrets,
    FunctionSecretsArgs,
    FunctionSecretsProvider,
)
from components.providers.management_api import ManagementApiError
from components.providers.queue_schema import QueueSchema, QueueSchemaArgs, QueueSchemaProvider
from components.providers.sql_function import SqlFunction, SqlFunctionArgs, SqlFunctionProvider
from components.providers.sql_object import SqlObject, SqlObjectArgs, SqlObjectProvider
from components.providers.vault_secret import VaultSecret, VaultSecretArgs, VaultSecretProvider

__all__ = [
    "CronJob",
    "CronJobArgs",
    "CronJobProvider",
    "EdgeFunction",
    "EdgeFunctionArgs",
    "EdgeFunctionProvider",
    "FunctionSecrets",
    "FunctionSecretsArgs",
    "FunctionSecretsProvider",
    "FunctionSourceError",
    "ManagementApiError",
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
    "function_source_hash",
]

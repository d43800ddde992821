"""The errors bubble-sync raises on purpose, under one root, in the few kinds callers tell apart.

    BubbleSyncError          anything below; its message is meant for the user and never holds a secret
    ├── SettingsError        a setting is missing or invalid; the message names it
    │   ├── ConfigError            the stack config, every problem at once     (config.py)
    │   └── ConnectionConfigError  where the database is                       (connection.py)
    ├── SourceError          the project's own sources cannot be used as they are
    │   ├── SqlSyntaxError         PostgreSQL's parser refuses a text           (sql/parser.py)
    │   ├── CatalogueError         a file under sql/ breaks the conventions     (sql/catalogue.py)
    │   ├── QueryFileError         a file of named queries under sql/           (operator/queries.py)
    │   ├── DefinitionError        a SQL function definition       (providers/function_definition.py)
    │   └── FunctionSourceError    the Edge Function's files       (providers/edge_function.py)
    ├── ProviderError        an operation on the database or the Management API failed   (providers/_base.py)
    │   └── ManagementApiError                                                 (providers/management_api.py)
    └── OperatorError        an operator command cannot reach or read the database (operator/connection.py)

The leaves live next to the code that raises them; this module only holds the root and the kinds, so it
imports nothing and every module may import it.
"""

from __future__ import annotations

__all__ = ["BubbleSyncError", "SettingsError", "SourceError"]


class BubbleSyncError(Exception):
    """Root of bubble-sync's own errors. The message is meant for the user and never holds a secret."""


class SettingsError(BubbleSyncError, ValueError):
    """A setting (stack config key, environment variable) is missing or invalid; the message names it."""


class SourceError(BubbleSyncError, ValueError):
    """The project's own sources (a SQL definition, the Edge Function's files) cannot be used as they are."""

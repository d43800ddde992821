"""The validated stack configuration as the program uses it: `StackConfig`, its database connection
`DbConnection`, the `Secret` type its secret fields have, and `ConfigError`, which lists every problem a
stack's config has. components/config.py builds them (`load_config`, `from_pulumi`).

Pure data: nothing is read or validated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import pulumi

from components.config_problem import ConfigProblem
from components.errors import SettingsError
from components.mappings import Mapping as SyncMapping

__all__ = ["ConfigError", "DbConnection", "DispatchMode", "Secret", "StackConfig"]

# A secret value: a secret `pulumi.Output[str]` in a Pulumi program, a plain `str` elsewhere.
Secret: TypeAlias = "pulumi.Output[str] | str"
DispatchMode = Literal["immediate", "cron"]


class ConfigError(SettingsError, pulumi.RunError):
    """The stack configuration is invalid. `problems` lists each one; the message shows them all.

    A `pulumi.RunError`, so `pulumi up` prints just the message (no Python traceback)."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} {noun}):\n{lines}")


@dataclass(frozen=True)
class DbConnection:
    """How Pulumi reaches the database (pulumi-postgresql's provider and our dynamic providers)."""

    host: str
    port: int
    user: str
    password: Secret
    dbname: str
    sslmode: str


@dataclass(frozen=True)
class StackConfig:
    """A validated stack configuration. Secret fields hold secret Outputs inside a Pulumi program.

    `project_ref`, `supabase_url`, `bubble_base_url`, `database` and the secrets are `None` only in
    a config loaded with `for_sql=True` (SQL rendering needs none of them).
    """

    project_ref: str | None
    supabase_url: str | None
    bubble_base_url: str | None
    bubble_data_type: str
    bubble_external_key_field: str
    bubble_bulk_create: bool
    bubble_bulk_timeout_seconds: int
    bubble_modify_user_credentials: bool
    database: DbConnection | None
    service_role_key: Secret | None
    supabase_access_token: Secret | None
    bubble_api_token: Secret | None
    #: None: `SUPABASE_MANAGEMENT_API_URL` or https://api.supabase.com, resolved by the providers
    management_api_url: str | None
    deploy_edge_function: bool
    processor_schedule: str
    retry_schedule: str
    maintenance_schedule: str
    batch_size: int
    concurrency: int
    bubble_rate_limit_per_minute: int
    bubble_settle_seconds: int
    max_retries: int
    retry_horizon_hours: int
    bubble_breaker_failures: int
    bubble_probe_seconds: int
    lease_seconds: int
    http_timeout_ms: int
    run_details_retention_days: int
    completed_retention_days: int
    dispatch_mode: DispatchMode
    #: False: pg_cron and pg_net are enabled outside the stack (the dashboard); the stack only checks them
    manage_extensions: bool
    drop_extensions_on_destroy: bool
    drop_queue_on_destroy: bool
    #: the tables synced to Bubble types, in config order (docs/mappings.md); () without `mappings`
    mappings: tuple[SyncMapping, ...] = ()
    #: the scheduled verification (bubble_sync.verify): its cron schedule and the records per mapping
    verify_schedule: str = "7 * * * *"
    verify_sample: int = 100
    #: where the database posts alerts (Vault secret alert_webhook_url); None: nothing is posted
    alert_webhook_url: Secret | None = None
    #: minutes Bubble's circuit breaker is open, and the oldest pending change waits, before an alert says so
    alert_after_minutes: int = 10
    alert_backlog_minutes: int = 15

    def value_of(self, key: str) -> object:
        """The value of stack config key `key`: its field (`bubbleRateLimitPerMinute` is
        `bubble_rate_limit_per_minute`). A key without a field of its own raises AttributeError: the
        connection's (`database` holds them) and reconcileRatePercent (only reconcile reads it)."""
        return getattr(self, "".join(f"_{c.lower()}" if c.isupper() else c for c in key))

    @property
    def bubble_environment(self) -> Literal["live", "version-test"] | None:
        if self.bubble_base_url is None:
            return None
        return "version-test" if self.bubble_base_url.endswith("/version-test/api/1.1") else "live"

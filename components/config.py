"""Stack configuration: one typed, frozen `StackConfig`, validated before any resource is declared.

The keys, their types, defaults and ranges are the table in `components/config_keys.py` (re-exported here);
the dataclasses and `ConfigError` are components/stack_config.py's (re-exported here). The keys are read by
`KeyReader` (components/config_reader.py; schedules checked by components/cron_schedule.py), the URL keys
by components/config_urls.py, the database connection by components/config_database.py, the structured key
`mappings` by components/mapping_config.py (its problems follow the other keys', each naming its path); the
loader here reads them all and checks the rules that span keys.

Two ways in:
  * `from_pulumi(pulumi.Config())` inside a Pulumi program. Secret keys are read with `get_secret`, so
    their values stay secret `pulumi.Output`s in the dataclass; a secret key whose stack value is stored
    in plain text is an error.
  * `load_config(get, ...)` with any getter, e.g. values read from `Pulumi.<stack>.yaml` by
    `python -m components render-sql`. There secrets are plain strings, or `None` when they cannot be
    read (the SQL render replaces them with psql variables anyway).

Invalid input raises `ConfigError`, which lists every problem at once, each naming its key
(`bubble-sync:<key>`) and the reason. No error message ever contains a secret's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

import pulumi

from components.bubble_names import DATA_TYPE, FIELD_NAME, field_id_problem
from components.config_database import DatabaseKeys
from components.config_keys import KEYS, PROJECT, REQUESTS_PER_ROW_MAX, KeySpec
from components.config_problem import ConfigProblem
from components.config_reader import KEY_DEFAULTS, KEY_RANGES
from components.config_urls import UrlKeys
from components.cron_schedule import validate_schedule
from components.mapping_config import KEY as MAPPINGS_KEY
from components.mapping_config import parse_mappings
from components.mappings import Mapping as SyncMapping
from components.stack_config import ConfigError, DbConnection, DispatchMode, Secret, StackConfig

__all__ = [
    "KEYS",
    "PROJECT",
    "REQUESTS_PER_ROW_MAX",
    "ConfigError",
    "ConfigProblem",
    "DbConnection",
    "DispatchMode",
    "KeySpec",
    "Secret",
    "StackConfig",
    "from_pulumi",
    "load_config",
    "validate_schedule",
]


def from_pulumi(cfg: pulumi.Config | None = None) -> StackConfig:
    """The stack's config inside a Pulumi program (or under `pulumi.runtime.set_mocks`)."""
    cfg = cfg or pulumi.Config(PROJECT)

    def wrap_secret(key: str, _plain: str) -> Secret:
        value = cfg.get_secret(key)
        assert value is not None  # only called for keys that have a value
        return value

    return load_config(
        cfg.get,
        is_secret=lambda key: pulumi.runtime.is_config_secret(cfg.full_key(key)),
        wrap_secret=wrap_secret,
    )


def load_config(
    get: Callable[[str], object],
    *,
    is_secret: Callable[[str], bool] | None = None,
    wrap_secret: Callable[[str, str], Secret] | None = None,
    env: Mapping[str, str] | None = None,
    for_sql: bool = False,
) -> StackConfig:
    """Builds and validates a `StackConfig`, or raises `ConfigError` listing every problem.

    get: the raw value of a key (without namespace), `None` when unset: text, and for `mappings` JSON text
        (as Pulumi hands structured config to a program) or the list a stack file holds.
    is_secret: whether the stack stores a key's value encrypted; when given, a secret key whose value
        is plain text is an error.
    wrap_secret: turns a secret key's value into what the dataclass holds (`from_pulumi` makes it a
        secret Output); by default the plain string is kept.
    env: where `SUPABASE_ACCESS_TOKEN` and `BUBBLE_SYNC_DATABASE_URL` (used when no connection is
        configured) are looked up (default `os.environ`).
    for_sql: the values only feed the SQL render, so the project ref, Bubble URL, database connection
        and secrets are optional (values that are present are still validated).
    """
    return _Loader(get, is_secret, wrap_secret, os.environ if env is None else env, for_sql).load()


# -- the loader ----------------------------------------------------------------------------------------------


class _Loader(UrlKeys, DatabaseKeys):
    """Every key of a stack's config read and checked together (the rules that span keys are here)."""

    def load(self) -> StackConfig:
        project_ref = self._project_ref()
        supabase_url = self._supabase_url(project_ref)
        bubble_base_url = self._bubble_base_url()
        bubble_data_type = self._string("bubbleDataType", pattern=DATA_TYPE, what="a Bubble type name")
        external_key_field = self._string(
            "bubbleExternalKeyField", pattern=FIELD_NAME, what="a Bubble field name"
        )
        if external_key_field is not None:
            self._refuse_field_id("bubbleExternalKeyField", external_key_field)
        bulk_create = self._bool("bubbleBulkCreate")
        modify_user_credentials = self._bool("bubbleModifyUserCredentials")
        database = self._database(project_ref)
        service_role_key = self._secret("serviceRoleKey", required=True)
        access_token = self._secret("supabaseAccessToken", required=False)
        if access_token is None and self._env.get("SUPABASE_ACCESS_TOKEN"):
            token = self._env["SUPABASE_ACCESS_TOKEN"]
            access_token = pulumi.Output.secret(token) if self._wrap_secret else token
        management_api_url = self._management_api_url()
        deploy_function = self._bool("deployEdgeFunction")
        if (
            deploy_function
            and access_token is None
            and not self._for_sql
            and not self._problem_for("supabaseAccessToken")
        ):
            self._problem(
                "supabaseAccessToken",
                "is required to deploy the bubble_sync Edge Function (deployEdgeFunction is true): run "
                "`pulumi config set --secret supabaseAccessToken sbp_...` or set the environment variable "
                "SUPABASE_ACCESS_TOKEN (a token from https://supabase.com/dashboard/account/tokens); or set "
                "deployEdgeFunction to false if you deploy the function with the Supabase CLI",
            )
        bubble_api_token = self._secret("bubbleApiToken", required=True)
        alert_webhook_url = self._webhook_url("alertWebhookUrl")
        schedules = {key: self._schedule(key) for key in _SCHEDULE_KEYS}
        ints = {key: self._int(key) for key in KEY_RANGES if key != "dbPort"}
        lease, timeout = ints["leaseSeconds"], ints["httpTimeoutMs"]
        # One row may need up to 4 Bubble requests in a row (search, create, search by email, modify); the
        # edge function refuses a timeout that does not fit its lease that often (config.ts, the same rule).
        if lease is not None and timeout is not None and lease * 1000 <= timeout * REQUESTS_PER_ROW_MAX:
            self._problem(
                "leaseSeconds",
                f"{lease} s must exceed {REQUESTS_PER_ROW_MAX} x httpTimeoutMs ({timeout} ms): a row may "
                f"need {REQUESTS_PER_ROW_MAX} Bubble requests and must not be re-claimed meanwhile",
            )
        dispatch_mode = self._choice("dispatchMode", ("immediate", "cron"))
        manage_extensions = self._bool("manageExtensions")
        drop_extensions = self._bool("dropExtensionsOnDestroy")
        if manage_extensions is False and drop_extensions:
            self._problem(
                "dropExtensionsOnDestroy",
                "must be false when manageExtensions is false: the stack does not own extensions enabled in "
                "the dashboard, so destroy leaves them",
            )
        drop_queue = self._bool("dropQueueOnDestroy")
        # A bad bubbleExternalKeyField is reported once, not again for every mapping that defaults to it.
        default_key_field = str(KEY_DEFAULTS["bubbleExternalKeyField"])
        if external_key_field is not None and not self._problem_for("bubbleExternalKeyField"):
            default_key_field = external_key_field
        mappings = self._mappings(default_key_field)

        if self.problems:
            order = {spec.name: i for i, spec in enumerate(KEYS)}
            # A structured key's problems (`mappings[0].where`) sort with their key, in the order found.
            raise ConfigError(sorted(self.problems, key=lambda p: order.get(_key_of(p.key), len(order))))
        return StackConfig(
            project_ref=project_ref,
            supabase_url=supabase_url,
            bubble_base_url=bubble_base_url,
            bubble_data_type=bubble_data_type,  # type: ignore[arg-type]  # problems raised above
            bubble_external_key_field=external_key_field,  # type: ignore[arg-type]
            bubble_bulk_create=bulk_create,  # type: ignore[arg-type]
            bubble_bulk_timeout_seconds=ints["bubbleBulkTimeoutSeconds"],  # type: ignore[arg-type]
            bubble_modify_user_credentials=modify_user_credentials,  # type: ignore[arg-type]
            database=database,
            service_role_key=service_role_key,
            supabase_access_token=access_token,
            bubble_api_token=bubble_api_token,
            management_api_url=management_api_url,
            deploy_edge_function=deploy_function,  # type: ignore[arg-type]
            processor_schedule=schedules["processorSchedule"],  # type: ignore[arg-type]
            retry_schedule=schedules["retrySchedule"],  # type: ignore[arg-type]
            maintenance_schedule=schedules["maintenanceSchedule"],  # type: ignore[arg-type]
            batch_size=ints["batchSize"],  # type: ignore[arg-type]
            concurrency=ints["concurrency"],  # type: ignore[arg-type]
            bubble_rate_limit_per_minute=ints["bubbleRateLimitPerMinute"],  # type: ignore[arg-type]
            bubble_settle_seconds=ints["bubbleSettleSeconds"],  # type: ignore[arg-type]
            max_retries=ints["maxRetries"],  # type: ignore[arg-type]
            retry_horizon_hours=ints["retryHorizonHours"],  # type: ignore[arg-type]
            bubble_breaker_failures=ints["bubbleBreakerFailures"],  # type: ignore[arg-type]
            bubble_probe_seconds=ints["bubbleProbeSeconds"],  # type: ignore[arg-type]
            lease_seconds=lease,  # type: ignore[arg-type]
            http_timeout_ms=timeout,  # type: ignore[arg-type]
            run_details_retention_days=ints["runDetailsRetentionDays"],  # type: ignore[arg-type]
            completed_retention_days=ints["completedRetentionDays"],  # type: ignore[arg-type]
            dispatch_mode=dispatch_mode,  # type: ignore[arg-type]
            manage_extensions=manage_extensions,  # type: ignore[arg-type]
            drop_extensions_on_destroy=drop_extensions,  # type: ignore[arg-type]
            drop_queue_on_destroy=drop_queue,  # type: ignore[arg-type]
            mappings=mappings,
            verify_schedule=schedules["verifySchedule"],  # type: ignore[arg-type]
            verify_sample=ints["verifySample"],  # type: ignore[arg-type]
            alert_webhook_url=alert_webhook_url,
            alert_after_minutes=ints["alertAfterMinutes"],  # type: ignore[arg-type]
            alert_backlog_minutes=ints["alertBacklogMinutes"],  # type: ignore[arg-type]
        )

    def _refuse_field_id(self, key: str, field: str) -> None:
        reason = field_id_problem(field)
        if reason is not None:
            self._problem(key, reason)

    # -- keys with their own rules --------------------------------------------------------------------

    def _mappings(self, default_key_field: str) -> tuple[SyncMapping, ...]:
        if self._is_secret is not None and self._is_secret(MAPPINGS_KEY):
            # Mappings end up in plain text: the stack state, bubble_sync.mappings, each trigger definition.
            self._problem(
                MAPPINGS_KEY,
                "must not be a secret (or hold one): it is stored in plain text in the database's "
                "bubble_sync.mappings and the triggers; set it without --secret",
            )
            return ()
        mappings, problems = parse_mappings(self._get(MAPPINGS_KEY), default_key_field)
        self.problems.extend(problems)
        return mappings


_SCHEDULE_KEYS = ("processorSchedule", "retrySchedule", "maintenanceSchedule", "verifySchedule")


def _key_of(path: str) -> str:
    """The stack config key a problem's path is in: `mappings` for `mappings[1].fields.host_id.ref`."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]

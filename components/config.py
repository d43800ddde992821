"""Stack configuration: one typed, frozen `StackConfig`, validated before any resource is declared.

The keys, their types, defaults and ranges are the table in `components/config_keys.py` (re-exported here);
schedules are checked by `components/cron_schedule.py`, the structured key `mappings` by
`components/mapping_config.py` (its problems follow the other keys', each naming its path).

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
from dataclasses import dataclass
from typing import Literal, TypeAlias
from urllib.parse import SplitResult, urlsplit

import pulumi

from components import url_secrets
from components.bubble_names import DATA_TYPE, FIELD_NAME, field_id_problem
from components.config_keys import KEYS, PROJECT, REQUESTS_PER_ROW_MAX, KeySpec
from components.config_problem import ConfigProblem
from components.connection import ENV_VAR as DATABASE_URL_ENV
from components.connection import SSL_MODES, host_problem, parse_database_url
from components.cron_schedule import validate_schedule
from components.errors import SettingsError
from components.mapping_config import KEY as MAPPINGS_KEY
from components.mapping_config import parse_mappings
from components.mappings import Mapping as SyncMapping

__all__ = [
    "KEYS",
    "PROJECT",
    "REQUESTS_PER_ROW_MAX",
    "ConfigError",
    "ConfigProblem",
    "DbConnection",
    "KeySpec",
    "Secret",
    "StackConfig",
    "from_pulumi",
    "load_config",
    "validate_schedule",
]

# A secret value: a secret `pulumi.Output[str]` in a Pulumi program, a plain `str` elsewhere.
Secret: TypeAlias = "pulumi.Output[str] | str"
DispatchMode = Literal["immediate", "cron"]


_DEFAULTS = {spec.name: spec.default for spec in KEYS}


_RANGES: dict[str, tuple[int, int]] = {spec.name: spec.range for spec in KEYS if spec.range is not None}
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_POOLER_HOST = re.compile(r"^aws-\d+-[a-z0-9-]+\.pooler\.supabase\.com$")
_DIRECT_HOST = re.compile(r"^db\.([a-z]+)\.supabase\.co$")
_PROJECT_REF = re.compile(r"^[a-z]{20}$")


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


class _Loader:
    def __init__(
        self,
        get: Callable[[str], object],
        is_secret: Callable[[str], bool] | None,
        wrap_secret: Callable[[str, str], Secret] | None,
        env: Mapping[str, str],
        for_sql: bool,
    ) -> None:
        self._get = get
        self._is_secret = is_secret
        self._wrap_secret = wrap_secret
        self._env = env
        self._for_sql = for_sql
        self.problems: list[ConfigProblem] = []

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
        ints = {key: self._int(key) for key in _RANGES if key != "dbPort"}
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
        default_key_field = str(_DEFAULTS["bubbleExternalKeyField"])
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

    # -- primitives -----------------------------------------------------------------------------------

    def _problem(self, key: str, reason: str) -> None:
        self.problems.append(ConfigProblem(key, reason))

    def _problem_for(self, key: str) -> bool:
        return any(p.key == key for p in self.problems)

    def _raw(self, key: str) -> str | None:
        """The key's value, or its default when unset or ""; None when neither is there."""
        value = self._get(key)
        text = "" if value is None else str(value)
        if not text:
            default = _DEFAULTS[key]
            text = (
                "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
            )
        return text or None

    def _string(self, key: str, *, pattern: re.Pattern[str], what: str) -> str | None:
        value = self._raw(key)
        if value is None:
            self._problem(key, "is required")
        elif not pattern.match(value):
            self._problem(key, f"must be {what}, got {value!r}")
        return value

    def _int(self, key: str) -> int | None:
        value = self._raw(key)
        low, high = _RANGES[key]
        if value is None:
            self._problem(key, f"is required (an integer from {low} to {high})")
            return None
        if not re.fullmatch(r"-?\d+", value.strip()):
            self._problem(key, f"must be an integer from {low} to {high}, got {value!r}")
            return None
        number = int(value)
        if not low <= number <= high:
            self._problem(key, f"must be from {low} to {high}, got {number}")
            return None
        return number

    def _bool(self, key: str) -> bool | None:
        value = (self._raw(key) or "").lower()
        if value not in ("true", "false"):
            self._problem(key, f"must be true or false, got {value!r}")
            return None
        return value == "true"

    def _choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self._raw(key)
        if value not in choices:
            self._problem(key, f"must be one of {' | '.join(choices)}, got {value!r}")
            return None
        return value

    def _schedule(self, key: str) -> str | None:
        value = self._raw(key)
        if value is None:
            self._problem(key, "is required (a cron schedule)")
            return None
        reason = validate_schedule(value)
        if reason:
            self._problem(key, f"invalid schedule: {reason}")
            return None
        return value.strip()

    def _secret_text(self, key: str, *, required: bool) -> str | None:
        """A secret's plain text for validation, after the presence and encryption checks."""
        value = self._raw(key)
        command = f"`pulumi config set --secret {key} <value>`"
        if value is None:
            if required and not self._for_sql:
                self._problem(key, f"is required (a secret): run {command}")
            return None
        if self._is_secret is not None and not self._is_secret(key):
            self._problem(
                key,
                f"is stored in plain text but is a secret: run {command}, and rotate the value "
                f"(the plain text is in Pulumi.<stack>.yaml and its history)",
            )
            return None
        return value

    def _secret(self, key: str, *, required: bool) -> Secret | None:
        value = self._secret_text(key, required=required)
        if value is None:
            return None
        if not value.strip():
            self._problem(key, "is blank")
            return None
        return self._wrap_secret(key, value) if self._wrap_secret else value

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

    def _project_ref(self) -> str | None:
        value = self._raw("projectRef")
        if value is None:
            if not self._for_sql:
                self._problem("projectRef", "is required: the 20 lowercase letters in <ref>.supabase.co")
            return None
        if not _PROJECT_REF.match(value):
            self._problem(
                "projectRef",
                f"must be exactly 20 lowercase letters (a-z), got {value!r} ({len(value)} characters)",
            )
            return None
        return value

    def _http_url(self, key: str, value: str) -> SplitResult | None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self._problem(key, f"must be an http(s) URL with a host, got {url_secrets.shown(value)!r}")
            return None
        if parts.query or parts.fragment or parts.username or parts.password:
            self._problem(
                key, f"must not contain credentials, a query or a fragment, got {url_secrets.shown(value)!r}"
            )
            return None
        return parts

    def _supabase_url(self, project_ref: str | None) -> str | None:
        value = self._raw("supabaseUrl")
        if value is None:
            return f"https://{project_ref}.supabase.co" if project_ref else None
        parts = self._http_url("supabaseUrl", value)
        if parts is None:
            return None
        if parts.path.rstrip("/"):
            self._problem(
                "supabaseUrl",
                f"must be the project's base URL without a path, got {url_secrets.shown(value)!r}",
            )
            return None
        return value.rstrip("/")

    def _management_api_url(self) -> str | None:
        key = "managementApiUrl"
        value = self._raw(key)
        if value is None:
            return None
        parts = self._http_url(key, value)
        if parts is None:
            return None
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            self._problem(
                key, f"must use https (http only for a local test double), got {url_secrets.shown(value)!r}"
            )
            return None
        if parts.path.rstrip("/"):
            self._problem(
                key,
                "must be the API's base URL without a path (like https://api.supabase.com), "
                f"got {url_secrets.shown(value)!r}",
            )
            return None
        return value.rstrip("/")

    def _webhook_url(self, key: str) -> Secret | None:
        """An optional secret URL (a Slack webhook's path is its credential): http(s) with a host, https but
        on loopback (a local receiver). Errors never show any part of it."""
        value = self._secret_text(key, required=False)
        if value is None:
            return None
        try:
            parts = urlsplit(value.strip())
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            self._problem(key, "must be an http(s) URL with a host (the value is not shown: it is a secret)")
            return None
        if parts.scheme != "https" and host not in _LOOPBACK:
            self._problem(key, "must use https (http only for a local receiver); the value is not shown")
            return None
        return self._wrap_secret(key, value.strip()) if self._wrap_secret else value.strip()

    def _bubble_base_url(self) -> str | None:
        key = "bubbleBaseUrl"
        value = self._raw(key)
        if value is None:
            if not self._for_sql:
                self._problem(
                    key, "is required: https://<app>.bubbleapps.io/api/1.1 or .../version-test/api/1.1"
                )
            return None
        parts = self._http_url(key, value)
        if parts is None:
            return None
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            self._problem(
                key, f"must use https (http only for a local Bubble double), got {url_secrets.shown(value)!r}"
            )
            return None
        if parts.path.rstrip("/") not in ("/api/1.1", "/version-test/api/1.1"):
            self._problem(
                key,
                "must end in /api/1.1 (live) or /version-test/api/1.1 (development), "
                f"got {url_secrets.shown(value)!r}",
            )
            return None
        return value.rstrip("/")

    def _database(self, project_ref: str | None) -> DbConnection | None:
        url = self._secret_text("databaseUrl", required=False)
        host = self._raw("dbHost")
        password = self._secret_text("dbPassword", required=False)
        sslmode = self._raw("dbSslMode") or "require"
        if sslmode not in SSL_MODES:
            self._problem("dbSslMode", f"must be one of {' | '.join(SSL_MODES)}, got {sslmode!r}")
        port = self._int("dbPort")
        user = self._raw("dbUser") or "postgres"
        dbname = self._raw("dbName") or "postgres"

        if url is not None and (host is not None or password is not None):
            self._problem("databaseUrl", "set either databaseUrl or dbHost + dbPassword, not both")
            return None
        from_env = url is None and host is None and password is None and bool(self._env.get(DATABASE_URL_ENV))
        if from_env:
            # The providers fall back to the same variable (components/connection.py).
            url = self._env[DATABASE_URL_ENV]
        if url is not None:
            try:
                parts = parse_database_url(url)
            except ValueError as exc:
                self._problem("databaseUrl", str(exc))
                return None
            host, port, user, dbname = parts.host, parts.port, parts.user, parts.dbname
            sslmode = parts.sslmode or sslmode
            secret: Secret = url
            if self._wrap_secret:
                secret = pulumi.Output.secret(url) if from_env else self._wrap_secret("databaseUrl", url)
            password_value: Secret = _url_password(secret)
        elif host is not None:
            reason = host_problem(host)
            if reason:
                self._problem("dbHost", reason)
                return None
            if password is None:
                # A plain-text password is already reported as such; "required" would mislead.
                if not self._for_sql and not self._problem_for("dbPassword"):
                    self._problem(
                        "dbPassword",
                        "is required with dbHost: run `pulumi config set --secret dbPassword <value>`",
                    )
                return None
            password_value = self._wrap_secret("dbPassword", password) if self._wrap_secret else password
        else:
            if not self._for_sql:
                self._problem(
                    "databaseUrl",
                    f"no database connection: set databaseUrl (secret), or dbHost and dbPassword (secret), "
                    f"or the environment variable {DATABASE_URL_ENV}; from IPv4-only CI use the session "
                    f"pooler aws-0-<region>.pooler.supabase.com:5432 with user postgres.<projectRef>",
                )
            return None
        if port is None or sslmode not in SSL_MODES:
            return None
        self._check_supabase_host(
            "databaseUrl" if url is not None else "dbHost", host, port, user, project_ref
        )
        return DbConnection(
            host=host, port=port, user=user, password=password_value, dbname=dbname, sslmode=sslmode
        )

    def _check_supabase_host(
        self, key: str, host: str, port: int, user: str, project_ref: str | None
    ) -> None:
        """Catches a connection that points at another project, or at the pooler's transaction mode."""
        direct = _DIRECT_HOST.match(host)
        if direct and project_ref and direct.group(1) != project_ref:
            self._problem(
                key, f"host {host} belongs to project {direct.group(1)}, not projectRef {project_ref}"
            )
        if _POOLER_HOST.match(host):
            if port != 5432:
                self._problem(
                    key,
                    f"use the pooler's session mode (port 5432), not port {port}: transaction mode breaks "
                    f"session state and prepared statements",
                )
            if project_ref and user != f"postgres.{project_ref}":
                self._problem(key, f"the session pooler needs user postgres.{project_ref}, got {user!r}")


_SCHEDULE_KEYS = ("processorSchedule", "retrySchedule", "maintenanceSchedule", "verifySchedule")


def _key_of(path: str) -> str:
    """The stack config key a problem's path is in: `mappings` for `mappings[1].fields.host_id.ref`."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _url_password(url: Secret) -> Secret:
    def password(text: str) -> str:
        return url_secrets.password_of(text) or ""

    if isinstance(url, str):
        return password(url)
    return url.apply(password)

"""Stack config validation: every key's rules, all problems in one error, no secret ever in a message.

Why one module: its tests share the `load`/`problems`/`assert_problem` helpers and read as one table of every
key's rules, which the all-problems-at-once and no-secret tests at the end span.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest
import yaml

from components.config import (
    KEYS,
    PROJECT,
    ConfigError,
    StackConfig,
    from_pulumi,
    load_config,
    validate_schedule,
)
from components.mappings import FieldMap, OnDelete
from components.stack_file import load_stack_config, read_stack_values
from tests.pulumi_cli_config import StackValue, stack_values_from_file, validate_stack_config

REF = "abcdefghijklmnopqrst"
SECRET_KEYS = {
    "databaseUrl", "dbPassword", "serviceRoleKey", "supabaseAccessToken", "bubbleApiToken", "alertWebhookUrl",
}  # fmt: skip

# Distinctive secret values: no error message may ever contain them.
SERVICE_KEY = "svc-SECRET-7f3a"
BUBBLE_TOKEN = "bubble-SECRET-91c2"
DB_PASSWORD = "db-SECRET-44d0"
ACCESS_TOKEN = "sbp_SECRET_0a1b"

VALID: dict[str, str] = {
    "projectRef": REF,
    "dbHost": f"db.{REF}.supabase.co",
    "dbPassword": DB_PASSWORD,
    "serviceRoleKey": SERVICE_KEY,
    "bubbleBaseUrl": "https://myapp.bubbleapps.io/version-test/api/1.1",
    "bubbleApiToken": BUBBLE_TOKEN,
    # deployEdgeFunction defaults to true, which needs the Management API token
    "supabaseAccessToken": ACCESS_TOKEN,
}


def load(overrides: dict[str, object] | None = None, **kwargs: object) -> StackConfig:
    values = {**VALID, **(overrides or {})}
    kwargs.setdefault("env", {})
    return load_config(lambda key: values.get(key), **kwargs)  # type: ignore[arg-type]


def problems(overrides: dict[str, str | None], **kwargs: object) -> dict[str, str]:
    """key -> reason of every problem the overrides cause."""
    with pytest.raises(ConfigError) as info:
        load(overrides, **kwargs)
    found: dict[str, str] = {}
    for p in info.value.problems:
        found.setdefault(p.key, p.reason)
    return found


def assert_problem(overrides: dict[str, str | None], key: str, fragment: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(overrides)
    message = str(info.value)
    assert f"{PROJECT}:{key}: " in message, message
    assert fragment in message, message
    return info.value


# -- a valid stack and its defaults --------------------------------------------------------------------------


def test_minimal_stack_gets_every_default() -> None:
    config = load()
    assert config.project_ref == REF
    assert config.supabase_url == f"https://{REF}.supabase.co"
    assert config.bubble_base_url == "https://myapp.bubbleapps.io/version-test/api/1.1"
    assert config.bubble_environment == "version-test"
    assert config.bubble_data_type == "user"
    assert config.bubble_external_key_field == "supabase_id"
    assert config.bubble_bulk_create is False
    assert config.deploy_edge_function is True
    assert config.management_api_url is None
    assert config.processor_schedule == "* * * * *"
    assert config.retry_schedule == "*/5 * * * *"
    assert config.maintenance_schedule == "17 3 * * *"
    assert (config.verify_schedule, config.verify_sample) == ("7 * * * *", 100)
    assert config.alert_webhook_url is None
    assert (config.alert_after_minutes, config.alert_backlog_minutes) == (10, 15)
    assert (config.batch_size, config.concurrency, config.max_retries) == (50, 0, 3)
    assert (config.lease_seconds, config.http_timeout_ms) == (180, 5000)
    assert (config.run_details_retention_days, config.completed_retention_days) == (7, 30)
    assert config.dispatch_mode == "immediate"
    assert config.drop_extensions_on_destroy is False
    assert config.drop_queue_on_destroy is False
    assert config.service_role_key == SERVICE_KEY
    assert config.bubble_api_token == BUBBLE_TOKEN
    assert config.supabase_access_token == ACCESS_TOKEN
    db = config.database
    assert db is not None
    assert (db.host, db.port, db.user, db.dbname, db.sslmode) == (
        f"db.{REF}.supabase.co",
        5432,
        "postgres",
        "postgres",
        "require",
    )
    assert db.password == DB_PASSWORD


def test_every_value_can_be_set() -> None:
    config = load(
        {
            "supabaseUrl": "http://127.0.0.1:54321/",
            "bubbleBaseUrl": "https://sync.example.com/api/1.1/",
            "bubbleDataType": "signup_log",
            "processorSchedule": "10 seconds",
            "retrySchedule": "*/2 * * * *",
            "maintenanceSchedule": "0 4 * * sun",
            "batchSize": "1000",
            "concurrency": "20",
            "maxRetries": "0",
            "leaseSeconds": "900",
            "httpTimeoutMs": "150000",
            "runDetailsRetentionDays": "365",
            "completedRetentionDays": "3650",
            "dispatchMode": "cron",
            "dropExtensionsOnDestroy": "true",
            "dropQueueOnDestroy": "True",
            "supabaseAccessToken": "sbp_token",
            "managementApiUrl": "http://127.0.0.1:54999/",
            "deployEdgeFunction": "false",
            "bubbleExternalKeyField": "Supabase ID",
            "bubbleBulkCreate": "true",
        }
    )
    assert config.supabase_url == "http://127.0.0.1:54321"
    assert config.bubble_base_url == "https://sync.example.com/api/1.1"
    assert config.bubble_environment == "live"
    assert config.bubble_data_type == "signup_log"
    assert config.processor_schedule == "10 seconds"
    assert (config.batch_size, config.concurrency, config.max_retries) == (1000, 20, 0)
    assert (config.lease_seconds, config.http_timeout_ms) == (900, 150000)
    assert config.dispatch_mode == "cron"
    assert config.drop_extensions_on_destroy is True
    assert config.drop_queue_on_destroy is True
    assert config.supabase_access_token == "sbp_token"
    assert config.management_api_url == "http://127.0.0.1:54999"
    assert config.deploy_edge_function is False
    assert config.bubble_external_key_field == "Supabase ID"
    assert config.bubble_bulk_create is True


def test_database_url_is_parsed_into_a_connection() -> None:
    url = f"postgresql://postgres.{REF}:p%40ss@aws-0-eu-central-1.pooler.supabase.com:5432/postgres?sslmode=verify-full"
    config = load({"dbHost": None, "dbPassword": None, "databaseUrl": url})
    db = config.database
    assert db is not None
    assert (db.host, db.port, db.user, db.dbname, db.sslmode) == (
        "aws-0-eu-central-1.pooler.supabase.com",
        5432,
        f"postgres.{REF}",
        "postgres",
        "verify-full",
    )
    assert db.password == "p@ss"


def test_access_token_falls_back_to_the_environment() -> None:
    config = load({"supabaseAccessToken": None}, env={"SUPABASE_ACCESS_TOKEN": "sbp_from_env"})
    assert config.supabase_access_token == "sbp_from_env"
    assert load(
        {"supabaseAccessToken": "sbp_cfg"}, env={"SUPABASE_ACCESS_TOKEN": "x"}
    ).supabase_access_token == ("sbp_cfg")


def test_config_is_frozen() -> None:
    config = load()
    with pytest.raises(AttributeError):
        config.batch_size = 1  # type: ignore[misc]


# -- project ref ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    ["abcdefghijklmnopqrs", "abcdefghijklmnopqrstu", "ABCDEFGHIJKLMNOPQRST", "abcdefghijklmnopqrs1", "abc"],
)
def test_project_ref_must_be_20_lowercase_letters(ref: str) -> None:
    assert_problem({"projectRef": ref}, "projectRef", "exactly 20 lowercase letters")


def test_project_ref_is_required() -> None:
    assert_problem({"projectRef": None}, "projectRef", "is required")


# -- URLs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://x.supabase.co", "http(s) URL"),
        ("x.supabase.co", "http(s) URL"),
        ("https://", "http(s) URL"),
        (f"https://{REF}.supabase.co/rest/v1", "without a path"),
        (f"https://{REF}.supabase.co?x=1", "query"),
    ],
)
def test_supabase_url_must_be_a_base_http_url(url: str, fragment: str) -> None:
    assert_problem({"supabaseUrl": url}, "supabaseUrl", fragment)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://myapp.bubbleapps.io/api/1.1", "must use https"),
        ("https://myapp.bubbleapps.io", "must end in /api/1.1"),
        ("https://myapp.bubbleapps.io/api/1.1/obj/user", "must end in /api/1.1"),
        ("https://myapp.bubbleapps.io/version-live/api/1.1", "must end in /api/1.1"),
        ("https://myapp.bubbleapps.io/api/1.1?api_token=x", "query"),
        ("bubble", "http(s) URL"),
    ],
)
def test_bubble_base_url_must_be_an_https_data_api_root(url: str, fragment: str) -> None:
    assert_problem({"bubbleBaseUrl": url}, "bubbleBaseUrl", fragment)


def test_bubble_base_url_may_use_http_on_loopback_for_the_double() -> None:
    assert load({"bubbleBaseUrl": "http://127.0.0.1:8080/version-test/api/1.1"}).bubble_base_url == (
        "http://127.0.0.1:8080/version-test/api/1.1"
    )


def test_bubble_base_url_is_required() -> None:
    assert_problem({"bubbleBaseUrl": None}, "bubbleBaseUrl", "is required")


@pytest.mark.parametrize("name", ["", "user/1", "user type", "x" * 101])
def test_bubble_data_type_must_be_a_type_name(name: str) -> None:
    key_problems = problems({"bubbleDataType": name or None}) if name else None
    if name:
        assert "bubbleDataType" in key_problems  # type: ignore[operator]
    else:  # "" means "not set": the default applies
        assert load({"bubbleDataType": ""}).bubble_data_type == "user"


@pytest.mark.parametrize("name", ["supabase_id", "Supabase ID", "external-key.v2", "Context Text", "text"])
def test_bubble_external_key_field_accepts_field_names(name: str) -> None:
    assert load({"bubbleExternalKeyField": name}).bubble_external_key_field == name


@pytest.mark.parametrize(
    ("field_id", "name"),
    [
        ("supabase_id_text", "supabase_id"),
        ("signup_key_text", "signup_key"),
        ("owner_custom_profile", "owner"),
    ],
)
def test_bubble_external_key_field_refuses_a_field_id_with_the_display_name_rule(
    field_id: str, name: str
) -> None:
    # Bubble's manual (and a third-party live test): create and modify bodies refuse ids with 400
    # "Unrecognized field"; only the display name works
    assert_problem({"bubbleExternalKeyField": field_id}, "bubbleExternalKeyField", "display name")
    assert f"e.g. {name!r}" in problems({"bubbleExternalKeyField": field_id})["bubbleExternalKeyField"]


@pytest.mark.parametrize("name", [" leading", "id/1", "a" * 101, 'x"y'])
def test_bubble_external_key_field_must_be_a_field_name(name: str) -> None:
    assert_problem({"bubbleExternalKeyField": name}, "bubbleExternalKeyField", "a Bubble field name")


# -- Management API and the Edge Function deploy -------------------------------------------------------------


def test_deploying_the_function_needs_an_access_token() -> None:
    error = assert_problem({"supabaseAccessToken": None}, "supabaseAccessToken", "required to deploy")
    message = str(error)
    assert "pulumi config set --secret supabaseAccessToken" in message
    assert "SUPABASE_ACCESS_TOKEN" in message
    assert "deployEdgeFunction" in message
    assert len(error.problems) == 1


def test_the_access_token_may_come_from_the_environment_or_be_unneeded() -> None:
    from_env = load({"supabaseAccessToken": None}, env={"SUPABASE_ACCESS_TOKEN": "sbp_env"})
    assert from_env.supabase_access_token == "sbp_env"
    skipped = load({"supabaseAccessToken": None, "deployEdgeFunction": "false"})
    assert (skipped.deploy_edge_function, skipped.supabase_access_token) == (False, None)
    assert load_config(lambda key: None, for_sql=True, env={}).deploy_edge_function is True  # no token needed


def test_a_plain_text_access_token_is_reported_once() -> None:
    with pytest.raises(ConfigError) as info:
        load(is_secret=lambda key: key in SECRET_KEYS and key != "supabaseAccessToken")
    assert [p.key for p in info.value.problems] == ["supabaseAccessToken"]
    assert "stored in plain text" in str(info.value)
    assert ACCESS_TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.supabase.com", "https://api.supabase.com"),
        ("https://api.supabase.com/", "https://api.supabase.com"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://localhost:9000/", "http://localhost:9000"),
    ],
)
def test_management_api_url(url: str, expected: str) -> None:
    assert load({"managementApiUrl": url}).management_api_url == expected


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://api.supabase.com", "must use https"),
        ("https://api.supabase.com/v1", "without a path"),
        ("api.supabase.com", "http(s) URL"),
        ("https://user:pw@api.supabase.com", "credentials"),
    ],
)
def test_management_api_url_must_be_an_https_base_url(url: str, fragment: str) -> None:
    assert_problem({"managementApiUrl": url}, "managementApiUrl", fragment)


# -- database connection -------------------------------------------------------------------------------------


def test_a_database_connection_is_required_and_the_error_mentions_the_pooler() -> None:
    error = assert_problem({"dbHost": None, "dbPassword": None}, "databaseUrl", "no database connection")
    assert "aws-0-<region>.pooler.supabase.com:5432" in str(error)
    assert "postgres.<projectRef>" in str(error)


def test_db_host_needs_a_password() -> None:
    assert_problem({"dbPassword": None}, "dbPassword", "pulumi config set --secret dbPassword")


def test_database_url_and_db_host_are_exclusive() -> None:
    assert_problem(
        {"databaseUrl": f"postgresql://postgres:{DB_PASSWORD}@db.{REF}.supabase.co/postgres"},
        "databaseUrl",
        "not both",
    )


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://root:{DB_PASSWORD}@db.{REF}.supabase.co/postgres",
        f"postgresql://db.{REF}.supabase.co/postgres",
        f"postgresql://postgres:{DB_PASSWORD}@db.{REF}.supabase.co:notaport/postgres",
        f"postgresql://postgres:{DB_PASSWORD}@db.{REF}.supabase.co/postgres?sslmode=prefer",
        f"{DB_PASSWORD}",
    ],
)
def test_bad_database_url_is_rejected_without_echoing_it(url: str) -> None:
    error = assert_problem({"dbHost": None, "dbPassword": None, "databaseUrl": url}, "databaseUrl", "")
    assert DB_PASSWORD not in str(error)


def test_a_url_given_as_db_host_is_refused_at_preview_as_the_providers_would() -> None:
    # The same rule as components/connection.py's, so preview fails where `up` would have.
    url = f"postgresql://postgres:{DB_PASSWORD}@db.{REF}.supabase.co/postgres"
    error = assert_problem({"dbHost": url}, "dbHost", "put a full URL in `bubble-sync:databaseUrl` instead")
    assert DB_PASSWORD not in str(error)


def test_sslmode_prefer_is_rejected_because_lib_pq_lacks_it() -> None:
    assert_problem({"dbSslMode": "prefer"}, "dbSslMode", "disable | require | verify-ca | verify-full")


@pytest.mark.parametrize("port", ["0", "65536", "five"])
def test_db_port_must_be_a_port(port: str) -> None:
    assert "dbPort" in problems({"dbPort": port})


def test_direct_host_of_another_project_is_rejected() -> None:
    assert_problem({"dbHost": "db.zyxwvutsrqponmlkjihg.supabase.co"}, "dbHost", "belongs to project")


def test_pooler_needs_session_mode_and_the_project_user() -> None:
    found = problems({"dbHost": "aws-0-us-east-1.pooler.supabase.com", "dbPort": "6543"})
    assert "session mode (port 5432)" in found["dbHost"]
    error = assert_problem({"dbHost": "aws-0-us-east-1.pooler.supabase.com"}, "dbHost", f"postgres.{REF}")
    assert len(error.problems) == 1
    assert load({"dbHost": "aws-0-us-east-1.pooler.supabase.com", "dbUser": f"postgres.{REF}"}).database


# -- secrets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["serviceRoleKey", "bubbleApiToken"])
def test_required_secret_missing(key: str) -> None:
    assert_problem({key: None}, key, f"pulumi config set --secret {key}")


@pytest.mark.parametrize("key", sorted(SECRET_KEYS - {"databaseUrl"}))
def test_plain_text_where_a_secret_is_required(key: str) -> None:
    overrides: dict[str, str | None] = {key: VALID.get(key, "plain-SECRET-value")}
    with pytest.raises(ConfigError) as info:
        load(overrides, is_secret=lambda k: k in SECRET_KEYS and k != key)
    message = str(info.value)
    assert f"{PROJECT}:{key}: is stored in plain text" in message
    assert f"pulumi config set --secret {key}" in message
    assert overrides[key] not in message
    # One problem for the key: a plain value is there, so it is not also "required".
    assert [p.key for p in info.value.problems] == [key]


def test_plain_database_url_is_rejected() -> None:
    url = f"postgresql://postgres:{DB_PASSWORD}@db.{REF}.supabase.co/postgres"
    with pytest.raises(ConfigError) as info:
        load({"dbHost": None, "dbPassword": None, "databaseUrl": url}, is_secret=lambda k: k != "databaseUrl")
    assert "pulumi config set --secret databaseUrl" in str(info.value)
    assert DB_PASSWORD not in str(info.value)


def test_blank_secret_is_rejected() -> None:
    assert_problem({"serviceRoleKey": "   "}, "serviceRoleKey", "blank")


# -- schedules -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "*/5 * * * *",
        "17 3 * * *",
        "0-30/10 9-17 1,15 jan-jun mon-fri",
        "0 0 * * 7",
        "0 12 * DEC SUN",
        "10 seconds",
        "59 seconds",
        "1 second",
        "@daily",
        "@hourly",
    ],
)
def test_valid_schedules(schedule: str) -> None:
    assert validate_schedule(schedule) is None
    assert load({"processorSchedule": schedule}).processor_schedule == schedule


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "60 is outside 0-59"),
        ("* 24 * * *", "24 is outside 0-23"),
        ("* * 0 * *", "0 is outside 1-31"),
        ("* * 32 * *", "32 is outside 1-31"),
        ("* * * 13 *", "13 is outside 1-12"),
        ("* * * * 8", "8 is outside 0-7"),
        ("*/0 * * * *", "step"),
        ("*/x * * * *", "step"),
        ("5/10 * * * *", "a step needs"),
        ("30-10 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("* * * foo *", "not a number or a name"),
        ("mon * * * *", "not a number"),
        ("0 seconds", "1-59 seconds"),
        ("60 seconds", "1-59 seconds"),
        ("@reboot", "not a recurring schedule"),
        ("", "expected 5 fields"),
    ],
)
def test_invalid_schedules(schedule: str, fragment: str) -> None:
    reason = validate_schedule(schedule)
    assert reason is not None and fragment in reason, reason
    for key in ("processorSchedule", "retrySchedule", "maintenanceSchedule", "verifySchedule"):
        if schedule:
            assert_problem({key: schedule}, key, "invalid schedule")


# -- numbers, choices, booleans ------------------------------------------------------------------------------

INT_RANGES = {
    "batchSize": (1, 1000),
    "concurrency": (0, 500),
    "maxRetries": (0, 50),
    "leaseSeconds": (30, 900),
    "httpTimeoutMs": (1000, 150000),
    "runDetailsRetentionDays": (1, 365),
    "completedRetentionDays": (1, 3650),
    "verifySample": (1, 10000),
    "alertAfterMinutes": (1, 1440),
    "alertBacklogMinutes": (1, 1440),
}


@pytest.mark.parametrize("key", sorted(INT_RANGES))
def test_integers_out_of_range(key: str) -> None:
    low, high = INT_RANGES[key]
    for bad in (low - 1, high + 1):
        assert_problem({key: str(bad)}, key, f"must be from {low} to {high}, got {bad}")
    for bad_text in ("1.5", "ten", "true"):
        assert_problem({key: bad_text}, key, "must be an integer")


def test_lease_must_hold_four_http_timeouts() -> None:
    # the edge function refuses the same combination at start-up (config.ts), so preview must catch it
    assert_problem(
        {"leaseSeconds": "40", "httpTimeoutMs": "10000"}, "leaseSeconds", "must exceed 4 x httpTimeoutMs"
    )
    assert load({"leaseSeconds": "41", "httpTimeoutMs": "10000"}).lease_seconds == 41


def test_dispatch_mode_choices() -> None:
    assert_problem({"dispatchMode": "webhook"}, "dispatchMode", "immediate | cron")


@pytest.mark.parametrize(
    "key", ["dropExtensionsOnDestroy", "dropQueueOnDestroy", "deployEdgeFunction", "bubbleBulkCreate"]
)
def test_booleans(key: str) -> None:
    assert_problem({key: "yes"}, key, "true or false")


# -- all problems at once, and nothing secret ----------------------------------------------------------------


def test_extensions_left_to_the_dashboard_cannot_be_dropped_by_destroy() -> None:
    assert load({}).manage_extensions is True
    assert load({"manageExtensions": "false"}).manage_extensions is False
    with pytest.raises(ConfigError) as err:
        load({"manageExtensions": "false", "dropExtensionsOnDestroy": "true"})
    assert [str(p) for p in err.value.problems] == [
        "bubble-sync:dropExtensionsOnDestroy: must be false when manageExtensions is false: the stack does "
        "not own extensions enabled in the dashboard, so destroy leaves them"
    ]


def test_all_problems_are_reported_together_in_key_order() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            {
                "projectRef": "nope",
                "serviceRoleKey": None,
                "bubbleBaseUrl": "https://app.bubbleapps.io/wrong",
                "processorSchedule": "every minute",
                "batchSize": "0",
                "concurrency": "501",
                "dispatchMode": "sometimes",
                "dropQueueOnDestroy": "maybe",
            }
        )
    keys = [p.key for p in info.value.problems]
    assert keys == [
        "projectRef",
        "serviceRoleKey",
        "bubbleBaseUrl",
        "processorSchedule",
        "batchSize",
        "concurrency",
        "dispatchMode",
        "dropQueueOnDestroy",
    ]
    message = str(info.value)
    assert message.startswith("invalid stack configuration (8 problems):")
    for key in keys:
        assert f"{PROJECT}:{key}: " in message


def test_no_secret_value_appears_in_any_message() -> None:
    url = f"postgres://postgres:{DB_PASSWORD}@db.zyxwvutsrqponmlkjihg.supabase.co:6543/x?sslmode=bogus"
    secrets = {
        "databaseUrl": url,
        "dbPassword": DB_PASSWORD,
        "serviceRoleKey": SERVICE_KEY,
        "bubbleApiToken": BUBBLE_TOKEN,
        "supabaseAccessToken": "sbp_SECRET_ffff",
    }
    for is_secret in (None, lambda key: False):
        with pytest.raises(ConfigError) as info:
            load({**secrets, "projectRef": "bad", "batchSize": "-1"}, is_secret=is_secret)
        message = str(info.value) + repr(info.value.problems)
        for value in (DB_PASSWORD, SERVICE_KEY, BUBBLE_TOKEN, "sbp_SECRET_ffff"):
            assert value not in message


# -- the scheduled verification and the alerts -------------------------------------------------------------

WEBHOOK = "https://hooks.slack.com/services/T000/B000/hook-SECRET-77aa"


def test_verification_and_alert_keys_can_be_set() -> None:
    config = load(
        {
            "verifySchedule": "*/30 * * * *",
            "verifySample": "10000",
            "alertWebhookUrl": WEBHOOK,
            "alertAfterMinutes": "1",
            "alertBacklogMinutes": "1440",
        }
    )
    assert (config.verify_schedule, config.verify_sample) == ("*/30 * * * *", 10000)
    assert config.alert_webhook_url == WEBHOOK
    assert (config.alert_after_minutes, config.alert_backlog_minutes) == (1, 1440)
    # a local receiver (the tests', the devstack's) may use http
    assert (
        load({"alertWebhookUrl": "http://127.0.0.1:8080/hook"}).alert_webhook_url
        == "http://127.0.0.1:8080/hook"
    )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("hooks.slack.com/services/T000/B000/hook-SECRET-77aa", "must be an http(s) URL with a host"),
        ("ftp://hooks.slack.com/hook-SECRET-77aa", "must be an http(s) URL with a host"),
        ("http://hooks.slack.com/services/hook-SECRET-77aa", "must use https"),
    ],
)
def test_the_alert_webhook_must_be_https_and_is_never_shown(url: str, fragment: str) -> None:
    error = assert_problem({"alertWebhookUrl": url}, "alertWebhookUrl", fragment)
    assert "SECRET" not in str(error) + repr(error.problems)


def test_the_alert_webhook_is_a_secret() -> None:
    found = problems({"alertWebhookUrl": WEBHOOK}, is_secret=lambda key: False)
    assert "is stored in plain text" in found["alertWebhookUrl"]
    assert "SECRET" not in found["alertWebhookUrl"]
    assert load({"alertWebhookUrl": WEBHOOK}, is_secret=lambda key: key in SECRET_KEYS).alert_webhook_url


# -- mappings (structured config, components/mapping_config.py) ---------------------------------------------

MAPPINGS = [
    {"name": "users", "table": "public.profiles", "dataType": "user", "fields": {"email": "Email"}},
    {
        "name": "listings",
        "table": "listings",
        "dataType": "listing",
        "fields": {"title": "Title", "host_id": {"field": "Host", "ref": "users"}},
        "onDelete": {"set": {"Archived": True}},
    },
]


@pytest.mark.parametrize("unset", [None, "", "[]", []])
def test_a_stack_without_mappings_loads_exactly_as_before(unset: object) -> None:
    config = load({"mappings": unset})
    assert config.mappings == ()
    assert config == load()


def test_mappings_are_read_from_the_json_pulumi_hands_the_program() -> None:
    config = load({"mappings": json.dumps(MAPPINGS, sort_keys=True), "bubbleExternalKeyField": "Supabase ID"})
    users, listings = config.mappings
    assert (users.name, users.schema, users.table, users.data_type) == ("users", "public", "profiles", "user")
    # a mapping without keyField uses the stack's bubbleExternalKeyField
    assert users.key_field == listings.key_field == "Supabase ID"
    assert sorted(listings.fields, key=lambda f: f.column) == [
        FieldMap("host_id", "Host", "users"),
        FieldMap("title", "Title"),
    ]
    assert listings.on_delete == OnDelete("set", {"Archived": True})
    assert listings.operations == ("insert", "update", "delete")


def test_mapping_problems_follow_the_other_keys_in_one_error() -> None:
    bad = [{**MAPPINGS[0], "name": "Users"}, {**MAPPINGS[1], "where": "1; drop table x"}]
    with pytest.raises(ConfigError) as info:
        load({"mappings": json.dumps(bad), "projectRef": "nope", "dropQueueOnDestroy": "maybe"})
    assert [p.key for p in info.value.problems] == [
        "projectRef",
        "dropQueueOnDestroy",
        "mappings[0].name",
        "mappings[1].where",
        "mappings[1].fields.host_id.ref",  # what needs the whole list comes after each entry's own
    ]
    message = str(info.value)
    assert message.startswith("invalid stack configuration (5 problems):")
    assert f'{PROJECT}:mappings[1].fields.host_id.ref: no mapping named "users"' in message
    assert f"{PROJECT}:mappings[1].where: does not parse as a SQL condition" in message


def test_mappings_problems_do_not_hide_a_bad_key_field() -> None:
    # the mappings fall back to the default keyField; the bad bubbleExternalKeyField is reported once
    with pytest.raises(ConfigError) as info:
        load({"mappings": json.dumps(MAPPINGS), "bubbleExternalKeyField": "supabase_id_text"})
    assert [p.key for p in info.value.problems] == ["bubbleExternalKeyField"]


def test_mappings_must_not_be_a_secret() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            {"mappings": json.dumps(MAPPINGS)},
            is_secret=lambda key: key in SECRET_KEYS or key == "mappings",
        )
    assert [str(p) for p in info.value.problems] == [
        f"{PROJECT}:mappings: must not be a secret (or hold one): it is stored in plain text in the "
        "database's bubble_sync.mappings and the triggers; set it without --secret"
    ]


def test_mappings_in_a_stack_file_are_the_yaml_list(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(yaml.safe_dump({"config": {"bubble-sync:mappings": MAPPINGS}}, sort_keys=False))
    assert read_stack_values(stack)["mappings"] == MAPPINGS
    users, listings = load_stack_config(stack).mappings
    # by column, as under `pulumi config` (which hands the program an object's keys sorted)
    assert [f.column for f in listings.fields] == ["host_id", "title"]
    assert users.key_field == "supabase_id"

    overridden = load_stack_config(stack, overrides={"mappings": MAPPINGS[:1]})
    assert [m.name for m in overridden.mappings] == ["users"]


def test_a_stack_file_mapping_holding_an_encrypted_value_is_refused(tmp_path: Path) -> None:
    # `pulumi config set --secret --path 'mappings[1].onDelete.set.Token' x` encrypts one element
    secret = [MAPPINGS[0], {**MAPPINGS[1], "onDelete": {"set": {"Token": {"secure": "v1:abc"}}}}]
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(yaml.safe_dump({"config": {"bubble-sync:mappings": secret}}))
    with pytest.raises(ConfigError, match=r"bubble-sync:mappings: must not be a secret"):
        load_stack_config(stack)


def test_a_stack_file_with_bad_mappings_names_each_path(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.t.yaml"
    stack.write_text(yaml.safe_dump({"config": {"bubble-sync:mappings": [{**MAPPINGS[0], "datatype": "x"}]}}))
    with pytest.raises(ConfigError) as info:
        load_stack_config(stack)
    assert [str(p) for p in info.value.problems] == [
        f"{PROJECT}:mappings[0].datatype: unknown key (did you mean dataType?)"
    ]


# -- SQL-only loading (render-sql) ---------------------------------------------------------------------------


def test_for_sql_needs_no_project_connection_or_secrets() -> None:
    config = load_config(lambda key: None, for_sql=True, env={})
    assert config.project_ref is None
    assert config.supabase_url is None
    assert config.database is None
    assert config.service_role_key is None
    assert config.batch_size == 50


def test_for_sql_still_validates_present_values() -> None:
    with pytest.raises(ConfigError, match="bubble-sync:batchSize"):
        load_config({"batchSize": "0"}.get, for_sql=True, env={})


# -- inside a Pulumi program ---------------------------------------------------------------------------------


class _NoResources(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}_id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, None]:
        return {}, None


@pytest.fixture
def pulumi_config() -> Iterator[None]:
    settings = pulumi.runtime.settings.SETTINGS
    saved = (settings.project, settings.stack, settings.monitor, settings.engine, settings.dry_run)
    pulumi.runtime.set_mocks(_NoResources(), project=PROJECT, stack="test", preview=False)
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{key}": value for key, value in VALID.items()},
        secret_keys=[f"{PROJECT}:{key}" for key in SECRET_KEYS],
    )
    try:
        yield
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])
        settings.project, settings.stack, settings.monitor, settings.engine, settings.dry_run = saved


@pulumi.runtime.test
def test_from_pulumi_keeps_secrets_secret(pulumi_config: None) -> None:
    config = from_pulumi()
    assert config.database is not None

    async def check() -> None:
        for value in (config.service_role_key, config.bubble_api_token, config.database.password):
            assert isinstance(value, pulumi.Output)
            assert await value.is_secret()
        assert await config.service_role_key.future() == SERVICE_KEY  # type: ignore[union-attr]

    return check()  # type: ignore[return-value]


def test_from_pulumi_reads_structured_mappings(pulumi_config: None) -> None:
    # What the language host hands the program for `bubble-sync:mappings` set with `--path`: JSON text, keys
    # sorted, `>` escaped (Go's encoding/json).
    text = json.dumps([{**MAPPINGS[0], "where": "age > 17"}, MAPPINGS[1]], sort_keys=True)
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{key}": value for key, value in VALID.items()}
        | {f"{PROJECT}:mappings": text.replace(">", "\\u003e")},
        secret_keys=[f"{PROJECT}:{key}" for key in SECRET_KEYS],
    )
    users, listings = from_pulumi().mappings
    assert (users.name, users.where, listings.fields[0]) == (
        "users",
        "age > 17",
        FieldMap("host_id", "Host", "users"),
    )


def test_from_pulumi_without_mappings_has_none(pulumi_config: None) -> None:
    assert from_pulumi().mappings == ()


def test_from_pulumi_rejects_a_plain_secret(pulumi_config: None) -> None:
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{key}": value for key, value in VALID.items()},
        secret_keys=[f"{PROJECT}:{key}" for key in SECRET_KEYS - {"serviceRoleKey"}],
    )
    with pytest.raises(ConfigError, match=r"bubble-sync:serviceRoleKey: is stored in plain text"):
        from_pulumi()


# -- Pulumi.yaml mirrors KEYS --------------------------------------------------------------------------------


def test_pulumi_yaml_schema_matches_the_keys() -> None:
    project = yaml.safe_load((Path(__file__).parent.parent / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    schema = project["config"]
    assert list(schema) == [spec.name for spec in KEYS]
    for spec in KEYS:
        entry = schema[spec.name]
        assert entry["type"] == spec.type, spec.name
        assert entry.get("secret", False) == spec.schema_secret, spec.name
        # The CLI refuses a stack whose secret key gets a plain default (see KeySpec).
        assert not (entry.get("secret") and "default" in entry), spec.name
        if spec.secret:
            assert entry["description"].startswith("Secret (set with --secret)"), spec.name
        # An array key's default is a tuple in KEYS (KeySpec is frozen) and a YAML list in Pulumi.yaml.
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        assert entry.get("default") == default and type(entry.get("default")) is type(default), spec.name
        # The CLI refuses an array without `items`; scalar keys have none.
        assert entry.get("items") == ({"type": spec.items} if spec.items else None), spec.name
        assert (spec.type == "array") == (spec.items is not None), spec.name
        assert entry.get("description"), spec.name


def test_the_cli_lets_a_stack_with_structured_mappings_through_and_refuses_other_shapes() -> None:
    # Checked with the real CLI too (v3.260.0): `pulumi config set --path 'mappings[0].table' x` then preview
    # runs the program; `pulumi config set mappings notalist` stops it with this message.
    project = yaml.safe_load((Path(__file__).parent.parent / "Pulumi.yaml").read_text())
    values = {
        f"{PROJECT}:{key}": StackValue(value, secure=key in SECRET_KEYS)
        for key, value in VALID.items()
        if key != "dbPassword"
    }
    assert validate_stack_config("dev", project, values) is None  # the default, []
    stack = {"config": {f"{PROJECT}:mappings": MAPPINGS}}
    assert validate_stack_config("dev", project, {**values, **stack_values_from_file(stack)}) is None
    refused = "Stack 'dev' with configuration key 'mappings' must be of type 'array<object>'"
    for shape in ("notalist", ["users"], {"name": "users"}):
        stack = {"config": {f"{PROJECT}:mappings": shape}}
        assert validate_stack_config("dev", project, {**values, **stack_values_from_file(stack)}) == refused


def test_database_url_falls_back_to_the_environment() -> None:
    url = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:5433/postgres?sslmode=disable"
    config = load({"dbHost": None, "dbPassword": None}, env={"BUBBLE_SYNC_DATABASE_URL": url})
    assert config.database is not None
    assert (config.database.host, config.database.port, config.database.sslmode) == (
        "127.0.0.1",
        5433,
        "disable",
    )
    assert config.database.password == DB_PASSWORD

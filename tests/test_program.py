"""The Pulumi program (`__main__.py` + `BubbleSync`) under `pulumi.runtime.set_mocks`: no CLI, no engine.

Why one module: its tests share the recording mock monitor and the `run_program` fixture, and each reads the
same list of registrations the program makes.

A recording mock monitor keeps every RegisterResource request, so the tests see what the engine would:
types, names, parents, `depends_on`, `retainOnDelete`, providers, and which inputs are secret.
"""

from __future__ import annotations

import base64
import runpy
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import is_rpc_secret

from components.bubble_sync import FUNCTION_ENTRYPOINT, FUNCTION_SOURCE_DIR
from components.config import PROJECT, ConfigError
from components.providers import function_source_hash
from components.sql.catalogue import functions
from components.sql.templates import CRON_JOBS, QUEUE_FILES

MAIN = Path(__file__).resolve().parent.parent / "__main__.py"
REF = "abcdefghijklmnopqrst"
SERVICE_KEY = "svc-SECRET-7f3a"
BUBBLE_TOKEN = "bubble-SECRET-91c2"
DB_PASSWORD = "db-SECRET-44d0"
ACCESS_TOKEN = "sbp-SECRET-a11c"

CONFIG = {
    "projectRef": REF,
    "dbHost": "aws-0-eu-central-1.pooler.supabase.com",
    "dbUser": f"postgres.{REF}",
    "dbPassword": DB_PASSWORD,
    "serviceRoleKey": SERVICE_KEY,
    "bubbleBaseUrl": "https://myapp.bubbleapps.io/version-test/api/1.1",
    "bubbleApiToken": BUBBLE_TOKEN,
    "supabaseAccessToken": ACCESS_TOKEN,
}
SECRET_KEYS = [
    "dbPassword", "serviceRoleKey", "bubbleApiToken", "databaseUrl", "supabaseAccessToken", "alertWebhookUrl",
]  # fmt: skip
WEBHOOK = "https://hooks.slack.com/services/T000/B000/webhook-SECRET-5e1d"

EXTENSION = "postgresql:index/extension:Extension"
PROVIDER = "pulumi:providers:postgresql"
COMPONENT = "bubblesync:index:BubbleSync"
QUEUE = "pulumi-python:dynamic/bubblesync:QueueSchema"
FUNCTION = "pulumi-python:dynamic/bubblesync:SqlFunction"
SQL_OBJECT = "pulumi-python:dynamic/bubblesync:SqlObject"
VAULT = "pulumi-python:dynamic/bubblesync:VaultSecret"
CRON = "pulumi-python:dynamic/bubblesync:CronJob"
EDGE_FUNCTION = "pulumi-python:dynamic/bubblesync:EdgeFunction"
FUNCTION_SECRETS = "pulumi-python:dynamic/bubblesync:FunctionSecrets"
#: the names supabase/functions/bubble_sync/config.ts reads
FUNCTION_ENV = {
    "BUBBLE_BASE_URL",
    "BUBBLE_API_TOKEN",
    "BUBBLE_DATA_TYPE",
    "BUBBLE_EXTERNAL_KEY_FIELD",
    "BUBBLE_SYNC_BATCH_SIZE",
    "BUBBLE_SYNC_CONCURRENCY",
    "BUBBLE_SYNC_LEASE_SECONDS",
    "BUBBLE_SYNC_HTTP_TIMEOUT_MS",
    "BUBBLE_BULK_CREATE",
    "BUBBLE_RATE_LIMIT_PER_MINUTE",
    "BUBBLE_SETTLE_SECONDS",
    "BUBBLE_BULK_TIMEOUT_SECONDS",
    "BUBBLE_MODIFY_USER_CREDENTIALS",
    "BUBBLE_SYNC_VERIFY_SAMPLE",
}


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    retain_on_delete: bool | None
    provider: str
    additional_secret_outputs: list[str]
    inputs: dict[str, Any] = field(default_factory=dict)


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, keeping each registration's options as well as its inputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations[request.name] = Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                dependencies=list(request.dependencies),
                retain_on_delete=request.retainOnDelete if request.HasField("retainOnDelete") else None,
                provider=request.provider,
                additional_secret_outputs=list(request.additionalSecretOutputs),
            )
        return response


class EchoMocks(pulumi.runtime.Mocks):
    """Every resource's outputs are its inputs; the raw (still secret-wrapped) inputs are kept by name."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[args.name] = dict(args.inputs)
        return f"{args.name}_id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


@dataclass
class Program:
    registrations: dict[str, Registration]
    inputs: dict[str, dict[str, Any]]
    exports: dict[str, Any]

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations.values() if r.type == type_]

    def __getitem__(self, name: str) -> Registration:
        return self.registrations[name]

    def urn(self, name: str) -> str:
        return self.registrations[name].urn


@pytest.fixture
def run_program(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Runs __main__.py under mocks with the given config overrides; returns what it registered."""
    for var in ("SUPABASE_ACCESS_TOKEN", "SUPABASE_MANAGEMENT_API_URL", "BUBBLE_SYNC_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(MAIN.parent)  # `pulumi` runs the program in the project directory
    settings = pulumi.runtime.settings.SETTINGS
    saved = (settings.project, settings.stack, settings.monitor, settings.engine, settings.dry_run)

    def run(
        overrides: dict[str, str | None] | None = None,
        *,
        plain: tuple[str, ...] = (),
        check: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> Program:
        """`check`, if given, runs inside the program with its module namespace (to await Outputs)."""
        run.monitor = None  # type: ignore[attr-defined]
        values = {k: v for k, v in {**CONFIG, **(overrides or {})}.items() if v is not None}
        mocks = EchoMocks()
        monitor = RecordingMonitor(mocks)
        run.monitor = monitor  # type: ignore[attr-defined]
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False, monitor=monitor)
        pulumi.runtime.set_all_config(
            {f"{PROJECT}:{k}": v for k, v in values.items()},
            secret_keys=[f"{PROJECT}:{k}" for k in SECRET_KEYS if k not in plain],
        )
        exports: dict[str, Any] = {}

        @pulumi.runtime.test
        def program() -> Awaitable[None] | None:
            namespace = runpy.run_path(str(MAIN), run_name="__main__")
            exports.update(namespace)
            return check(namespace) if check else None

        program()
        return Program(monitor.registrations, mocks.inputs, exports)

    try:
        yield run
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])
        settings.project, settings.stack, settings.monitor, settings.engine, settings.dry_run = saved


# -- types and names -----------------------------------------------------------------------------------------


def test_resource_types_and_names(run_program: Any) -> None:
    program = run_program()
    assert program["supabase-postgres"].type == PROVIDER
    assert program["bubble-sync"].type == COMPONENT
    assert sorted(r.name for r in program.of_type(EXTENSION)) == ["bubble-sync-pg-cron", "bubble-sync-pg-net"]
    assert [r.name for r in program.of_type(QUEUE)] == ["bubble-sync-queue"]
    assert sorted(r.name for r in program.of_type(FUNCTION)) == sorted(
        f"bubble-sync-fn-{spec.schema}.{spec.name}" for spec in functions()
    )
    assert [r.name for r in program.of_type(SQL_OBJECT)] == ["bubble-sync-dispatch-trigger"]
    assert sorted(r.name for r in program.of_type(VAULT)) == [
        "bubble-sync-secret-service_role_key",
        "bubble-sync-secret-supabase_url",
    ]
    assert sorted(r.name for r in program.of_type(CRON)) == sorted(
        f"bubble-sync-job-{j.name}" for j in CRON_JOBS
    )
    assert [r.name for r in program.of_type(FUNCTION_SECRETS)] == ["bubble-sync-function-secrets"]
    assert [r.name for r in program.of_type(EDGE_FUNCTION)] == ["bubble-sync-edge-function"]
    assert len(program.registrations) == 2 + 2 + 1 + len(functions()) + 1 + 2 + len(CRON_JOBS) + 2


def test_extensions_have_explicit_names_and_supabase_schemas(run_program: Any) -> None:
    program = run_program()
    assert program.inputs["bubble-sync-pg-cron"]["name"] == "pg_cron"
    assert program.inputs["bubble-sync-pg-cron"]["schema"] == "pg_catalog"
    assert program.inputs["bubble-sync-pg-net"]["name"] == "pg_net"
    assert program.inputs["bubble-sync-pg-net"]["schema"] == "extensions"


def test_provider_connects_as_non_superuser_with_ssl(run_program: Any) -> None:
    program = run_program()
    provider = program.inputs["supabase-postgres"]
    assert provider["host"] == "aws-0-eu-central-1.pooler.supabase.com"
    assert provider["port"] == "5432" or provider["port"] == 5432
    assert provider["username"] == f"postgres.{REF}"
    assert provider["database"] == "postgres"
    assert provider["sslmode"] == "require"
    assert provider["superuser"] in (False, "false")
    assert is_rpc_secret(provider["password"])
    # only the extensions are bridged resources: they, and nothing else, use this provider
    users = [
        r.name
        for r in program.registrations.values()
        if r.provider.startswith(program.urn("supabase-postgres"))
    ]
    assert sorted(users) == ["bubble-sync-pg-cron", "bubble-sync-pg-net"]


def test_cron_jobs_match_the_seed(run_program: Any) -> None:
    program = run_program()
    jobs = {program.inputs[r.name]["name"]: program.inputs[r.name] for r in program.of_type(CRON)}
    assert jobs["bubble-sync-processor"]["schedule"] == "* * * * *"
    assert jobs["bubble-sync-processor"]["command"] == "select public.invoke_bubble_sync_processor()"
    assert jobs["bubble-sync-retry"]["schedule"] == "*/5 * * * *"
    assert jobs["bubble-sync-retry"]["command"] == "select public.invoke_bubble_sync_retry()"
    assert jobs["bubble_sync.purge"]["schedule"] == "17 3 * * *"
    assert jobs["bubble_sync.purge"]["command"] == (
        "select bubble_sync.purge(interval '7 days', interval '30 days')"
    )
    assert all(job["active"] is True for job in jobs.values())


def test_the_verification_and_alert_jobs(run_program: Any) -> None:
    program = run_program()
    jobs = {program.inputs[r.name]["name"]: program.inputs[r.name] for r in program.of_type(CRON)}
    assert jobs["bubble_sync.verify"]["schedule"] == "7 * * * *"
    assert jobs["bubble_sync.verify"]["command"] == "select bubble_sync.invoke_verify()"
    assert jobs["bubble_sync.alerts"]["schedule"] == "* * * * *"
    # the stack's name goes into the commands an alert names (pulumi.get_stack(): "test" under the mocks)
    assert jobs["bubble_sync.alerts"]["command"] == (
        "select bubble_sync.evaluate_alerts(interval '600 seconds', interval '900 seconds', 'test')"
    )
    # not bubble-sync-...: the seed's verification query lists exactly its two jobs
    assert sorted(name for name in jobs if name.startswith("bubble-sync")) == [
        "bubble-sync-processor",
        "bubble-sync-retry",
    ]
    changed = run_program(
        {"verifySchedule": "*/30 * * * *", "alertAfterMinutes": "5", "alertBacklogMinutes": "60"}
    )
    jobs = {changed.inputs[r.name]["name"]: changed.inputs[r.name] for r in changed.of_type(CRON)}
    assert jobs["bubble_sync.verify"]["schedule"] == "*/30 * * * *"
    assert "interval '300 seconds', interval '3600 seconds'" in jobs["bubble_sync.alerts"]["command"]


def test_the_alert_webhook_is_a_vault_secret_only_when_set(run_program: Any) -> None:
    without = run_program()
    assert "bubble-sync-secret-alert_webhook_url" not in without.registrations
    program = run_program({"alertWebhookUrl": WEBHOOK})
    name = "bubble-sync-secret-alert_webhook_url"
    assert program[name].type == VAULT
    value = program.inputs[name]["value"]
    assert is_rpc_secret(value) and value["value"] == WEBHOOK
    assert program[name].additional_secret_outputs == ["value"]
    assert program.inputs[name]["name"] == "alert_webhook_url"
    # the alerts job reads it, so it comes first (and on destroy, goes after the job)
    assert program.urn(name) in program["bubble-sync-job-bubble_sync.alerts"].dependencies
    for inputs in program.inputs.values():
        for key, plain in inputs.items():
            if not is_rpc_secret(plain):
                assert WEBHOOK not in str(plain), key


def test_a_plain_text_alert_webhook_is_refused(run_program: Any) -> None:
    with pytest.raises(ConfigError, match="bubble-sync:alertWebhookUrl: is stored in plain text") as info:
        run_program({"alertWebhookUrl": WEBHOOK}, plain=("alertWebhookUrl",))
    assert WEBHOOK not in str(info.value)


def test_config_values_reach_the_resources(run_program: Any) -> None:
    program = run_program(
        {
            "processorSchedule": "*/2 * * * *",
            "maintenanceSchedule": "0 4 * * *",
            "runDetailsRetentionDays": "3",
            "completedRetentionDays": "90",
            "maxRetries": "9",
            "httpTimeoutMs": "8000",
        }
    )
    jobs = {program.inputs[r.name]["name"]: program.inputs[r.name] for r in program.of_type(CRON)}
    assert jobs["bubble-sync-processor"]["schedule"] == "*/2 * * * *"
    assert jobs["bubble_sync.purge"]["schedule"] == "0 4 * * *"
    assert "interval '3 days', interval '90 days'" in jobs["bubble_sync.purge"]["command"]
    assert "default 9" in program.inputs["bubble-sync-queue"]["ddl"]
    invoke = program.inputs["bubble-sync-fn-bubble_sync.invoke_function"]["definition"]
    assert "timeout_milliseconds := 8000" in invoke


def test_functions_pin_search_path_and_grant_execute_only_to_their_roles(run_program: Any) -> None:
    program = run_program()
    by_name = {spec.name: spec for spec in functions()}
    for registration in program.of_type(FUNCTION):
        inputs = program.inputs[registration.name]
        spec = by_name[inputs["name"]]
        assert inputs["schema"] == spec.schema
        assert inputs["identity_args"] == spec.identity_args
        assert inputs["definition"].lower().count(f"function {spec.schema}.{spec.name}(") == 1
        assert "set search_path = ''" in inputs["definition"]
        assert list(inputs["execute_grants"]) == list(spec.grant_execute_to)
        assert not {"anon", "authenticated", "public"} & set(inputs["execute_grants"])


# -- parents and dependency order ----------------------------------------------------------------------------


def test_every_resource_but_the_provider_is_a_child_of_the_component(run_program: Any) -> None:
    program = run_program()
    component = program.urn("bubble-sync")
    for registration in program.registrations.values():
        if registration.name in ("bubble-sync", "supabase-postgres"):
            continue
        assert registration.parent == component, registration.name


def test_dependency_order(run_program: Any) -> None:
    program = run_program()
    deps = {name: set(r.dependencies) for name, r in program.registrations.items()}
    extensions = {program.urn("bubble-sync-pg-cron"), program.urn("bubble-sync-pg-net")}
    queue = program.urn("bubble-sync-queue")
    files = list(QUEUE_FILES)
    specs = sorted(functions(), key=lambda spec: files.index(spec.file))
    fn_urns = [program.urn(f"bubble-sync-fn-{spec.schema}.{spec.name}") for spec in specs]
    secrets = {r.urn for r in program.of_type(VAULT)}
    trigger = program.urn("bubble-sync-dispatch-trigger")

    assert extensions <= deps["bubble-sync-queue"]
    for registration in program.of_type(FUNCTION):
        assert queue in deps[registration.name], registration.name
    # one after another, in the order of their files in sql.templates.QUEUE_FILES (as the script has them)
    for earlier, later in zip(fn_urns, fn_urns[1:], strict=False):
        later_name = later.rsplit("::", 1)[1]
        assert earlier in deps[later_name], later_name
    _topological_order(deps, program)  # no cycles
    assert queue in deps["bubble-sync-dispatch-trigger"]
    assert program.urn("bubble-sync-fn-bubble_sync.dispatch_wake") in deps["bubble-sync-dispatch-trigger"]
    assert secrets <= deps["bubble-sync-dispatch-trigger"]
    for registration in program.of_type(CRON):
        needs = deps[registration.name]
        assert set(fn_urns) <= needs, registration.name
        assert secrets <= needs
        assert program.urn("bubble-sync-pg-cron") in needs
        assert trigger in needs
    # the Edge Function and its secrets come after the database objects the function works through,
    # and the secrets before the function
    database = {queue, *fn_urns, *secrets}
    function_secrets = program.urn("bubble-sync-function-secrets")
    assert database <= deps["bubble-sync-function-secrets"]
    assert database | {function_secrets} <= deps["bubble-sync-edge-function"]
    order = _topological_order(deps, program)
    edge_function = program.urn("bubble-sync-edge-function")
    assert all(order.index(urn) < order.index(function_secrets) for urn in database)
    assert order.index(function_secrets) < order.index(edge_function)


def _topological_order(deps: dict[str, set[str]], program: Program) -> list[str]:
    """URNs in an order that respects every depends_on edge (fails on a cycle)."""
    by_urn = {program.urn(name): urns for name, urns in deps.items()}
    order: list[str] = []
    remaining = dict(by_urn)
    while remaining:
        ready = sorted(urn for urn, needs in remaining.items() if not (needs & remaining.keys()))
        assert ready, f"dependency cycle among {sorted(remaining)}"
        for urn in ready:
            order.append(urn)
            del remaining[urn]
    return order


# -- secrets -------------------------------------------------------------------------------------------------


def test_secrets_are_secret(run_program: Any) -> None:
    program = run_program()
    for name in ("bubble-sync-secret-service_role_key", "bubble-sync-secret-supabase_url"):
        value = program.inputs[name]["value"]
        assert is_rpc_secret(value), name
        assert program[name].additional_secret_outputs == ["value"]
    assert program.inputs["bubble-sync-secret-service_role_key"]["value"]["value"] == SERVICE_KEY
    assert program.inputs["bubble-sync-secret-supabase_url"]["value"]["value"] == f"https://{REF}.supabase.co"


def test_secret_outputs_stay_secret(run_program: Any) -> None:
    async def check(namespace: dict[str, Any]) -> None:
        sync, config = namespace["sync"], namespace["config"]
        for secret in sync.secrets:
            assert await secret.value.is_secret()
        for value in (config.service_role_key, config.bubble_api_token, config.database.password):
            assert await value.is_secret()
        assert not await sync.cron_job_names.is_secret()
        assert await sync.function_secrets.secrets.is_secret()
        assert await config.supabase_access_token.is_secret()
        assert not await sync.edge_function.source_hash.is_secret()

    run_program(check=check)


def test_no_secret_in_any_plain_input_or_export(run_program: Any) -> None:
    program = run_program()

    def plain_strings(value: Any) -> Iterator[str]:
        if is_rpc_secret(value):
            return
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from plain_strings(v)
        elif isinstance(value, list | tuple):
            for v in value:
                yield from plain_strings(v)

    for name, inputs in program.inputs.items():
        for key, value in inputs.items():
            if key == "__provider":  # the pickled provider: always stored as a secret by the SDK
                assert is_rpc_secret(value)
                continue
            for text in plain_strings(value):
                for secret in (SERVICE_KEY, BUBBLE_TOKEN, DB_PASSWORD, ACCESS_TOKEN):
                    assert secret not in text, f"{name}.{key} holds a secret in plain text"


def test_modules_import_without_side_effects() -> None:
    """The dynamic-provider process imports these to unpickle providers: no engine, resources or output."""
    modules = ("bubble_sync", "sql.render", "sql.plan", "sql.catalogue", "config", "__main__")
    modules += ("render_sql", "sql_plan", "sql_catalogue")  # the old paths, which old pickles may name
    code = "; ".join(f"import components.{module}" for module in modules)
    result = subprocess.run([sys.executable, "-c", code], cwd=MAIN.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_exports(run_program: Any) -> None:
    program = run_program()
    sync = program.exports["sync"]
    config = program.exports["config"]
    assert config.project_ref == REF
    assert config.bubble_environment == "version-test"
    assert isinstance(sync.queue_table, pulumi.Output)
    assert isinstance(sync.edge_function_slug, pulumi.Output)


# -- destroy behaviour ---------------------------------------------------------------------------------------


def test_extensions_are_retained_on_destroy_by_default(run_program: Any) -> None:
    program = run_program()
    for registration in program.of_type(EXTENSION):
        assert registration.retain_on_delete is True, registration.name
    for registration in program.registrations.values():
        if registration.type != EXTENSION:
            assert not registration.retain_on_delete, registration.name


def test_extensions_are_dropped_when_the_flag_says_so(run_program: Any) -> None:
    program = run_program({"dropExtensionsOnDestroy": "true"})
    for registration in program.of_type(EXTENSION):
        assert registration.retain_on_delete is False, registration.name


def test_extensions_left_to_the_dashboard_are_checked_not_managed(run_program: Any) -> None:
    program = run_program({"manageExtensions": "false"})
    # Nothing of pulumi-postgresql is registered, so its plugin is not needed.
    assert program.of_type(EXTENSION) == [] and program.of_type(PROVIDER) == []
    checks = {r.name: r for r in program.of_type(SQL_OBJECT) if "requires" in r.name}
    assert sorted(checks) == ["bubble-sync-requires-pg-cron", "bubble-sync-requires-pg-net"]
    for name, check in checks.items():
        extension = name.removeprefix("bubble-sync-requires-").replace("-", "_")
        inputs = program.inputs[name]
        assert inputs["name"] == f"extension {extension}"
        assert f"e.extname = '{extension}'" in inputs["apply_sql"]
        assert f"is not enabled in this database', '{extension}'" in inputs["apply_sql"]
        assert "create extension" not in inputs["apply_sql"] and "drop" not in inputs["drop_sql"]
        assert check.parent == program.urn("bubble-sync")
    # Everything that needs them still waits for them: the queue, and every cron job.
    check_urns = {c.urn for c in checks.values()}
    assert check_urns <= set(program["bubble-sync-queue"].dependencies)
    for job in program.of_type(CRON):
        assert check_urns <= set(job.dependencies), job.name


def test_queue_is_kept_on_destroy_unless_the_flag_says_so(run_program: Any) -> None:
    assert run_program().inputs["bubble-sync-queue"]["drop_table_on_delete"] is False
    assert (
        run_program({"dropQueueOnDestroy": "true"}).inputs["bubble-sync-queue"]["drop_table_on_delete"]
        is True
    )


# -- dispatch mode -------------------------------------------------------------------------------------------


def test_no_dispatch_trigger_in_cron_mode(run_program: Any) -> None:
    program = run_program({"dispatchMode": "cron"})
    assert program.of_type(SQL_OBJECT) == []
    # the dispatch function still exists (harmless without its trigger); the jobs do not wait for a trigger
    assert "bubble-sync-fn-bubble_sync.dispatch_wake" in program.registrations


def test_dispatch_trigger_sql(run_program: Any) -> None:
    inputs = run_program().inputs["bubble-sync-dispatch-trigger"]
    assert "create or replace trigger bubble_sync_dispatch" in inputs["apply_sql"]
    assert inputs["drop_sql"] == "drop trigger if exists bubble_sync_dispatch on public.sync_queue"
    assert inputs["expected"].startswith(
        "CREATE TRIGGER bubble_sync_dispatch AFTER INSERT ON public.sync_queue"
    )


# -- invalid config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "plain", "key"),
    [
        ({"projectRef": "not-a-ref"}, (), "projectRef"),
        ({"processorSchedule": "every minute"}, (), "processorSchedule"),
        ({"serviceRoleKey": None}, (), "serviceRoleKey"),
        ({}, ("serviceRoleKey",), "serviceRoleKey"),
        ({"bubbleBaseUrl": "https://myapp.bubbleapps.io"}, (), "bubbleBaseUrl"),
        ({"batchSize": "5000"}, (), "batchSize"),
    ],
)
def test_invalid_config_is_rejected_before_any_resource(
    run_program: Any, overrides: dict[str, str | None], plain: tuple[str, ...], key: str
) -> None:
    with pytest.raises(ConfigError, match=rf"bubble-sync:{key}: ") as info:
        run_program(overrides, plain=plain)
    for secret in (SERVICE_KEY, BUBBLE_TOKEN, DB_PASSWORD):
        assert secret not in str(info.value)
    assert run_program.monitor.registrations == {}


# -- the Edge Function and its secrets -----------------------------------------------------------------------


def test_edge_function_inputs(run_program: Any) -> None:
    program = run_program()
    inputs = program.inputs["bubble-sync-edge-function"]
    assert {k: v for k, v in inputs.items() if k != "__provider"} == {
        "project_ref": REF,
        "slug": "bubble_sync",
        "source_dir": "supabase/functions/bubble_sync",
        "entrypoint": "index.ts",
        "verify_jwt": False,  # new sb_secret_ keys are not JWTs: the function checks callers itself
        # computed when the program runs, from the repository's function, so preview shows a change
        "source_hash": function_source_hash(FUNCTION_SOURCE_DIR, FUNCTION_ENTRYPOINT, MAIN.parent),
    }
    assert program["bubble-sync-edge-function"].additional_secret_outputs == []


def test_function_secrets_carry_the_function_contract_and_stay_secret(run_program: Any) -> None:
    program = run_program(
        {
            "batchSize": "120",
            "concurrency": "7",
            "leaseSeconds": "240",
            "httpTimeoutMs": "9000",
            "bubbleDataType": "signup",
            "bubbleExternalKeyField": "Supabase ID",
            "bubbleBulkCreate": "true",
            "bubbleRateLimitPerMinute": "15000",
            "bubbleSettleSeconds": "240",
            "bubbleBulkTimeoutSeconds": "90",
            "bubbleModifyUserCredentials": "true",
            "verifySample": "250",
        }
    )
    inputs = program.inputs["bubble-sync-function-secrets"]
    assert inputs["project_ref"] == REF
    secrets = inputs["secrets"]
    assert is_rpc_secret(secrets)  # the whole map, names and values
    assert program["bubble-sync-function-secrets"].additional_secret_outputs == ["secrets"]
    values = secrets["value"]
    assert set(values) == FUNCTION_ENV
    assert values == {
        "BUBBLE_BASE_URL": "https://myapp.bubbleapps.io/version-test/api/1.1",
        "BUBBLE_API_TOKEN": BUBBLE_TOKEN,
        "BUBBLE_DATA_TYPE": "signup",
        "BUBBLE_EXTERNAL_KEY_FIELD": "Supabase ID",
        "BUBBLE_SYNC_BATCH_SIZE": "120",
        "BUBBLE_SYNC_CONCURRENCY": "7",
        "BUBBLE_SYNC_LEASE_SECONDS": "240",
        "BUBBLE_SYNC_HTTP_TIMEOUT_MS": "9000",
        "BUBBLE_BULK_CREATE": "true",
        "BUBBLE_RATE_LIMIT_PER_MINUTE": "15000",
        "BUBBLE_SETTLE_SECONDS": "240",
        "BUBBLE_BULK_TIMEOUT_SECONDS": "90",
        "BUBBLE_MODIFY_USER_CREDENTIALS": "true",
        "BUBBLE_SYNC_VERIFY_SAMPLE": "250",
    }
    defaults = run_program().inputs["bubble-sync-function-secrets"]["secrets"]["value"]
    assert (defaults["BUBBLE_EXTERNAL_KEY_FIELD"], defaults["BUBBLE_BULK_CREATE"]) == ("supabase_id", "false")
    assert defaults["BUBBLE_SETTLE_SECONDS"] == "300"
    assert (defaults["BUBBLE_BULK_TIMEOUT_SECONDS"], defaults["BUBBLE_MODIFY_USER_CREDENTIALS"]) == (
        "240",
        "false",
    )


def test_the_access_token_is_in_no_input_and_no_pickled_provider(run_program: Any) -> None:
    program = run_program()

    def strings(value: Any) -> Iterator[str]:  # every string, secret-wrapped or not
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list | tuple):
            for v in value:
                yield from strings(v)

    for name, inputs in program.inputs.items():
        for key, value in inputs.items():
            texts = list(strings(value))
            if key == "__provider":
                texts = [base64.b64decode(t).decode("latin-1") for t in texts if len(t) > 100]
            assert not any(ACCESS_TOKEN in t for t in texts), f"{name}.{key}"


def test_deploy_edge_function_false_omits_the_function_and_needs_no_token(run_program: Any) -> None:
    program = run_program({"deployEdgeFunction": "false", "supabaseAccessToken": None})
    assert program.of_type(EDGE_FUNCTION) == []
    assert program.of_type(FUNCTION_SECRETS) == []
    assert len(program.registrations) == 2 + 2 + 1 + len(functions()) + 1 + 2 + len(CRON_JOBS)
    assert program.exports["sync"].edge_function is None


def test_a_missing_access_token_fails_naming_the_key(run_program: Any) -> None:
    with pytest.raises(ConfigError) as info:
        run_program({"supabaseAccessToken": None})
    message = str(info.value)
    assert "bubble-sync:supabaseAccessToken: " in message
    assert "SUPABASE_ACCESS_TOKEN" in message and "deployEdgeFunction" in message
    assert run_program.monitor.registrations == {}


def test_the_access_token_may_come_from_the_environment(
    run_program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_ACCESS_TOKEN", ACCESS_TOKEN)
    program = run_program({"supabaseAccessToken": None})
    assert [r.name for r in program.of_type(EDGE_FUNCTION)] == ["bubble-sync-edge-function"]

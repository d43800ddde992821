"""The resource classes under Pulumi mocks (type tokens, outputs, secrets), and what the engine stores of a
provider: the dill pickle in `__provider` must hold no credential and must load in a fresh process, as
the dynamic-provider process does."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import dill
import pulumi
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

from components.connection import ENV_VAR
from components.providers import (
    CronJob,
    CronJobArgs,
    CronJobProvider,
    QueueSchema,
    QueueSchemaArgs,
    QueueSchemaProvider,
    SqlFunction,
    SqlFunctionArgs,
    SqlFunctionProvider,
    SqlObject,
    SqlObjectArgs,
    SqlObjectProvider,
    VaultSecret,
    VaultSecretArgs,
    VaultSecretProvider,
)

PASSWORD = "pickle-must-not-hold-this-7f3a"
DSN = f"postgresql://postgres:{PASSWORD}@db.example.invalid:5432/postgres"
PROVIDERS = [
    CronJobProvider,
    QueueSchemaProvider,
    SqlFunctionProvider,
    SqlObjectProvider,
    VaultSecretProvider,
]
ROOT = Path(__file__).resolve().parent.parent
_SECRET_SIG = "4dabf18193072939515e22adb298388d"


class RecordingMocks(Mocks):
    def __init__(self) -> None:
        self.registered: dict[str, MockResourceArgs] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered[args.name] = args
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


@pytest.fixture
def mocks(monkeypatch: pytest.MonkeyPatch) -> RecordingMocks:
    # A connection in the environment of the program run must not end up in the state either.
    monkeypatch.setenv(ENV_VAR, DSN)
    m = RecordingMocks()
    pulumi.runtime.set_mocks(m, project="bubble-sync", stack="test", preview=False)
    return m


def build() -> dict[str, pulumi.CustomResource]:
    return {
        "fn": SqlFunction(
            "fn",
            SqlFunctionArgs(
                schema="public",
                name="f",
                identity_args="",
                definition="create or replace function public.f() returns int language sql"
                " set search_path = '' as $fn$ select 1 $fn$",
                execute_grants=["postgres"],
            ),
        ),
        "job": CronJob(
            "job", CronJobArgs(name="bubble-sync-processor", schedule="* * * * *", command="select 1")
        ),
        "secret": VaultSecret("secret", VaultSecretArgs(name="service_role_key", value="sb_secret_plain")),
        "queue": QueueSchema("queue", QueueSchemaArgs(ddl="select 1", columns={"id": "bigint"})),
        "trigger": SqlObject(
            "trigger",
            SqlObjectArgs(apply_sql="select 1", drop_sql="select 1", probe_sql="select 'x'", expected="x"),
        ),
    }


def after_registration(resources: dict[str, pulumi.CustomResource], check: Any) -> pulumi.Output[Any]:
    """Runs `check` once the mocks have seen every resource (registration is asynchronous)."""
    return pulumi.Output.all(*(r.urn for r in resources.values())).apply(lambda _: check())


@pulumi.runtime.test
def test_resource_types_and_outputs(mocks: RecordingMocks) -> Any:
    resources = build()
    # output-only properties exist as Outputs
    assert isinstance(resources["job"].jobid, pulumi.Output)  # type: ignore[attr-defined]
    assert isinstance(resources["fn"].owner, pulumi.Output)  # type: ignore[attr-defined]
    assert isinstance(resources["queue"].rls_enabled, pulumi.Output)  # type: ignore[attr-defined]

    def check() -> None:
        assert {name: args.typ for name, args in mocks.registered.items()} == {
            "fn": "pulumi-python:dynamic/bubblesync:SqlFunction",
            "job": "pulumi-python:dynamic/bubblesync:CronJob",
            "secret": "pulumi-python:dynamic/bubblesync:VaultSecret",
            "queue": "pulumi-python:dynamic/bubblesync:QueueSchema",
            "trigger": "pulumi-python:dynamic/bubblesync:SqlObject",
        }
        assert "jobid" not in mocks.registered["job"].inputs  # output-only: not sent as an input
        assert mocks.registered["trigger"].inputs["name"] == "trigger"  # defaults to the resource name

    def check_secret(args: list[Any]) -> None:
        value_is_secret, urn = args
        assert value_is_secret, f"{urn}: value must be secret"

    secret = resources["secret"]
    return pulumi.Output.all(
        after_registration(resources, check),
        pulumi.Output.all(secret.value.is_secret(), secret.urn).apply(check_secret),  # type: ignore[attr-defined]
    )


@pulumi.runtime.test
def test_secret_value_is_sent_as_a_secret_input_and_the_provider_holds_no_credential(
    mocks: RecordingMocks,
) -> Any:
    resources = build()

    def check() -> None:
        value = mocks.registered["secret"].inputs["value"]
        assert isinstance(value, dict) and value.get(_SECRET_SIG) and value.get("value") == "sb_secret_plain"
        for name, args in mocks.registered.items():
            provider = args.inputs["__provider"]
            serialized = provider["value"] if isinstance(provider, dict) else provider  # stored as a secret
            raw = base64.b64decode(serialized)
            assert PASSWORD.encode() not in raw, name
            assert b"db.example.invalid" not in raw, name
            assert type(dill.loads(raw)).__name__.endswith("Provider"), name

    return after_registration(resources, check)


@pytest.mark.parametrize("provider_class", PROVIDERS, ids=lambda c: c.__name__)
def test_a_configured_provider_pickles_without_its_connection(provider_class: type) -> None:
    provider = provider_class()
    provider.configure(ConfigureRequest(Config({"bubble-sync:databaseUrl": DSN}, "bubble-sync")))
    for raw in (dill.dumps(provider, recurse=True), base64.b64decode(serialize_provider(provider))):
        assert PASSWORD.encode() not in raw and b"db.example.invalid" not in raw
        clone = dill.loads(raw)
        assert type(clone) is provider_class
        assert clone._database_url is None
    assert provider._database_url == DSN  # pickling did not disturb the live object


def test_pickled_providers_load_in_a_fresh_process() -> None:
    """What the dynamic-provider process does: import by reference, unpickle, configure, call."""
    blobs = [serialize_provider(cls()) for cls in PROVIDERS]
    script = (
        "import base64, sys, dill\n"
        "from pulumi.dynamic import Config, ConfigureRequest\n"
        "for blob in sys.argv[1:]:\n"
        "    p = dill.loads(base64.b64decode(blob))\n"
        "    p.configure(ConfigureRequest(Config({}, 'bubble-sync')))\n"
        "    print(type(p).__module__, type(p).__name__, p.check({}, {}).failures is not None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *blobs], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:5] == [
        "components.providers.cron_job CronJobProvider True",
        "components.providers.queue_schema QueueSchemaProvider True",
        "components.providers.sql_function SqlFunctionProvider True",
        "components.providers.sql_object SqlObjectProvider True",
        "components.providers.vault_secret VaultSecretProvider True",
    ]


def test_importing_the_providers_has_no_side_effects() -> None:
    script = "import components, components.connection, components.providers; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")

"""FunctionSecrets against the Management API test double over real HTTP: the request bodies, read of our
names only (the API lists SHA-256 digests), drift (deleted, changed), updates that touch only what changed,
delete of our names only, limits, and no value or token in any message or pickle."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import dill
import httpx
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from components.providers import FunctionSecretsProvider, ManagementApiError
from components.providers.function_secrets import secret_digest
from tests.management_api_double import ManagementApiDouble, running_double

REF = "abcdefghijklmnopqrst"
TOKEN = "sbp_TOKEN_must_never_leak_77aa"
BUBBLE_TOKEN = "bubble-SECRET-value-91c2"
SECRETS = {
    "BUBBLE_API_TOKEN": BUBBLE_TOKEN,
    "BUBBLE_BASE_URL": "https://myapp.bubbleapps.io/version-test/api/1.1",
    "BUBBLE_SYNC_BATCH_SIZE": "50",
}


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManagementApiDouble]:
    for var in ("SUPABASE_ACCESS_TOKEN", "SUPABASE_MANAGEMENT_API_URL"):
        monkeypatch.delenv(var, raising=False)
    with running_double(TOKEN) as d:
        d.set_secret(REF, "OTHER_APP_KEY", "not ours")  # someone else's secret in the same project
        yield d


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def configured(double: ManagementApiDouble, **config: str) -> FunctionSecretsProvider:
    provider = FunctionSecretsProvider()
    values = {"managementApiUrl": double.url, "supabaseAccessToken": TOKEN, **config}
    provider.configure(
        ConfigureRequest(Config({f"bubble-sync:{k}": v for k, v in values.items()}, "bubble-sync"))
    )
    provider.sleep = Sleeps()  # type: ignore[method-assign]
    return provider


def inputs(secrets: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    return {"project_ref": REF, "secrets": dict(SECRETS if secrets is None else secrets), **overrides}


def outs(secrets: dict[str, str] | None = None) -> dict[str, Any]:
    values = dict(SECRETS if secrets is None else secrets)
    return {"project_ref": REF, "secrets": values, "names": sorted(values)}


def clean(provider: FunctionSecretsProvider, id_: str, state: dict[str, Any], news: dict[str, Any]) -> None:
    read = provider.read(id_, state)
    assert read.id == id_
    assert read.outs == {**news, "names": sorted(news["secrets"])}
    diff = provider.diff(read.id, read.outs, news)
    assert (diff.changes, diff.replaces) == (False, [])


def posted(double: ManagementApiDouble) -> list[list[dict[str, str]]]:
    return [e.json() for e in double.requests("POST", "/secrets$")]


# -- lifecycle -----------------------------------------------------------------------------------------------


def test_create_posts_the_array_and_read_reports_our_names_only(double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    assert (created.id, created.outs) == (REF, outs())

    [request] = double.requests("POST", "/secrets$")
    assert request.content_type == "application/json"
    assert request.json() == [{"name": name, "value": SECRETS[name]} for name in sorted(SECRETS)]
    assert request.status == 201
    assert double.our_secrets(REF) == {**SECRETS, "OTHER_APP_KEY": "not ours"}

    # The API lists digests, plus the platform's SUPABASE_* and other secrets: read keeps ours, as values.
    assert double.requests("GET", "/secrets$") == []  # create does not read
    clean(provider, created.id, created.outs, inputs())
    listed = double.requests("GET", "/secrets$")[0].response_json()
    assert {s["name"]: s["value"] for s in listed}["BUBBLE_API_TOKEN"] == secret_digest(BUBBLE_TOKEN)
    assert {"SUPABASE_URL", "OTHER_APP_KEY"} <= {s["name"] for s in listed}


def test_read_also_accepts_plain_values(double: ManagementApiDouble) -> None:
    """Should the API ever list values rather than digests, read still matches them."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/v1/projects/{REF}/secrets"
        return httpx.Response(200, json=[{"name": k, "value": v} for k, v in SECRETS.items()])

    provider = configured(double)
    provider.transport = httpx.MockTransport(handler)
    read = provider.read(REF, outs())
    assert read.outs == outs()


def test_secret_deleted_by_hand_is_detected_and_only_it_is_set_again(double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    double.remove_secret(REF, "BUBBLE_SYNC_BATCH_SIZE")

    read = provider.read(created.id, created.outs)
    assert "BUBBLE_SYNC_BATCH_SIZE" not in read.outs["secrets"]
    diff = provider.diff(read.id, read.outs, inputs())
    assert (diff.changes, diff.replaces) == (True, [])

    updated = provider.update(read.id, read.outs, inputs())
    assert posted(double)[-1] == [{"name": "BUBBLE_SYNC_BATCH_SIZE", "value": "50"}]
    assert updated.outs == outs()
    clean(provider, read.id, updated.outs, inputs())


def test_every_secret_deleted_by_hand_means_gone(double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    for name in SECRETS:
        double.remove_secret(REF, name)
    assert provider.read(created.id, created.outs).id == ""  # refresh drops it; `up` creates it again
    provider.create(inputs())
    assert double.our_secrets(REF) == {**SECRETS, "OTHER_APP_KEY": "not ours"}


def test_secret_changed_by_hand_is_detected_and_repaired(double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    double.set_secret(REF, "BUBBLE_API_TOKEN", "someone-elses-token")

    read = provider.read(created.id, created.outs)
    # the live digest, not our value: the change shows in the diff
    assert read.outs["secrets"]["BUBBLE_API_TOKEN"] == secret_digest("someone-elses-token")
    assert provider.diff(read.id, read.outs, inputs()).changes is True
    # a second refresh before `up` still shows it
    again = provider.read(read.id, read.outs)
    assert provider.diff(again.id, again.outs, inputs()).changes is True

    provider.update(again.id, again.outs, inputs())
    assert posted(double)[-1] == [{"name": "BUBBLE_API_TOKEN", "value": BUBBLE_TOKEN}]
    assert double.our_secrets(REF)["BUBBLE_API_TOKEN"] == BUBBLE_TOKEN
    clean(provider, REF, outs(), inputs())


def test_program_changes_update_only_what_changed(double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())

    news = inputs({**SECRETS, "BUBBLE_SYNC_BATCH_SIZE": "100", "BUBBLE_BULK_CREATE": "true"})
    del news["secrets"]["BUBBLE_BASE_URL"]
    assert provider.diff(created.id, created.outs, news).changes is True
    updated = provider.update(created.id, created.outs, news)

    [delete] = double.requests("DELETE", "/secrets$")
    assert delete.json() == ["BUBBLE_BASE_URL"]  # only the name the program dropped
    assert posted(double)[-1] == [
        {"name": "BUBBLE_BULK_CREATE", "value": "true"},
        {"name": "BUBBLE_SYNC_BATCH_SIZE", "value": "100"},
    ]
    assert updated.outs["names"] == ["BUBBLE_API_TOKEN", "BUBBLE_BULK_CREATE", "BUBBLE_SYNC_BATCH_SIZE"]
    assert "OTHER_APP_KEY" in double.our_secrets(REF)
    clean(provider, REF, updated.outs, news)

    before = len(double.exchanges)
    provider.update(REF, updated.outs, news)  # nothing changed: no request at all
    assert len(double.exchanges) == before


def test_another_project_is_a_replacement(double: ManagementApiDouble) -> None:
    diff = configured(double).diff(REF, outs(), inputs(project_ref="zyxwvutsrqponmlkjihg"))
    assert (diff.changes, diff.replaces, diff.delete_before_replace) == (True, ["project_ref"], False)
    assert configured(double).diff(REF, outs(), inputs({"BUBBLE_API_TOKEN": Unknown()})).changes is True


def test_delete_removes_only_our_names_and_twice_is_fine(double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)
    assert [e.json() for e in double.requests("DELETE", "/secrets$")] == [sorted(SECRETS)] * 2
    assert double.our_secrets(REF) == {"OTHER_APP_KEY": "not ours"}
    assert "SUPABASE_URL" in double.secrets[REF]


# -- check ---------------------------------------------------------------------------------------------------


def test_check_rejects_reserved_names_and_oversized_values_without_echoing_them() -> None:
    provider = FunctionSecretsProvider()
    assert provider.check({}, inputs()).failures == []
    assert provider.check({}, inputs({"BUBBLE_API_TOKEN": Unknown()})).failures == []
    assert provider.check({}, {"project_ref": REF, "secrets": Unknown()}).failures == []

    secret = "x" * 24_577
    result = provider.check(
        {},
        inputs(
            {
                "SUPABASE_URL": "https://evil.example",
                "OK_NAME": secret,
                "NOT_A_STRING": 5,
                "N" * 257: "v",
                "": "v",
            },
            project_ref="nope",
        ),
    )
    reasons = [f"{f.property}: {f.reason}" for f in result.failures]
    assert any("'SUPABASE_URL'" in r and "must not start with SUPABASE_" in r for r in reasons), reasons
    assert any("'OK_NAME'" in r and "longer than 24576" in r for r in reasons)
    assert any("'NOT_A_STRING'" in r and "must be a string" in r for r in reasons)
    assert any("at most 256 characters" in r for r in reasons)
    assert any("non-empty" in r for r in reasons)
    assert any(r.startswith("project_ref:") for r in reasons)
    assert all(secret not in r and "evil.example" not in r for r in reasons)
    assert provider.check({}, {"project_ref": REF, "secrets": ["A"]}).failures[0].property == "secrets"


# -- limits and errors ---------------------------------------------------------------------------------------


def test_429_waits_for_retry_after_and_succeeds(double: ManagementApiDouble) -> None:
    provider = configured(double)
    double.fail_next(429, {"message": "Too many requests"}, headers={"Retry-After": "12"}, method="POST")
    provider.create(inputs())
    assert provider.sleep == [12.0]
    assert [e.status for e in double.requests("POST", "/secrets$")] == [429, 201]


def test_403_names_the_scope(double: ManagementApiDouble) -> None:
    double.grant(TOKEN, set())
    with pytest.raises(ManagementApiError) as info:
        configured(double).create(inputs())
    assert info.value.status == 403 and "secrets:write" in str(info.value)
    with pytest.raises(ManagementApiError, match="secrets:read"):
        configured(double).read(REF, outs())


def test_401_and_server_errors_never_show_a_value_or_the_token(double: ManagementApiDouble) -> None:
    with pytest.raises(ManagementApiError) as info:
        configured(double, supabaseAccessToken="sbp_wrong_TOKEN").create(inputs())
    assert info.value.status == 401 and "invalid, expired or revoked" in str(info.value)
    assert "sbp_wrong_TOKEN" not in str(info.value)

    echo = f"Failed to create project's secrets: {BUBBLE_TOKEN} / {TOKEN}"
    for method in ("POST", "GET", "DELETE"):
        double.fail_next(500, {"message": echo}, method=method)
    provider = configured(double)
    for call in (
        lambda: provider.create(inputs()),
        lambda: provider.read(REF, outs()),
        lambda: provider.delete(REF, outs()),
    ):
        with pytest.raises(ManagementApiError) as info:
            call()
        message = str(info.value)
        assert "Failed to create project's secrets: [redacted] / [redacted]" in message
        assert BUBBLE_TOKEN not in message and TOKEN not in message


# -- what the state holds ------------------------------------------------------------------------------------


def test_the_pickled_provider_holds_no_token(
    double: ManagementApiDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_ACCESS_TOKEN", TOKEN)
    provider = configured(double)
    provider.create(inputs())
    for raw in (dill.dumps(provider, recurse=True), base64.b64decode(serialize_provider(provider))):
        assert TOKEN.encode() not in raw and BUBBLE_TOKEN.encode() not in raw
        assert double.url.encode() not in raw
        clone = dill.loads(raw)
        assert type(clone) is FunctionSecretsProvider and clone._token is None

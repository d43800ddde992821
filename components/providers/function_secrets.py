"""Edge Function secrets (the environment the project's functions read with `Deno.env.get`), set through the
Supabase Management API: one resource owns a set of names in one project.

create/update: `POST /v1/projects/{ref}/secrets` with `[{"name", "value"}, ...]` (an upsert; 201); read:
`GET .../secrets`; delete: `DELETE .../secrets` with the JSON array of this resource's names, never any
other secret of the project. Functions see new values without a redeploy (supabase-facts §4.3).

What `GET` returns as `value`: the spec (`SecretResponse`) only says it is a string. It is not the value:
it is the hex SHA-256 digest of the value -- the CLI prints that column as `DIGEST` (`supabase secrets
list`, supabase/cli `internal/secrets/list`), and Supabase's Terraform provider compares it with
`sha256(value)` to find drift (supabase/terraform-provider-supabase, `edge_function_secrets_resource.go`,
"API returns SHA-256 digest of secret values"). `read` therefore accepts a live value that equals the
desired value or its SHA-256 hex digest, and otherwise reports the live string (a digest) under that name,
so `diff` shows the change. Drift repaired by `update`: a secret deleted or changed by hand.

Names must not start with `SUPABASE_` (the API refuses them; the platform sets those itself): `check`
rejects such a name, naming it. Values are secret inputs and listed in `additional_secret_outputs`; no
error message contains one (they are masked in anything the server says, too).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.providers._base import changed, is_unknown
from components.providers.management_api import ManagementApiProvider

__all__ = ["FunctionSecrets", "FunctionSecretsArgs", "FunctionSecretsProvider", "secret_digest"]

RESERVED_PREFIX = "SUPABASE_"
MAX_NAME_LENGTH = 256
MAX_VALUE_LENGTH = 24_576  # 48 KiB per the limits page; the spec's maxLength
MAX_SECRETS = 100  # per project
_PROJECT_REF = re.compile(r"^[a-z]{20}$")


def secret_digest(value: str) -> str:
    """What the Management API lists as a secret's `value`: the hex SHA-256 of the value."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class FunctionSecretsArgs:
    """`project_ref`: the project; `secrets`: name -> value (pass secret Outputs for secret values; the
    whole map is kept secret in the state)."""

    project_ref: pulumi.Input[str]
    secrets: pulumi.Input[Mapping[str, pulumi.Input[str]]]


class FunctionSecretsProvider(ManagementApiProvider):
    kind = "function secrets"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        ref = news.get("project_ref")
        if not is_unknown(ref) and not (isinstance(ref, str) and _PROJECT_REF.match(ref)):
            failures.append(CheckFailure("project_ref", f"must be 20 lowercase letters, got {ref!r}"))
        secrets = news.get("secrets")
        if isinstance(secrets, Mapping):
            if len(secrets) > MAX_SECRETS:
                failures.append(CheckFailure("secrets", f"at most {MAX_SECRETS} secrets per project"))
            for name, value in secrets.items():
                failures.extend(_check_secret(name, value))
        elif not is_unknown(secrets):
            failures.append(CheckFailure("secrets", "must be a map of secret name to value"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._set(props["project_ref"], dict(props["secrets"]))
        return CreateResult(id_=props["project_ref"], outs=_outs(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        ref = props["project_ref"]
        desired: dict[str, str] = dict(props.get("secrets") or {})
        with self.api(ref, masked=desired.values()) as api:
            response = api.call(
                "GET", f"/v1/projects/{ref}/secrets", action="read", scope="secrets:read", ok=(200,)
            )
        assert response is not None
        listed = response.json()
        if not isinstance(listed, list):
            raise self.fail(
                ref, f"read failed: expected a JSON array of secrets, got {type(listed).__name__}"
            )
        live = {s["name"]: s.get("value", "") for s in listed if isinstance(s, Mapping) and "name" in s}
        found: dict[str, str] = {}
        for name, value in desired.items():
            if name not in live:
                continue  # deleted by hand: missing from the outputs, so diff sees it
            remote = live[name]
            found[name] = value if remote in (value, secret_digest(value)) else remote
        if desired and not found:
            return ReadResult(id_="", outs={})  # every one of our secrets is gone
        return ReadResult(id_=id_ or ref, outs={**_outs(props), "secrets": found})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = changed(olds, news, ("project_ref",))
        changes = bool(replaces) or bool(changed(olds, news, ("secrets",)))
        # A new project gets its secrets before the old project loses them.
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        ref = news["project_ref"]
        old: dict[str, str] = dict(olds.get("secrets") or {})
        new: dict[str, str] = dict(news["secrets"])
        stale = sorted(set(old) - set(new))
        if stale:
            self._unset(ref, stale, masked=[*old.values(), *new.values()])
        self._set(ref, {name: value for name, value in new.items() if old.get(name) != value})
        return UpdateResult(outs=_outs(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        secrets = dict(props.get("secrets") or {})
        if secrets:
            self._unset(props["project_ref"], sorted(secrets), masked=secrets.values())

    def _set(self, ref: str, secrets: Mapping[str, str]) -> None:
        if not secrets:
            return
        body = [{"name": name, "value": secrets[name]} for name in sorted(secrets)]
        with self.api(ref, masked=secrets.values()) as api:
            api.call(
                "POST",
                f"/v1/projects/{ref}/secrets",
                action=f"set {', '.join(sorted(secrets))}",
                scope="secrets:write",
                ok=(200, 201),
                json=body,
            )

    def _unset(self, ref: str, names: list[str], *, masked: Any) -> None:
        with self.api(ref, masked=list(masked)) as api:
            api.call(
                "DELETE",
                f"/v1/projects/{ref}/secrets",
                action=f"delete {', '.join(names)}",
                scope="secrets:write",
                ok=(200, 204),
                missing_ok=True,
                json=names,
            )


def _check_secret(name: Any, value: Any) -> list[CheckFailure]:
    failures = []
    if not isinstance(name, str) or not name.strip():
        failures.append(CheckFailure("secrets", f"secret names must be non-empty strings, got {name!r}"))
        return failures
    if name.startswith(RESERVED_PREFIX):
        failures.append(
            CheckFailure(
                "secrets",
                f"secret {name!r}: names must not start with {RESERVED_PREFIX} (reserved for the platform's "
                f"own variables; the Management API refuses them)",
            )
        )
    if len(name) > MAX_NAME_LENGTH:
        failures.append(
            CheckFailure(
                "secrets", f"secret {name[:40]!r}...: names are at most {MAX_NAME_LENGTH} characters"
            )
        )
    if is_unknown(value):
        return failures
    if not isinstance(value, str):
        failures.append(
            CheckFailure("secrets", f"secret {name!r}: the value must be a string")
        )  # never echo it
    elif len(value) > MAX_VALUE_LENGTH:
        failures.append(
            CheckFailure(
                "secrets", f"secret {name!r}: the value is longer than {MAX_VALUE_LENGTH} characters"
            )
        )
    return failures


def _outs(props: Mapping[str, Any]) -> dict[str, Any]:
    secrets = dict(props.get("secrets") or {})
    return {"project_ref": props["project_ref"], "secrets": secrets, "names": sorted(secrets)}


class FunctionSecrets(Resource, module="bubblesync", name="FunctionSecrets"):
    """A set of Edge Function secrets of one project; id = the project ref. `secrets` stays secret."""

    project_ref: pulumi.Output[str]
    secrets: pulumi.Output[dict[str, str]]
    names: pulumi.Output[list[str]]

    def __init__(
        self, resource_name: str, args: FunctionSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "project_ref": args.project_ref,
            # Secret in the state whatever the caller passed: the input wrapped, the output listed.
            "secrets": pulumi.Output.secret(args.secrets),
            "names": None,  # an output: the managed names, readable in `pulumi stack`
        }
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["secrets"])
        )
        super().__init__(FunctionSecretsProvider(), resource_name, props, opts)

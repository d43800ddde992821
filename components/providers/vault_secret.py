"""A named Supabase Vault secret, kept by name: created once, then updated in place.

Vault names are unique (a partial unique index), so a second `vault.create_secret` with the same name
fails: `create` looks the name up and calls `vault.update_secret` when it exists (adopting a secret made
by hand or by the seed's SQL). The id is the secret's uuid; every operation goes by name.

The value is a secret input, so the engine keeps the same-named output secret in the state; the resource
also lists it in `additional_secret_outputs`. It never appears in an error message: database errors are
re-raised with the value masked and without statement parameters. Drift repaired by `update`: the secret
deleted, its value (or description) changed.

A secret that was already in Vault when the stack first stored it (the seed's setup created both of ours
by hand) is recorded as `adopted` and left in Vault on destroy: other jobs of the user's may read it.
Destroy deletes only the secrets the stack created.
"""

from __future__ import annotations

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

from components.providers._base import PostgresProvider, changed, inputs_of, is_unknown

__all__ = ["VaultSecret", "VaultSecretArgs", "VaultSecretProvider"]

INPUT_KEYS = ("name", "value", "description")
COMPARED_KEYS = ("value", "description")


@dataclass
class VaultSecretArgs:
    """`name`: the Vault name (unique); `value`: the secret (pass a secret Output); `description`: text."""

    name: pulumi.Input[str]
    value: pulumi.Input[str]
    description: pulumi.Input[str] = ""


class VaultSecretProvider(PostgresProvider):
    kind = "Vault secret"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {**news, "description": news.get("description", "")}
        failures = []
        name = inputs.get("name")
        if not is_unknown(name) and (not isinstance(name, str) or not name.strip()):
            failures.append(CheckFailure("name", "name must be a non-empty string"))
        value = inputs.get("value")
        if not is_unknown(value) and (not isinstance(value, str) or not value):
            failures.append(CheckFailure("value", "value must be a non-empty string"))  # never echo it
        if not is_unknown(inputs["description"]) and not isinstance(inputs["description"], str):
            failures.append(CheckFailure("description", "description must be a string"))
        return CheckResult(inputs, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        secret_id, existed = self._upsert(props)
        return CreateResult(id_=secret_id, outs={**_outs(props), "adopted": existed})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        name = props["name"]
        with self.session(repr(name), "read", secrets=_secrets(props)) as conn:
            row = conn.execute(
                "select id::text, decrypted_secret, description from vault.decrypted_secrets where name = %s",
                (name,),
            ).fetchone()
        if row is None:
            return ReadResult(id_="", outs={})
        secret_id, value, description = row
        live = {"value": value, "description": description, "adopted": bool(props.get("adopted", False))}
        return ReadResult(id_=secret_id, outs={**inputs_of(props, INPUT_KEYS), **live})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Two names can coexist: a rename stores the new secret before deleting the old one.
        replaces = changed(olds, news, ("name",))
        news = {**news, "description": news.get("description", "")}
        changes = bool(replaces) or bool(changed(olds, news, COMPARED_KEYS))
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._upsert(news)  # by name, so a secret deleted since the last refresh comes back
        return UpdateResult(outs={**_outs(news), "adopted": bool(olds.get("adopted", False))})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("adopted"):
            return  # it was there before the stack: leave it for whoever else reads it
        name = props["name"]
        with self.session(repr(name), "delete", transaction=True, secrets=_secrets(props)) as conn:
            conn.execute("delete from vault.secrets where name = %s", (name,))

    def _upsert(self, props: Mapping[str, Any]) -> tuple[str, bool]:
        """Stores the value by name; returns the secret's id and whether it existed already."""
        name = props["name"]
        description = props.get("description", "")
        with self.session(repr(name), "store", transaction=True, secrets=_secrets(props)) as conn:
            row = conn.execute("select id from vault.secrets where name = %s", (name,)).fetchone()
            if row is not None:
                conn.execute(
                    "select vault.update_secret(%s, new_secret := %s, new_description := %s)",
                    (row[0], props["value"], description),
                )
                return str(row[0]), True
            created = conn.execute(
                "select vault.create_secret(%s, %s, %s)", (props["value"], name, description)
            ).fetchone()
            assert created is not None
            return str(created[0]), False


def _outs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {**inputs_of(props, INPUT_KEYS), "description": props.get("description", "")}


def _secrets(props: Mapping[str, Any]) -> list[str]:
    value = props.get("value")
    return [value] if isinstance(value, str) and value else []


class VaultSecret(Resource, module="bubblesync", name="VaultSecret"):
    """A Vault secret stored by name; id = its uuid. `value` stays secret in the state."""

    name: pulumi.Output[str]
    value: pulumi.Output[str]
    description: pulumi.Output[str]
    adopted: pulumi.Output[bool]

    def __init__(
        self, resource_name: str, args: VaultSecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Secret in the state even if a caller passes a plain string: the input wrapped, the output listed.
        props: dict[str, Any] = {
            "name": args.name,
            "value": pulumi.Output.secret(args.value),
            "description": args.description,
            "adopted": None,  # an output: whether the secret was in Vault before the stack
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["value"]))
        super().__init__(VaultSecretProvider(), resource_name, props, opts)

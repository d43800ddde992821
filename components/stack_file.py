"""Reading a `Pulumi.<stack>.yaml` without the Pulumi CLI: the one reader of our keys in a stack file, for
`render-sql`, the operator commands, the devstack and the benchmark.

Encrypted (`secure:`) values cannot be read without the stack's secrets provider; they stay mappings here, and
a secret key stored in plain text, or an unknown key in our namespace, is an error. A structured value (the
`mappings` list) is handed to the config as the file holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from components.config import KEYS, PROJECT, ConfigError, ConfigProblem, StackConfig, load_config
from components.config_problem import did_you_mean

__all__ = ["is_encrypted", "load_stack_config", "read_stack_values"]


def read_stack_values(stack_file: Path) -> dict[str, object]:
    """Our keys (bare) and their values as the file holds them; a `secure:` value stays a mapping. An unknown
    key of our namespace is an error that suggests the known key it resembles."""
    document = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    raw = document.get("config") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError([ConfigProblem("config", f"{stack_file.name}: `config:` must be a mapping")])
    values: dict[str, object] = {}
    for full_key, value in raw.items():
        namespace, _, key = str(full_key).rpartition(":")
        if namespace in ("", PROJECT):
            values[key] = value
    known = {spec.name for spec in KEYS}
    unknown = [
        ConfigProblem(key, f"unknown key in {stack_file.name}" + did_you_mean(key, known))
        for key in values
        if key not in known
    ]
    if unknown:
        raise ConfigError(unknown)
    return values


def is_encrypted(value: object) -> bool:
    """Whether a stack file value is a `secure:` one."""
    return isinstance(value, Mapping) and "secure" in value


def load_stack_config(
    stack_file: Path,
    *,
    overrides: Mapping[str, object] | None = None,
    secret_overrides: Mapping[str, str] | None = None,
) -> StackConfig:
    """The SQL-relevant config of a stack file, validated (secrets are not needed: the SQL script takes them
    as psql variables).

    `overrides` and `secret_overrides` (bare keys) are set on top, as `pulumi config set` and `pulumi config
    set --secret` would; a secret override's value is readable (the devstack knows its own keys)."""
    values = read_stack_values(stack_file)
    secrets = dict(secret_overrides or {})
    known = {spec.name for spec in KEYS}
    unknown = sorted((set(overrides or {}) | set(secrets)) - known)
    if unknown:
        raise ConfigError([ConfigProblem(key, "unknown key" + did_you_mean(key, known)) for key in unknown])
    values.update(overrides or {})
    values.update(secrets)

    def is_secret(key: str) -> bool:
        value = values.get(key)
        return key in secrets or is_encrypted(value) or _holds_encrypted(value)

    def get(key: str) -> object:
        if key in secrets:
            return secrets[key]
        value = values.get(key)
        if value is None or is_encrypted(value):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, Mapping)):
            return value  # structured config, parsed by its own validation (components/mapping_config.py)
        return str(value)

    return load_config(get, is_secret=is_secret, for_sql=True, env={})


def _holds_encrypted(value: object) -> bool:
    """Whether a structured value holds a `secure:` one somewhere inside (`pulumi config set --secret --path
    'mappings[0].onDelete.set.Token' ...` encrypts one element): a map whose only key is `secure`."""
    if isinstance(value, Mapping):
        return set(value) == {"secure"} or any(_holds_encrypted(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_encrypted(v) for v in value)
    return False

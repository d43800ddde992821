"""`./dev up --config-file FILE`: the `config:` blocks of stack files, merged into values to set on the
`local` stack, as `pulumi config set` (`set --path` for a structured value: `bubble-sync:mappings`) would.

Each file is read by the one reader of our keys in a stack file (components/stack_file.py): keys of other
namespaces are left alone, an unknown key of ours is an error with its did-you-mean. Later files win, key by
key: a `mappings` list replaces an earlier one whole, as a later `pulumi config set` would. On top of that:

* an encrypted (`secure:`) value is refused: it is encrypted with another stack's secrets provider, which the
  devstack cannot decrypt (a secret is given with `--config KEY=VALUE` instead);
* a key that says where the database, the function host, the Management API or Bubble are is refused: the
  devstack sets those to its own parts, and a real stack's value would point the local stack elsewhere;
* the merged values are validated on top of Pulumi.local.yaml, each problem naming the file that set it.

Scalars become the text `pulumi config set` takes (`true`, `7`); lists and maps stay structured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.config import ConfigError, ConfigProblem
from components.config_keys import PROJECT
from components.stack_file import load_stack_config, read_stack_values

__all__ = ["DEVSTACK_OWN_KEYS", "ConfigFileError", "ConfigFiles", "read_config_files"]

#: keys the devstack sets from what it started (or must keep to work at all): not taken from a file
DEVSTACK_OWN_KEYS = frozenset({
    "databaseUrl", "dbHost", "dbPort", "dbUser", "dbPassword", "dbName", "dbSslMode",
    "supabaseUrl", "serviceRoleKey", "supabaseAccessToken", "managementApiUrl", "deployEdgeFunction",
    "manageExtensions", "bubbleBaseUrl", "bubbleApiToken",
})  # fmt: skip


class ConfigFileError(ValueError):
    """A config file cannot be used; the message names the file and each key at fault."""


@dataclass
class ConfigFiles:
    """The merged values (bare keys), and for each key the file whose value won."""

    values: dict[str, object] = field(default_factory=dict)
    origin: dict[str, Path] = field(default_factory=dict)


def read_config_files(paths: Sequence[Path], *, base: Path) -> ConfigFiles:
    """The merged `config:` blocks of `paths` (later files win), validated on top of the stack file `base`;
    raises ConfigFileError listing every problem of every file."""
    merged = ConfigFiles()
    problems: list[str] = []
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            problems.append(f"{path}: no such file")
            continue
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot be read as YAML: {_first_line(exc)}")
            continue
        if not isinstance(document, Mapping) or not isinstance(document.get("config") or {}, Mapping):
            problems.append(f"{path}: not a stack file (a mapping with a `config:` mapping)")
            continue
        try:
            values = read_stack_values(path)
        except ConfigError as exc:  # unknown keys of ours; the others are still looked at below
            problems += [f"{path}: {problem}" for problem in exc.problems]
            values = _our_values(document)
        if not values:
            # a file of bare `bubble-sync:...` keys, without the `config:` block a stack file holds them in
            problems.append(f"{path}: its `config:` block sets no {PROJECT} key")
            continue
        for key, value in values.items():
            problem = _refusal(key, value)
            if problem:
                problems.append(f"{path}: {PROJECT}:{key}: {problem}")
                continue
            merged.values[key] = _as_config_value(value)
            merged.origin[key] = path
    if not problems:
        problems = _validation_problems(merged, base)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigFileError(f"--config-file: {len(problems)} {noun}:\n{lines}")
    return merged


def _our_values(document: Mapping[str, object]) -> dict[str, object]:
    """The keys of our namespace in a stack file's `config:` block (bare), as read_stack_values takes them."""
    config = document.get("config") or {}
    assert isinstance(config, Mapping)
    ours = {}
    for full_key, value in config.items():
        namespace, _, key = str(full_key).rpartition(":")
        if namespace in ("", PROJECT):
            ours[key] = value
    return ours


def _refusal(key: str, value: object) -> str | None:
    """Why the devstack does not take this key's value from a file; None when it does."""
    if key in DEVSTACK_OWN_KEYS:
        hint = " (a real Bubble app: ./dev up --bubble-url URL)" if key.startswith("bubble") else ""
        return (
            "is the devstack's own: it points the stack at the devstack's database, function host and Bubble"
            f" double; leave it out of the file{hint}"
        )
    if _is_encrypted(value):
        where = "is encrypted (secure:)" if _is_secure(value) else "holds an encrypted (secure:) value"
        fix = f"give it as --config {key}=VALUE" if _is_secure(value) else "write that value in plain text"
        return (
            f"{where} with another stack's secrets provider, which the devstack cannot decrypt: leave it out"
            f" of the file, or {fix}"
        )
    if value is None:
        return "has no value: give one, or leave the key out"
    return None


def _is_secure(value: object) -> bool:
    """A `secure:` value: a map whose only key is `secure`."""
    return isinstance(value, Mapping) and set(value) == {"secure"}


def _is_encrypted(value: object) -> bool:
    """A `secure:` value, or a structured one holding one (`pulumi config set --secret --path` encrypts one
    element)."""
    if _is_secure(value):
        return True
    if isinstance(value, Mapping):
        return any(_is_encrypted(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_encrypted(v) for v in value)
    return False


def _as_config_value(value: object) -> object:
    """What `pulumi config set` stores for a scalar (text; YAML's booleans as `true`/`false`); a list or map
    as it is (set as structured config)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, Mapping)):
        return value
    return str(value)


def _validation_problems(merged: ConfigFiles, base: Path) -> list[str]:
    """Every problem of the merged values on top of `base`, each prefixed with the file that set its key."""
    try:
        load_stack_config(base, overrides=merged.values)
    except ConfigError as exc:
        return [_attributed(problem, merged.origin) for problem in exc.problems]
    return []


def _attributed(problem: ConfigProblem, origin: Mapping[str, Path]) -> str:
    # `mappings[0].fields.x` was set by whichever file set `mappings`
    match = re.match(r"[A-Za-z0-9_]+", problem.key)
    path = origin.get(match.group(0)) if match else None
    return f"{path}: {problem}" if path else str(problem)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in lines[:3]) if lines else type(exc).__name__

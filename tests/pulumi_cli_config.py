"""The Pulumi CLI's stack-config validation, as the CLI applies it before a program runs.

A port of the rules in pulumi/pulumi `pkg/workspace/config.go` (`mergeConfig`,
`validateStackConfigValues`, `validateStackConfigValue`) and `sdk/go/common/workspace/project.go`
(`ValidateConfigValue`), v3.260.0, so a test can check `Pulumi.yaml` against stack files without the CLI:

1. every project-namespace key declared in `Pulumi.yaml` with neither a stack value nor a `default`/`value`
   is missing; all missing keys are reported in one error;
2. a declared key missing from the stack gets its default *as a plain value*;
3. then, key by key in sorted order, the first failure wins: a `secret: true` key whose value is not
   encrypted, then a value that does not match the declared type (a structured value, YAML lists and maps
   in the stack file, is checked as its JSON: an `array` element by element against its `items` type).

The real CLI runs the same checks in tests/test_pulumi_engine.py; this port lets the fast suite cover every
stack file and the README's flows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["StackValue", "stack_values_from_file", "validate_stack_config"]


@dataclass(frozen=True)
class StackValue:
    """A stack config value as the CLI holds it: its text, whether it is stored `secure:`, and whether it is
    structured (`object`: the text is JSON, as config.Value.Object())."""

    text: str
    secure: bool = False
    object: bool = False


def stack_values_from_file(data: Mapping[str, Any] | None) -> dict[str, StackValue]:
    """The `config:` map of a parsed `Pulumi.<stack>.yaml`, with namespaced keys."""
    values: dict[str, StackValue] = {}
    for key, raw in ((data or {}).get("config") or {}).items():
        if isinstance(raw, Mapping) and set(raw) == {"secure"}:
            values[key] = StackValue("<encrypted>", secure=True)
        elif isinstance(raw, (Mapping, list)):
            # config.Value's YAML reading: a list or a map is a structured value, any scalar its text
            values[key] = StackValue(json.dumps(raw), object=True)
        else:
            values[key] = StackValue(_as_text(raw))
    return values


def validate_stack_config(
    stack: str, project: Mapping[str, Any], values: Mapping[str, StackValue]
) -> str | None:
    """The error the CLI would print for this stack, or None when it would run the program."""
    namespace = project["name"]
    schema: Mapping[str, Mapping[str, Any]] = project.get("config") or {}
    merged = dict(values)
    missing = []
    for name in sorted(schema):
        declared = schema[name]
        key = name if ":" in name else f"{namespace}:{name}"
        if key in merged:
            continue
        has_default = "default" in declared or "value" in declared
        if not has_default and key.split(":", 1)[0] == namespace:
            missing.append(name)
        elif has_default:
            default = declared.get("default", declared.get("value"))
            merged[key] = _default_value(default)
    if missing:
        noun = "value" if len(missing) == 1 else "values"
        return f"Stack '{stack}' is missing configuration {noun} {_join(missing)}"
    for name in sorted(schema):
        declared = schema[name]
        if "type" not in declared:  # only explicitly typed keys are validated
            continue
        key = name if ":" in name else f"{namespace}:{name}"
        value = merged[key]
        if declared.get("secret") and not value.secure:
            return f"Stack '{stack}' with configuration key '{name}' must be encrypted as it's secret"
        if value.secure:
            continue
        content = json.loads(value.text) if value.object else value.text
        if not _matches_type(declared["type"], declared.get("items"), content):
            full_type = _full_type_name(declared["type"], declared.get("items"))
            return f"Stack '{stack}' with configuration key '{name}' must be of type '{full_type}'"
    return None


def _matches_type(type_name: str, items: Mapping[str, Any] | None, content: Any) -> bool:
    """ValidateConfigValue: a scalar stack value reaches it as its text, a structured one as its JSON."""
    if type_name == "string":
        return isinstance(content, str)
    if type_name == "integer":
        # strconv.Atoi for text; a JSON number (a float64 in Go) when it is whole
        if isinstance(content, str):
            return re.fullmatch(r"[+-]?[0-9]+", content) is not None
        if isinstance(content, bool):
            return False
        return isinstance(content, int) or (isinstance(content, float) and math.trunc(content) == content)
    if type_name == "boolean":
        return content in ("true", "false") or isinstance(content, bool)
    if type_name == "object":
        return isinstance(content, dict)
    if not isinstance(content, list) or items is None:
        return False
    return all(_matches_type(items["type"], items.get("items"), item) for item in content)


def _full_type_name(type_name: str, items: Mapping[str, Any] | None) -> str:
    """InferFullTypeName: `array<object>`."""
    if items is None:
        return type_name
    return f"array<{_full_type_name(items['type'], items.get('items'))}>"


def _default_value(raw: Any) -> StackValue:
    """createConfigValue, for a project default: a string, integer or boolean becomes its text, anything else
    (a list, a map, a float) a structured value holding its JSON."""
    if raw is None or isinstance(raw, (str, int)):
        return StackValue(_as_text(raw))
    return StackValue(json.dumps(raw), object=True)


def _as_text(raw: Any) -> str:
    """A YAML scalar as the CLI stores it: booleans as true/false, numbers in their decimal form."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return "" if raw is None else str(raw)


def _join(keys: list[str]) -> str:
    if len(keys) == 1:
        return f"'{keys[0]}'"
    quoted = [f"'{k}'" for k in sorted(keys)]
    return ", ".join(quoted[:-2] + [f"{quoted[-2]} and {quoted[-1]}"])

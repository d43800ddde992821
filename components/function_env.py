"""The bubble_sync Edge Function's own settings, from the one table of stack config keys (`config.KEYS`: the
keys with an `env`).

* `function_env(config)`: the function's environment for a stack, the same wherever the function runs: as
  its secrets on Supabase (the Pulumi component), in the devstack's function host, in the benchmark and the
  tests (which may override single values). A stack with `mappings` adds `BUBBLE_SYNC_MAPPINGS`, the
  mappings as JSON (components/mappings.py, `mappings_json`: each mapping's definition, in config order); a
  stack without them gets no such variable, so its environment is exactly what it was before mappings
  existed and upgrading changes none of its function's secrets.
* `settings_ts()`: `supabase/functions/bubble_sync/settings.ts`, generated, so the function's defaults are the
  stack config's (`python -m components function-settings > supabase/functions/bubble_sync/settings.ts`;
  tests/test_function_env.py fails when the file is out of date).

Pure Python: nothing happens at import.
"""

from __future__ import annotations

import json
from pathlib import Path

from components.config import KEYS, REQUESTS_PER_ROW_MAX, KeySpec, Secret, StackConfig
from components.mappings import mappings_json

__all__ = ["FUNCTION_KEYS", "MAPPINGS_ENV", "SETTINGS_FILE", "function_env", "settings_ts"]

#: the stack config keys the function reads, in table order
FUNCTION_KEYS: tuple[KeySpec, ...] = tuple(spec for spec in KEYS if spec.env)
SETTINGS_FILE = Path(__file__).resolve().parents[1] / "supabase" / "functions" / "bubble_sync" / "settings.ts"
#: the variable carrying the stack's mappings; set only when there are some
MAPPINGS_ENV = "BUBBLE_SYNC_MAPPINGS"


def function_env(config: StackConfig) -> dict[str, Secret]:
    """Variable -> value for every function setting, and the mappings when the stack has any. Secret keys keep
    the form the config holds them in (a secret Output inside a Pulumi program); needs a config with the
    Bubble URL and token (not `for_sql`)."""
    env: dict[str, Secret] = {}
    for spec in FUNCTION_KEYS:
        value = config.value_of(spec.name)
        if value is None:
            raise ValueError(f"the function's settings need {spec.name}; this config has none (for_sql?)")
        assert spec.env is not None
        env[spec.env] = _text(value)
    if config.mappings:
        env[MAPPINGS_ENV] = mappings_json(config.mappings)
    return env


def settings_ts() -> str:
    """The TypeScript module of the function's settings: each variable's stack config key, its default, and
    the least value the function can work with (the stack config's range is checked before a deploy)."""
    lines = [
        "// Generated from the stack config keys (components/config.py KEYS) by",
        "// `python -m components function-settings`; do not edit. tests/test_function_env.py fails when it",
        "// differs from what that command prints.",
        "",
        "/** Each setting: its stack config key, the default the stack config gives it, and for a number",
        " * the least value the function can work with (deploys check the stack config's narrower range). */",
        "export const SETTINGS = {",
    ]
    for spec in FUNCTION_KEYS:
        fields = [f"key: {json.dumps(spec.name)}"]
        if spec.default is not None:
            fields.append(f"default: {json.dumps(spec.default)}")
        if spec.range is not None:
            fields.append(f"least: {min(spec.range[0], 1)}")
        lines.append(f"  {spec.env}: {{ {', '.join(fields)} }},")
    lines += [
        "} as const;",
        "",
        "/**",
        " * The longest chain of Bubble requests one row can need, one after the other: search by key (a",
        " * retried create), create, search by email (the email is already used), modify (link that user).",
        " * A row is started only while this many timeouts still fit in its lease, and the HTTP timeout must",
        " * fit this often in a lease.",
        " */",
        f"export const MAX_REQUESTS_PER_ROW = {REQUESTS_PER_ROW_MAX};",
    ]
    return "\n".join(lines) + "\n"


def _text(value: object) -> Secret:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value  # type: ignore[return-value]  # a string, or a secret Output

"""components.sql.params: each template parameter a stack config key sets takes its default from that key, and
a stack's value through the same table. No database here."""

from __future__ import annotations

from datetime import timedelta

import pytest

from components.config import load_config
from components.config_keys import KEYS
from components.sql.params import DEFAULT_PARAMS, KEY_PARAMS, KeyParam, sql_params

SPECS = {spec.name: spec for spec in KEYS}

#: the parameters no stack config key sets, each written once in DEFAULT_PARAMS with its reason
NO_KEY = {
    "backoff_base_seconds",
    "backoff_cap_seconds",
    "dispatch_rewake_after",
    "alert_schedule",
    "stack_name",
}


@pytest.mark.parametrize("name", sorted(KEY_PARAMS))
def test_a_key_parameters_default_is_its_keys_default(name: str) -> None:
    param = KEY_PARAMS[name]
    spec = SPECS[param.key]
    assert spec.default is not None, f"{param.key} has no default for {name} to take"
    if param.unit is None:
        assert DEFAULT_PARAMS[name] == spec.default
    else:
        assert spec.type == "integer"
        assert DEFAULT_PARAMS[name] == timedelta(**{param.unit: spec.default})  # type: ignore[arg-type]


def test_every_other_parameter_is_one_no_key_sets() -> None:
    # A new parameter is either taken from its key (KEY_PARAMS) or added here as one no key sets: a default
    # that restates a key's cannot slip in.
    assert set(DEFAULT_PARAMS) - set(KEY_PARAMS) == NO_KEY
    assert set(KEY_PARAMS) <= set(DEFAULT_PARAMS)


def test_each_key_sets_one_parameter() -> None:
    keys = [param.key for param in KEY_PARAMS.values()]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("param", "key_value", "expected"),
    [
        (KeyParam("maxRetries"), 5, 5),
        (KeyParam("processorSchedule"), "*/2 * * * *", "*/2 * * * *"),
        (KeyParam("retryHorizonHours", "hours"), 2, timedelta(hours=2)),
        (KeyParam("completedRetentionDays", "days"), 3, timedelta(days=3)),
        (KeyParam("alertAfterMinutes", "minutes"), 4, timedelta(minutes=4)),
        (KeyParam("bubbleProbeSeconds", "seconds"), 45, timedelta(seconds=45)),
    ],
)
def test_a_key_value_in_the_parameters_unit(param: KeyParam, key_value: object, expected: object) -> None:
    assert param.value(key_value) == expected


def _other_value(key: str, index: int) -> str:
    """A valid value for `key` that is not its default."""
    spec = SPECS[key]
    if spec.type == "string":  # a cron schedule
        return f"{index} {index} * * *"
    assert spec.range is not None and isinstance(spec.default, int)
    low, high = spec.range
    return str(spec.default + 1 if spec.default < high else low)


def test_a_stacks_values_set_exactly_the_key_parameters() -> None:
    values = {param.key: _other_value(param.key, i) for i, param in enumerate(KEY_PARAMS.values(), start=1)}
    config = load_config(values.get, for_sql=True, env={})
    params = sql_params(config, "prod")
    assert set(params) == set(DEFAULT_PARAMS)
    changed = {name for name in params if params[name] != DEFAULT_PARAMS[name]}
    assert changed == set(KEY_PARAMS) | {"stack_name"}
    assert params["stack_name"] == "prod"
    for name, param in KEY_PARAMS.items():
        value = values[param.key]
        assert params[name] == param.value(int(value) if SPECS[param.key].type == "integer" else value)


def test_without_a_stack_name_the_placeholder_stays() -> None:
    config = load_config({}.get, for_sql=True, env={})
    assert sql_params(config) == DEFAULT_PARAMS

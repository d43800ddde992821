"""The Edge Function's settings come from one table, the stack config keys (components/function_env.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from components.config import KEYS, REQUESTS_PER_ROW_MAX
from components.function_env import FUNCTION_KEYS, MAPPINGS_ENV, SETTINGS_FILE, function_env, settings_ts
from components.mappings import from_definition
from tests.test_config import MAPPINGS, VALID, load

CONFIG_TS = Path(SETTINGS_FILE).with_name("config.ts")


def test_settings_ts_is_what_the_table_generates() -> None:
    assert SETTINGS_FILE.read_text() == settings_ts(), (
        "supabase/functions/bubble_sync/settings.ts is out of date: "
        "python -m components function-settings > supabase/functions/bubble_sync/settings.ts"
    )


def test_every_setting_carries_the_tables_default_and_the_function_reads_it() -> None:
    generated = SETTINGS_FILE.read_text()
    config_ts = CONFIG_TS.read_text()
    for spec in FUNCTION_KEYS:
        line = next(line for line in generated.splitlines() if line.strip().startswith(f"{spec.env}:"))
        assert f'key: "{spec.name}"' in line
        if spec.default is not None:
            default = str(spec.default).lower() if isinstance(spec.default, bool) else spec.default
            assert re.search(rf"default: \"?{default}\"?[ ,]", line), line
        assert f'"{spec.env}"' in config_ts, f"config.ts does not read {spec.env}"
    assert f"MAX_REQUESTS_PER_ROW = {REQUESTS_PER_ROW_MAX};" in generated
    # config.ts keeps no defaults of its own for the table's settings.
    for spec in FUNCTION_KEYS:
        if spec.default is not None and not isinstance(spec.default, bool):
            assert not re.search(rf'"{spec.env}",\s*{re.escape(str(spec.default))}\b', config_ts), spec.env


def test_function_env_maps_every_function_key_from_the_config() -> None:
    env = function_env(load({"batchSize": "77", "bubbleBulkCreate": "true"}))
    assert set(env) == {spec.env for spec in FUNCTION_KEYS}
    assert env["BUBBLE_SYNC_BATCH_SIZE"] == "77" and env["BUBBLE_BULK_CREATE"] == "true"
    assert (
        env["BUBBLE_BASE_URL"] == VALID["bubbleBaseUrl"]
        and env["BUBBLE_API_TOKEN"] == VALID["bubbleApiToken"]
    )
    assert env["BUBBLE_RATE_LIMIT_PER_MINUTE"] == "1000"  # the table's default
    assert all(isinstance(value, str) for value in env.values())


def test_only_keys_the_function_reads_have_an_env_and_names_are_unique() -> None:
    names = [spec.env for spec in KEYS if spec.env]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"BUBBLE_[A-Z_]+", name) for name in names)


def test_a_stack_without_mappings_gets_exactly_the_env_it_had() -> None:
    for unset in (None, "[]"):
        env = function_env(load({"mappings": unset}))
        assert MAPPINGS_ENV not in env
        assert env == function_env(load())
        assert set(env) == {spec.env for spec in FUNCTION_KEYS}


def test_mappings_reach_the_function_as_their_definitions() -> None:
    config = load({"mappings": json.dumps(MAPPINGS), "bubbleExternalKeyField": "Supabase ID"})
    env = function_env(config)
    assert set(env) == {spec.env for spec in FUNCTION_KEYS} | {MAPPINGS_ENV}
    definitions = json.loads(env[MAPPINGS_ENV])  # type: ignore[arg-type]
    assert [d["name"] for d in definitions] == ["users", "listings"]
    assert tuple(from_definition(d) for d in definitions) == config.mappings
    users, listings = definitions
    assert users["keyField"] == "Supabase ID"
    # a reference names the table the referenced mapping's rows are queued under
    assert listings["fields"][0] == {
        "column": "host_id",
        "field": "Host",
        "ref": "users",
        "refTable": "profiles",
    }
    assert listings["onDelete"] == {"action": "set", "fields": {"Archived": True}}
    # the settings file is generated from the keys only: mappings add nothing to it
    assert MAPPINGS_ENV not in settings_ts()

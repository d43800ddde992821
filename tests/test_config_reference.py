"""docs/configuration-reference.md is what the table of stack config keys generates
(components/config_reference.py), and the generator renders every key as the table has it."""

from __future__ import annotations

import subprocess
import sys

from components.config_keys import KEYS, KeySpec
from components.config_reference import COMMAND, REFERENCE_FILE, config_reference


def test_the_committed_reference_is_what_the_table_generates() -> None:
    assert REFERENCE_FILE.read_text() == config_reference(), (
        f"{REFERENCE_FILE.name} is out of date with components/config_keys.py; regenerate it: {COMMAND}"
    )


def test_the_command_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "components", "config-reference"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REFERENCE_FILE.parents[1],
    )
    assert result.stdout == config_reference()


def test_every_key_has_one_row_in_table_order() -> None:
    rows = [line for line in config_reference().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [spec.name for spec in KEYS]


def _cells(spec: KeySpec) -> list[str]:
    row = config_reference((spec,)).splitlines()[-1]
    return [cell.strip() for cell in row.strip("|").split(" | ")]


def test_a_row_carries_type_default_range_secret_and_variable() -> None:
    spec = KeySpec("batchSize", "integer", "rows per run", default=50, range=(1, 1000), env="BATCH")
    assert _cells(spec) == ["`batchSize`", "integer", "`50`", "1..1000", "", "`BATCH`", "rows per run"]
    required = KeySpec("token", "string", "a token", secret=True)
    assert _cells(required)[2:5] == ["*required*", "", "yes"]


def test_defaults_are_shown_as_the_stack_file_would_hold_them() -> None:
    defaults = {
        True: "`true`",
        False: "`false`",
        "": '`""`',
        (): "`[]`",
        "* * * * *": "`* * * * *`",
    }
    for default, shown in defaults.items():
        assert _cells(KeySpec("k", "string", "d", default=default))[2] == shown


def test_a_description_cannot_break_its_cell_or_lose_a_placeholder() -> None:
    spec = KeySpec("k", "string", "immediate | cron; db.<ref>.supabase.co, `a|<b>`")
    assert _cells(spec)[-1] == r"immediate \| cron; db.&lt;ref>.supabase.co, `a\|<b>`"

"""components.sql.templates: rendering, the files of sql/, and the cron jobs. No database here; what the files
define is tests/test_sql_catalogue.py's."""

from __future__ import annotations

import ast
import re
import sys
from datetime import timedelta

import pytest

from components.sql import templates as st
from components.sql.catalogue import split_statements
from components.sql.params import DEFAULT_PARAMS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, "3"),
        (-5, "-5"),
        (0.25, "0.25"),
        (True, "true"),
        (False, "false"),
        ("* * * * *", "'* * * * *'"),
        ("it's", "'it''s'"),
        ("back\\slash", "'back\\slash'"),  # standard_conforming_strings: a backslash is just a character
        (timedelta(days=7), "interval '7 days'"),
        (timedelta(seconds=30), "interval '30 seconds'"),
        (timedelta(days=1, seconds=3600), "interval '1 days 3600 seconds'"),
        (timedelta(milliseconds=1500), "interval '1.5 seconds'"),
        (timedelta(0), "interval '0 seconds'"),
        (timedelta(seconds=-1), "interval '-1 days 86399 seconds'"),
    ],
)
def test_literal(value: object, expected: str) -> None:
    assert st.literal(value) == expected


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, b"x", object()])
def test_literal_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        st.literal(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nul\x00byte"])
def test_literal_rejects_values_sql_cannot_hold(value: object) -> None:
    with pytest.raises(ValueError):
        st.literal(value)


def test_render_replaces_every_marker_whatever_its_spacing() -> None:
    text = "select {{ a }}, {{b}}, {{  c  }}, {{ a }}"
    assert (
        st.render(text, {"a": 1, "b": "x", "c": timedelta(days=2)}) == "select 1, 'x', interval '2 days', 1"
    )


def test_render_ignores_values_nobody_asked_for() -> None:
    assert st.render("select {{ a }}", {"a": 1, "unused": 2}) == "select 1"


def test_render_names_every_missing_placeholder() -> None:
    with pytest.raises(KeyError, match="lease_seconds, other"):
        st.render("select {{ lease_seconds }}, {{ other }}, {{ present }}", {"present": 1})


def test_render_does_not_touch_dollar_quotes() -> None:
    text = "create function f() returns int language sql as $fn$ select {{ n }} $fn$"
    assert st.render(text, {"n": 42}) == "create function f() returns int language sql as $fn$ select 42 $fn$"


# -- the files -----------------------------------------------------------------------------------------------


def _all_sql_files() -> list[str]:
    return sorted(str(p.relative_to(st.SQL_DIR)) for p in st.SQL_DIR.rglob("*.sql"))


def test_load_reads_files_under_sql_only() -> None:
    assert "create table if not exists public.sync_queue" in st.load("queue_schema.sql")
    with pytest.raises(ValueError):
        st.load("../pyproject.toml")


def test_every_file_is_listed_somewhere() -> None:
    listed = set(st.QUEUE_FILES) | {st.DISPATCH_TRIGGER_FILE, st.VERIFICATION_FILE, st.OPERATOR_STATUS_FILE}
    listed |= {st.OPERATOR_BACKFILL_FILE, st.OPERATOR_RECONCILE_FILE}
    listed |= set(st.UNIT_PARAMS)
    assert set(_all_sql_files()) == listed


@pytest.mark.parametrize("relative_path", _all_sql_files())
def test_every_file_renders_with_the_defaults_and_splits(relative_path: str) -> None:
    text = st.load(relative_path)
    per_unit = st.UNIT_PARAMS.get(relative_path, ())
    assert st.placeholders(text) <= DEFAULT_PARAMS.keys() | set(per_unit)
    # a mapping's trigger names its table and itself as identifiers, the rest are literals
    values = {name: st.Identifier("x") if name in ("table", "trigger_name") else "x" for name in per_unit}
    rendered = st.render(text, {**DEFAULT_PARAMS, **values})
    assert "{{" not in rendered and "}}" not in rendered
    if relative_path in (st.OPERATOR_STATUS_FILE, st.OPERATOR_BACKFILL_FILE, st.OPERATOR_RECONCILE_FILE):
        # psycopg fills its parameters in, and psycopg.sql backfill's slots: give the parser something
        slots = {"source": "public.t", "row": "t", "key": "id", "key_type": "bigint", "where": "true"}
        rendered = re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], rendered)
        rendered = re.sub(r"%\((\w+)\)s|%s", "null", rendered).replace("%%", "%")
    assert split_statements(rendered)  # PostgreSQL's parser accepts it


def test_every_default_is_used_by_some_file() -> None:
    used = set().union(*(st.placeholders(st.load(f)) for f in _all_sql_files() if f not in st.UNIT_PARAMS))
    used |= {job.schedule_param for job in st.CRON_JOBS}
    used |= set().union(*(st.placeholders(job.command) for job in st.CRON_JOBS))
    assert used == set(DEFAULT_PARAMS)


def test_cron_job_statements_schedule_and_reactivate_by_name() -> None:
    for job in st.CRON_JOBS:
        statement = job.statement(DEFAULT_PARAMS)
        schedule = st.literal(DEFAULT_PARAMS[job.schedule_param])
        assert statement.startswith(f"select cron.schedule('{job.name}', {schedule}, ")
        assert st.literal(st.render(job.command, DEFAULT_PARAMS)) in statement
        assert "cron.alter_job(j.jobid, active := true)" in statement
    # the seed's two jobs keep the seed's names and schedules; ours does not match the seed's LIKE
    names = {job.name: job for job in st.CRON_JOBS}
    assert DEFAULT_PARAMS[names["bubble-sync-processor"].schedule_param] == "* * * * *"
    assert DEFAULT_PARAMS[names["bubble-sync-retry"].schedule_param] == "*/5 * * * *"
    assert [n for n in names if n.startswith("bubble-sync")] == ["bubble-sync-processor", "bubble-sync-retry"]


def test_module_imports_nothing_but_the_standard_library() -> None:
    tree = ast.parse((st.SQL_DIR.parent / "components" / "sql" / "templates.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}


def test_queue_columns_match_the_adoption_check_in_the_sql() -> None:
    # sql/queue_schema.sql refuses to adopt a table whose column types it cannot work with; the QueueSchema
    # provider reports drift against QUEUE_COLUMNS. Both must accept the same types, or `pulumi up` would
    # adopt a table and then report it as drifted forever (or the reverse).
    text = st.load("queue_schema.sql")
    rows = re.findall(r"\('(\w+)',\s*array\[([^\]]*)\],\s*(?:true|false)\)", text)
    in_sql = {column: tuple(re.findall(r"'([^']+)'", types)) for column, types in rows}
    assert in_sql == dict(st.QUEUE_COLUMNS)

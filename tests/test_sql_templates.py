"""components.sql_templates: rendering, statement splitting, and the description of what sql/ contains.
No database here; tests/test_queue_security.py checks the same descriptions against a live one."""

from __future__ import annotations

import ast
import re
import sys
from datetime import timedelta

import pytest

from components import sql_templates as st


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


# -- split_statements ----------------------------------------------------------------------------------------


def test_split_simple_statements() -> None:
    assert st.split_statements("select 1; select 2;\nselect 3") == ["select 1", "select 2", "select 3"]


def test_split_keeps_semicolons_inside_quotes_and_comments() -> None:
    sql = """
    select 'a;b', E'it\\'s;', "odd;name" from t; -- trailing; comment
    /* block; /* nested; */ still comment; */ select 2;
    """
    assert st.split_statements(sql) == [
        "select 'a;b', E'it\\'s;', \"odd;name\" from t",
        "-- trailing; comment\n    /* block; /* nested; */ still comment; */ select 2",
    ]


def test_split_respects_dollar_quotes_with_tags() -> None:
    sql = (
        "create function a() returns void language plpgsql as"
        " $fn$ begin perform 1; perform $$x;y$$; end $fn$;\n"
        "do $adopt$ begin raise notice 'a;b'; end $adopt$;\n"
        "select $$;$$;"
    )
    statements = st.split_statements(sql)
    assert len(statements) == 3
    assert statements[0].endswith("end $fn$")
    assert statements[1].startswith("do $adopt$") and statements[1].endswith("$adopt$")
    assert statements[2] == "select $$;$$"


def test_split_is_not_fooled_by_positional_parameters_or_dollar_identifiers() -> None:
    assert st.split_statements("select $1; select a$b$c from t; select 2") == [
        "select $1",
        "select a$b$c from t",
        "select 2",
    ]


def test_split_drops_pieces_that_are_only_comments() -> None:
    assert st.split_statements("-- header\n\nselect 1;\n-- the end\n;  ;\n/* bye */\n") == [
        "-- header\n\nselect 1"
    ]


@pytest.mark.parametrize("sql", ["select $x$ open", "select 'open", "select /* open", 'select "open'])
def test_split_rejects_unterminated_quotes(sql: str) -> None:
    with pytest.raises(ValueError, match="unterminated"):
        st.split_statements(sql)


# -- the files -----------------------------------------------------------------------------------------------


def _all_sql_files() -> list[str]:
    return sorted(str(p.relative_to(st.SQL_DIR)) for p in st.SQL_DIR.rglob("*.sql"))


def test_load_reads_files_under_sql_only() -> None:
    assert "create table if not exists public.sync_queue" in st.load("queue_schema.sql")
    with pytest.raises(ValueError):
        st.load("../pyproject.toml")


def test_every_file_is_listed_somewhere() -> None:
    listed = set(st.QUEUE_FILES) | {st.DISPATCH_TRIGGER_FILE, st.VERIFICATION_FILE}
    assert set(_all_sql_files()) == listed


@pytest.mark.parametrize("relative_path", _all_sql_files())
def test_every_file_renders_with_the_defaults_and_splits(relative_path: str) -> None:
    text = st.load(relative_path)
    assert st.placeholders(text) <= st.DEFAULT_PARAMS.keys()
    rendered = st.render(text, st.DEFAULT_PARAMS)
    assert "{{" not in rendered and "}}" not in rendered
    assert st.split_statements(rendered)


def test_every_default_is_used_by_some_file() -> None:
    used = set().union(*(st.placeholders(st.load(f)) for f in _all_sql_files()))
    used |= {job.schedule_param for job in st.CRON_JOBS}
    used |= set().union(*(st.placeholders(job.command) for job in st.CRON_JOBS))
    assert used == set(st.DEFAULT_PARAMS)


_CREATE_FUNCTION = re.compile(r"create\s+or\s+replace\s+function\s+(\w+)\.(\w+)\s*\(", re.IGNORECASE)


def test_functions_list_every_function_in_the_files_once() -> None:
    defined = []
    for relative_path in _all_sql_files():
        for statement in st.split_statements(st.render(st.load(relative_path), st.DEFAULT_PARAMS)):
            if m := _CREATE_FUNCTION.search(statement):
                defined.append((m.group(1), m.group(2), relative_path))
    assert sorted(defined) == sorted((f.schema, f.name, f.file) for f in st.FUNCTIONS)


@pytest.mark.parametrize("spec", st.FUNCTIONS, ids=lambda f: f"{f.schema}.{f.name}")
def test_function_statements_have_the_shape_the_provider_parses(spec: st.FunctionSpec) -> None:
    statement = spec.statement(st.DEFAULT_PARAMS)
    body_start = statement.index("$fn$")
    head, body = statement[:body_start], statement[body_start:]
    # what the function does, in a comment right above it
    assert statement.lstrip().startswith("--")
    # settings in the header, the body in exactly one $fn$ ... $fn$ with nothing else using that tag
    assert re.search(r"\bset search_path = ''", head)
    assert body.count("$fn$") == 2 and body.rstrip().endswith("$fn$")
    # every state-changing verb takes the clock as a parameter
    if spec.name in {"enqueue", "claim", "complete", "fail", "reclaim", "purge"}:
        assert re.search(r"p_now\s+timestamptz default null", head)
        assert "coalesce(p_now, clock_timestamp())" in body


@pytest.mark.parametrize("spec", st.FUNCTIONS, ids=lambda f: f"{f.schema}.{f.name}")
def test_function_files_carry_the_grants_the_spec_declares(spec: st.FunctionSpec) -> None:
    rendered = " ".join(st.render(st.load(spec.file), st.DEFAULT_PARAMS).split())
    types = re.escape(f"{spec.schema}.{spec.name}(")
    revokes = re.findall(rf"revoke all on function {types}[^)]*\) from ([^;]+);", rendered)
    grants = re.findall(rf"grant execute on function {types}[^)]*\) to ([^;]+);", rendered)
    assert revokes == ["public, anon, authenticated, service_role"]
    assert tuple(role.strip() for g in grants for role in g.split(",")) == spec.grant_execute_to


def test_signature_and_regprocedure() -> None:
    claim = next(f for f in st.FUNCTIONS if f.name == "claim")
    assert claim.signature == (
        "bubble_sync.claim(p_action text, p_limit integer, p_lease_seconds integer,"
        " p_now timestamp with time zone)"
    )
    assert claim.regprocedure == "bubble_sync.claim(text, integer, integer, timestamp with time zone)"
    processor = next(f for f in st.FUNCTIONS if f.name == "invoke_bubble_sync_processor")
    assert processor.signature == processor.regprocedure == "public.invoke_bubble_sync_processor()"


def test_cron_job_statements_schedule_and_reactivate_by_name() -> None:
    for job in st.CRON_JOBS:
        statement = job.statement(st.DEFAULT_PARAMS)
        schedule = st.literal(st.DEFAULT_PARAMS[job.schedule_param])
        assert statement.startswith(f"select cron.schedule('{job.name}', {schedule}, ")
        assert st.literal(st.render(job.command, st.DEFAULT_PARAMS)) in statement
        assert "cron.alter_job(j.jobid, active := true)" in statement
    # the seed's two jobs keep the seed's names and schedules; ours does not match the seed's LIKE
    names = {job.name: job for job in st.CRON_JOBS}
    assert st.DEFAULT_PARAMS[names["bubble-sync-processor"].schedule_param] == "* * * * *"
    assert st.DEFAULT_PARAMS[names["bubble-sync-retry"].schedule_param] == "*/5 * * * *"
    assert [n for n in names if n.startswith("bubble-sync")] == ["bubble-sync-processor", "bubble-sync-retry"]


def test_module_imports_nothing_but_the_standard_library() -> None:
    tree = ast.parse((st.SQL_DIR.parent / "components" / "sql_templates.py").read_text())
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

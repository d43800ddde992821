"""`python -m components render-sql`: the stack's setup script, generated from the units the component uses,
applied with psql as `postgres` the way a user would on Supabase.

Why one module: its tests follow one script from rendering to applying it, and those that apply it share the
session's `cron_db` through `postgres_db`, which clears our objects before and after.

pg_cron runs only in the `postgres` database (cron.database_name), so the script is applied there
(`cron_db`, shared by the session): the fixture makes sure none of our objects is there before, and removes
them all afterwards, cron jobs included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.__main__ import main
from components.config import ConfigError, load_config
from components.sql.catalogue import functions
from components.sql.plan import QUEUE_COLUMNS, sql_plan
from components.sql.render import render_script
from components.sql.templates import CRON_JOBS
from components.stack_file import load_stack_config
from tests.conftest import Database

ROOT = Path(__file__).resolve().parent.parent
PSQL = "/usr/bin/psql"
SERVICE_KEY = "sb_secret_test-SECRET-0b7e"
JOB_NAMES = [job.name for job in CRON_JOBS]


def defaults():  # type: ignore[no-untyped-def]
    return load_config(lambda key: None, for_sql=True, env={})


def psql(
    dsn: str, script: str, tmp_path: Path, *, variables: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bubble-sync.sql"
    path.write_text(script)
    cmd = [PSQL, dsn, "-X", "-f", str(path)]
    for key, value in variables.items():
        cmd += ["-v", f"{key}={value}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


# -- rendering -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "local"])
def test_example_stacks_render(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render-sql", "--stack", stack]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"-- bubble-sync: complete database setup for stack '{stack}'.")
    assert 'psql "$DATABASE_URL" -v service_role_key=' in out
    assert "-v supabase_url=" in out
    assert "secure:" not in out and "v1:" not in out
    for spec in functions():
        assert f"create or replace function {spec.schema}.{spec.name}(" in out
    for job in JOB_NAMES:
        assert f"select cron.schedule('{job}'" in out
    assert "create or replace trigger bubble_sync_dispatch" in out
    if stack == "dev":
        assert "create extension if not exists pg_cron with schema pg_catalog;" in out
        assert "create extension if not exists pg_net with schema extensions;" in out
    else:  # manageExtensions false: enabled by the dashboard (here the devstack), only checked
        assert "create extension" not in out
        assert "-- Extensions (enabled in the dashboard: checked)" in out
        assert "raise exception 'bubble-sync: extension % is not enabled in this database', 'pg_net'" in out
    assert "WHERE jobname LIKE 'bubble-sync%';" in out  # the seed's verification queries close the script
    assert out.index("begin;") < out.index("commit;") < out.index("WHERE jobname LIKE 'bubble-sync%'")


def test_stack_values_reach_the_script() -> None:
    dev = render_script(load_stack_config(ROOT / "Pulumi.dev.yaml"), stack="dev")
    assert "\\set supabase_url 'https://qcfifybkaddcoimjroca.supabase.co'" in dev
    local = render_script(load_stack_config(ROOT / "Pulumi.local.yaml"), stack="local")
    assert "select bubble_sync.purge(interval ''1 days'', interval ''1 days'')" in local
    assert "\\set supabase_url 'http://127.0.0.1:54321'" in local


def test_without_a_stack_the_url_is_a_required_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render-sql"]) == 0
    out = capsys.readouterr().out
    assert "complete database setup for the default settings" in out
    assert "\\set supabase_url" not in out
    assert "set the psql variable supabase_url" in out
    assert "set the psql variable service_role_key" in out


def test_cron_mode_has_no_trigger_and_removes_an_old_one() -> None:
    config = load_config({"dispatchMode": "cron"}.get, for_sql=True, env={})
    script = render_script(config)
    assert "create or replace trigger" not in script
    assert "drop trigger if exists bubble_sync_dispatch on public.sync_queue;" in script
    assert sql_plan(config).dispatch_trigger is None


def test_script_is_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """Every unit the component turns into a resource is in the script, in the plan's order."""
    config = defaults()
    script = render_script(config)
    positions = [script.index(unit.sql()) for unit in sql_plan(config).units]
    assert positions == sorted(positions)


def test_unknown_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render-sql", "--stack", "nope"]) == 2
    assert "no stack file" in capsys.readouterr().err


def _stack_dir(tmp_path: Path, body: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.t.yaml").write_text(body)
    return tmp_path


def test_encrypted_values_are_skipped_and_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _stack_dir(
        tmp_path,
        "config:\n"
        "  bubble-sync:projectRef: abcdefghijklmnopqrst\n"
        "  bubble-sync:serviceRoleKey:\n    secure: v1:CIPHERTEXT-AAAA\n"
        "  bubble-sync:batchSize: 10\n"
        "  bubble-sync:dropQueueOnDestroy: true\n"
        "  postgresql:sslmode: require\n",
    )
    assert main(["render-sql", "--stack", "t", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "CIPHERTEXT" not in out
    assert "batchSize=10" in out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "  bubble-sync:serviceRoleKey: plain-SECRET-value\n",
            "bubble-sync:serviceRoleKey: is stored in plain text",
        ),
        (
            "  bubble-sync:batchsize: 10\n",
            "bubble-sync:batchsize: unknown key in Pulumi.t.yaml (did you mean batchSize?)",
        ),
        (
            "  bubble-sync:processorSchedule: every minute\n",
            "bubble-sync:processorSchedule: invalid schedule",
        ),
    ],
)
def test_bad_stack_files_are_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    project = _stack_dir(tmp_path, "config:\n" + line)
    assert main(["render-sql", "--stack", "t", "--project-dir", str(project)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    assert "plain-SECRET-value" not in captured.err
    with pytest.raises(ConfigError):
        load_stack_config(project / "Pulumi.t.yaml")


# -- applying it ---------------------------------------------------------------------------------------------

_CLEANUP = """
select cron.unschedule(jobid) from cron.job where jobname = any(%(jobs)s) and username = current_user;
drop schema if exists bubble_sync cascade;
drop function if exists public.invoke_bubble_sync_processor(), public.invoke_bubble_sync_retry();
drop table if exists public.sync_queue cascade;
delete from vault.secrets where name in ('supabase_url', 'service_role_key');
delete from net.http_request_queue;
"""


def _clean(db: Database) -> None:
    with db.connect() as conn:
        for statement in _CLEANUP.strip().split(";\n"):
            conn.execute(statement, {"jobs": JOB_NAMES} if "%(jobs)s" in statement else None)


@pytest.fixture
def postgres_db(cron_db: Database) -> Iterator[Database]:
    """The `postgres` database without any of our objects, before and after the test."""
    _clean(cron_db)
    try:
        yield cron_db
    finally:
        _clean(cron_db)


def test_the_local_stacks_script_checks_the_extensions_it_does_not_manage(
    postgres_db: Database, tmp_path: Path
) -> None:
    """manageExtensions false: the script checks pg_cron and pg_net instead of creating them, and runs."""
    script = render_script(load_stack_config(ROOT / "Pulumi.local.yaml"), stack="local")
    assert script.count("do $require$") == 2 and "create extension" not in script
    result = psql(postgres_db.dsn, script, tmp_path, variables={"service_role_key": SERVICE_KEY})
    assert result.returncode == 0, result.stderr


def test_applied_twice_the_seeds_verification_passes(postgres_db: Database, tmp_path: Path) -> None:
    script = render_script(load_stack_config(ROOT / "Pulumi.dev.yaml"), stack="dev")
    variables = {"service_role_key": SERVICE_KEY}
    first = psql(postgres_db.dsn, script, tmp_path, variables=variables)
    assert first.returncode == 0, first.stderr
    assert SERVICE_KEY not in first.stdout + first.stderr

    with postgres_db.connect() as conn:
        jobids = dict(
            conn.execute(
                "select jobname, jobid from cron.job where jobname = any(%s)", (JOB_NAMES,)
            ).fetchall()
        )
        # someone pauses a job: applying again switches it back on
        conn.execute("select cron.alter_job(%s, active := false)", (jobids["bubble-sync-retry"],))

    second = psql(postgres_db.dsn, script, tmp_path, variables=variables)
    assert second.returncode == 0, second.stderr

    with postgres_db.connect() as conn:
        # the seed's verification queries, verbatim, with the results the seed expects
        jobs = conn.execute(
            "SELECT jobid, jobname, schedule, active FROM cron.job WHERE jobname LIKE 'bubble-sync%'"
        ).fetchall()
        assert sorted((name, schedule, active) for _, name, schedule, active in jobs) == [
            ("bubble-sync-processor", "* * * * *", True),
            ("bubble-sync-retry", "*/5 * * * *", True),
        ]
        secrets = conn.execute(
            "SELECT name FROM vault.secrets WHERE name IN ('supabase_url', 'service_role_key')"
        ).fetchall()
        assert sorted(secrets) == [("service_role_key",), ("supabase_url",)]  # once each, after two runs
        assert conn.execute("SELECT status, COUNT(*) FROM sync_queue GROUP BY status").fetchall() == []
        functions = conn.execute(
            "SELECT proname FROM pg_proc "
            "WHERE proname IN ('invoke_bubble_sync_processor', 'invoke_bubble_sync_retry')"
        ).fetchall()
        assert sorted(functions) == [("invoke_bubble_sync_processor",), ("invoke_bubble_sync_retry",)]
        health = conn.execute(
            """SELECT
                (SELECT COUNT(*) FROM cron.job WHERE jobname LIKE 'bubble-sync%' AND active) as active_jobs,
                (SELECT COUNT(*) FROM sync_queue WHERE status = 'pending') as pending_items,
                (SELECT COUNT(*) FROM sync_queue WHERE status = 'failed') as failed_items,
                (SELECT COUNT(*) FROM sync_queue WHERE status = 'completed'
                   AND created_at >= NOW() - INTERVAL '24 hours') as completed_today"""
        ).fetchone()
        assert health == (2, 0, 0, 0)

        # the re-run kept the jobs (same ids) and the maintenance job with its horizons
        again = dict(
            conn.execute(
                "select jobname, jobid from cron.job where jobname = any(%s)", (JOB_NAMES,)
            ).fetchall()
        )
        assert again == jobids
        purge = conn.execute(
            "select schedule, command, active from cron.job where jobname = 'bubble_sync.purge'"
        ).fetchone()
        assert purge == (
            "17 3 * * *",
            "select bubble_sync.purge(interval '7 days', interval '30 days')",
            True,
        )

        # Vault holds the values given on the command line and the stack's URL
        values = dict(
            conn.execute(
                "select name, decrypted_secret from vault.decrypted_secrets "
                "where name in ('supabase_url', 'service_role_key')"
            ).fetchall()
        )
        assert values == {
            "supabase_url": "https://qcfifybkaddcoimjroca.supabase.co",
            "service_role_key": SERVICE_KEY,
        }

    # psql printed the verification results (jobs and health) at the end
    assert "bubble-sync-processor" in second.stdout
    assert "active_jobs" in second.stdout


def test_applied_script_wires_the_pipeline(postgres_db: Database, tmp_path: Path) -> None:
    """A signup row wakes the edge function at once (trigger), and the seed's manual test queues a call too,
    both to <supabase_url>/functions/v1/bubble_sync with the service key from Vault."""
    script = render_script(defaults())
    url = "http://127.0.0.1:9"
    result = psql(
        postgres_db.dsn, script, tmp_path, variables={"service_role_key": SERVICE_KEY, "supabase_url": url}
    )
    assert result.returncode == 0, result.stderr
    with postgres_db.connect() as conn:
        conn.execute(
            "insert into public.sync_queue (table_name, record_id, operation, payload) "
            "values ('profiles', '1', 'INSERT', '{}')"
        )
        (request_id,) = conn.execute("SELECT invoke_bubble_sync_processor()").fetchone()
        assert request_id is not None
        requests = conn.execute(
            "select url, headers->>'Authorization', body, timeout_milliseconds "
            "from net.http_request_queue order by id"
        ).fetchall()
    # one from the dispatch trigger, one from the manual call (and maybe one from a minute tick in between)
    assert len(requests) >= 2
    for request_url, authorization, body, timeout in requests:
        assert request_url == f"{url}/functions/v1/bubble_sync"
        assert authorization == f"Bearer {SERVICE_KEY}"
        assert b"process_queue_data_api" in bytes(body)
        assert timeout == 5000


def test_applied_objects_are_what_the_providers_expect(postgres_db: Database, tmp_path: Path) -> None:
    """The program's QueueSchema columns and SqlObject `expected` text match what the SQL really creates,
    and the API roles can neither touch the queue nor run our functions."""
    config = defaults()
    plan = sql_plan(config)
    result = psql(
        postgres_db.dsn,
        render_script(config),
        tmp_path,
        variables={"service_role_key": SERVICE_KEY, "supabase_url": "http://x"},
    )
    assert result.returncode == 0, result.stderr
    with postgres_db.connect() as conn:
        columns = dict(
            conn.execute(
                "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
                "where a.attrelid = 'public.sync_queue'::regclass and a.attnum > 0 and not a.attisdropped"
            ).fetchall()
        )
        # a new table gets the first (preferred) type of each column
        assert columns == {"id": "bigint", **{c: types[0] for c, types in QUEUE_COLUMNS.items()}}
        assert plan.dispatch_trigger is not None
        (probe,) = conn.execute(plan.dispatch_trigger.probe_sql).fetchone()
        assert probe == plan.dispatch_trigger.expected
        for unit in plan.functions:
            row = conn.execute(
                "select p.proconfig, array(select r.rolname from pg_roles r "
                "  where has_function_privilege(r.oid, p.oid, 'execute') "
                "    and r.rolname in ('anon', 'authenticated', 'service_role') order by 1) "
                "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = %s and p.proname = %s",
                (unit.spec.schema, unit.spec.name),
            ).fetchone()
            assert row is not None, unit.spec.signature
            proconfig, executors = row
            assert 'search_path=""' in proconfig, unit.spec.signature
            assert executors == sorted(unit.execute_grants), unit.spec.signature
        for role in ("anon", "authenticated"):
            assert conn.execute(
                "select has_table_privilege(%s, 'public.sync_queue', 'select, insert, update, delete')",
                (role,),
            ).fetchone() == (False,)


def test_a_missing_variable_stops_before_anything_changes(postgres_db: Database, tmp_path: Path) -> None:
    result = psql(
        postgres_db.dsn, render_script(defaults()), tmp_path, variables={"supabase_url": "http://x"}
    )
    assert result.returncode != 0
    assert "set the psql variable service_role_key" in result.stderr
    with postgres_db.connect() as conn:
        assert conn.execute("select to_regclass('public.sync_queue')").fetchone() == (None,)


def test_a_failure_midway_leaves_nothing_behind(postgres_db: Database, tmp_path: Path) -> None:
    """The script is one transaction: an error in the last part rolls back the first."""
    script = render_script(defaults()).replace(
        "select cron.schedule('bubble-sync-retry', '*/5 * * * *'",
        "select cron.schedule('bubble-sync-retry', 'not a schedule'",
    )
    result = psql(
        postgres_db.dsn,
        script,
        tmp_path,
        variables={"service_role_key": SERVICE_KEY, "supabase_url": "http://x"},
    )
    assert result.returncode != 0
    assert "invalid schedule" in result.stderr
    with postgres_db.connect() as conn:
        assert conn.execute("select to_regclass('public.sync_queue')").fetchone() == (None,)
        assert conn.execute(
            "select count(*) from vault.secrets where name = 'service_role_key'"
        ).fetchone() == (0,)
        assert conn.execute(
            "select count(*) from cron.job where jobname = any(%s)", (JOB_NAMES,)
        ).fetchone() == (0,)


def test_switching_to_cron_mode_removes_the_trigger(postgres_db: Database, tmp_path: Path) -> None:
    variables = {"service_role_key": SERVICE_KEY, "supabase_url": "http://x"}
    assert psql(postgres_db.dsn, render_script(defaults()), tmp_path, variables=variables).returncode == 0
    cron_mode = load_config({"dispatchMode": "cron"}.get, for_sql=True, env={})
    result = psql(postgres_db.dsn, render_script(cron_mode), tmp_path, variables=variables)
    assert result.returncode == 0, result.stderr
    with postgres_db.connect() as conn:
        assert conn.execute(
            "select count(*) from pg_trigger "
            "where tgrelid = 'public.sync_queue'::regclass and not tgisinternal"
        ).fetchone() == (0,)


def test_psql_is_the_one_the_docs_name() -> None:
    # The header tells users to run psql; the tests use the real one.
    assert Path(PSQL).exists()
    version = subprocess.run([PSQL, "--version"], capture_output=True, text=True, check=True).stdout
    assert int(version.split()[2].split(".")[0]) >= 10  # \if and :{?var} need psql 10+
    assert psycopg.__version__


# -- the script and the Pulumi resources build the same database ------------------------------------------

_SNAPSHOT = {
    "functions": """
        select n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc, p.proconfig,
               p.prosecdef, array(select r.rolname from pg_roles r
                                   where has_function_privilege(r.oid, p.oid, 'execute')
                                     and r.rolname in ('anon', 'authenticated', 'service_role')
                                   order by 1)
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'bubble_sync' or p.proname like 'invoke_bubble_sync_%'
         order by 1, 2, 3""",
    "triggers": """
        select tgname, pg_get_triggerdef(oid) from pg_trigger
         where tgrelid = 'public.sync_queue'::regclass and not tgisinternal order by 1""",
    "queue": """
        select c.relrowsecurity, (select count(*) from pg_policy where polrelid = c.oid),
               array(select format('%s %s', attname, format_type(atttypid, atttypmod)) from pg_attribute
                      where attrelid = c.oid and attnum > 0 and not attisdropped order by attnum),
               array(select pg_get_indexdef(indexrelid) from pg_index where indrelid = c.oid order by 1),
               array(select r.rolname from pg_roles r
                      where has_table_privilege(r.oid, c.oid, 'select, insert, update, delete')
                        and r.rolname in ('anon', 'authenticated', 'service_role') order by 1)
          from pg_class c where c.oid = 'public.sync_queue'::regclass""",
    "secrets": """
        select name, decrypted_secret from vault.decrypted_secrets
         where name in ('supabase_url', 'service_role_key') order by 1""",
    "jobs": """
        select jobname, schedule, command, active from cron.job where jobname = any(%(jobs)s) order by 1""",
}


def _snapshot(db: Database) -> dict[str, list[tuple[object, ...]]]:
    with db.connect() as conn:
        return {
            key: conn.execute(query, {"jobs": JOB_NAMES} if "%(jobs)s" in query else None).fetchall()
            for key, query in _SNAPSHOT.items()
        }


def test_providers_and_script_build_the_same_database(
    postgres_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every unit of the plan, created through the dynamic provider the component uses for it, gives the
    catalog the script gives (the extensions are already there in both cases)."""
    from components.connection import ENV_VAR
    from components.providers import (
        CronJobProvider,
        QueueSchemaProvider,
        SqlFunctionProvider,
        SqlObjectProvider,
        VaultSecretProvider,
    )

    config = load_config({"dispatchMode": "immediate", "maxRetries": "7"}.get, for_sql=True, env={})
    plan = sql_plan(config)
    url = "https://abcdefghijklmnopqrst.supabase.co"
    monkeypatch.setenv(ENV_VAR, postgres_db.dsn)

    def create(provider: object, props: dict[str, object]) -> None:
        checked = provider.check({}, props)  # type: ignore[attr-defined]
        assert checked.failures == [], checked.failures
        provider.create(checked.inputs)  # type: ignore[attr-defined]

    create(
        QueueSchemaProvider(),
        {"ddl": plan.queue.ddl, "columns": dict(plan.queue.columns), "drop_table_on_delete": False},
    )
    for unit in plan.functions:
        create(
            SqlFunctionProvider(),
            {
                "schema": unit.spec.schema,
                "name": unit.spec.name,
                "identity_args": unit.spec.identity_args,
                "definition": unit.definition,
                "execute_grants": unit.execute_grants,
            },
        )
    values = {"supabase_url": url, "service_role_key": SERVICE_KEY}
    for secret in plan.secrets:
        create(
            VaultSecretProvider(),
            {"name": secret.name, "value": values[secret.variable], "description": secret.description},
        )
    trigger = plan.dispatch_trigger
    assert trigger is not None
    create(
        SqlObjectProvider(),
        {
            "name": trigger.name,
            "apply_sql": trigger.apply_sql,
            "drop_sql": trigger.drop_sql,
            "probe_sql": trigger.probe_sql,
            "expected": trigger.expected,
        },
    )
    for job in plan.cron_jobs:
        create(
            CronJobProvider(),
            {"name": job.name, "schedule": job.schedule, "command": job.command, "active": True},
        )
    through_providers = _snapshot(postgres_db)

    _clean(postgres_db)
    result = psql(postgres_db.dsn, render_script(config), tmp_path, variables={**values})
    assert result.returncode == 0, result.stderr
    through_script = _snapshot(postgres_db)

    assert len(through_script["functions"]) == len(functions())
    assert len(through_script["jobs"]) == len(CRON_JOBS)
    for key in _SNAPSHOT:
        assert through_providers[key] == through_script[key], key


def test_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "components", "render-sql", "--stack", "dev"],
        cwd=tmp_path,  # works from anywhere: the stack files are found next to Pulumi.yaml
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == render_script(load_stack_config(ROOT / "Pulumi.dev.yaml"), stack="dev")


def test_values_set_on_top_of_a_stack_file_as_config_set_would() -> None:
    local = ROOT / "Pulumi.local.yaml"
    config = load_stack_config(
        local, overrides={"batchSize": "7"}, secret_overrides={"bubbleApiToken": "t0k"}
    )
    assert (config.batch_size, config.bubble_api_token) == (7, "t0k")
    with pytest.raises(ConfigError, match="bubble-sync:bubbleApiToken: is stored in plain text"):
        load_stack_config(local, overrides={"bubbleApiToken": "t0k"})  # a secret set without --secret
    with pytest.raises(ConfigError, match="bubble-sync:batchSise: unknown key"):
        load_stack_config(local, overrides={"batchSise": "7"})

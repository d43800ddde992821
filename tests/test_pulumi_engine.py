"""The program under the real Pulumi engine: the CLI, the Python language host and the dynamic-provider
plugin, against a fresh PostgreSQL cluster with the real pg_cron (the devstack's Supabase-shaped database, so
`postgres` is no superuser) and the Management API double (`managementApiUrl`).

The commands are the README's and the workflows' own, read from those files (tests/engine_support.py), so a
change to one of them is tested here: the README's flow (`stack init`, `config set` and `--secret`, `preview`,
`up`), a second `up`, drift made by hand found by drift.yml's `preview --refresh --expect-no-changes` (exit 7)
and repaired by pulumi-up.yml's `up --refresh`, preview.yml's `preview --refresh --diff`, and `destroy`. Each
test checks the database, the double or the state afterwards, not only an exit code, and every CLI output and
the exported state are searched for the secrets' values.

Local differences from a Supabase stack, set on top of the README's commands: the database on 127.0.0.1
without TLS (dbPort, dbSslMode), the Management API double (managementApiUrl), and the extensions left to
the dashboard (manageExtensions false: the engine built here has no postgresql plugin; the devstack's database
has both extensions enabled, as the dashboard would). `up` and `destroy` get `--yes --non-interactive`: there
is no terminal to confirm at.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from components.sql.catalogue import functions
from devstack.cluster import free_port
from devstack.pulumi_engine import Engine
from tests.engine_support import (
    REF,
    STACK,
    Cli,
    Postgres,
    drift_exit_codes,
    fresh_postgres,
    make_stack_the_readme_way,
    new_cli,
    readme_flow,
    secrets_in,
    stack_values,
    workflow_command,
)
from tests.management_api_double import ManagementApiDouble, running_double

JOBS = [
    "bubble-sync-processor",
    "bubble-sync-retry",
    "bubble_sync.purge",
    "bubble_sync.verify",
    "bubble_sync.alerts",
]
OUR_FUNCTIONS = (
    "select n.nspname || '.' || p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
    " where n.nspname = 'bubble_sync' or p.proname like 'invoke_bubble_sync_%' order by 1"
)
DRIFT_CHECK = workflow_command("drift.yml", "pulumi preview --refresh --expect-no-changes")
DEPLOY = workflow_command("pulumi-up.yml", "pulumi up --refresh --yes")
PR_PREVIEW = workflow_command("preview.yml", "pulumi preview --refresh --diff")


@dataclass
class Project:
    """A stack made the README's way, and what it was made with."""

    cli: Cli
    postgres: Postgres
    api: ManagementApiDouble
    values: dict[str, str]
    secrets: dict[str, str]

    def workflow(self, args: list[str]) -> Any:
        return self.cli.run([a.replace("$STACK", STACK) for a in args])


# -- the README's flow ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    token = "sbp_enginetest_" + secrets.token_hex(16)
    with running_double(token) as api:
        with fresh_postgres(tmp_path_factory.mktemp("engine-pg")) as postgres:
            cli = new_cli(engine, tmp_path_factory.mktemp("engine-ws"))
            values, secret_values = stack_values(postgres, api, token)
            assert make_stack_the_readme_way(cli, values) == {}
            yield Project(cli, postgres, api, values, secret_values)


def test_the_readmes_preview_and_up_create_every_object(project: Project) -> None:
    remaining = [line for line in readme_flow() if line.split()[1] in ("preview", "up")]
    assert [line.split()[1] for line in remaining] == ["preview", "up"]
    preview = project.cli.shell_line(remaining[0], values=project.values, variables={})
    assert preview.code == 0, preview.output
    assert (
        "to create" in preview.output and project.postgres.query(OUR_FUNCTIONS) == []
    )  # a preview changes nothing

    up = project.cli.shell_line(remaining[1], values=project.values, variables={})
    assert up.code == 0, up.output

    db = project.postgres
    assert [row[0] for row in db.query("select jobname from cron.job where active order by 1")] == sorted(
        JOBS
    )
    live = [row[0] for row in db.query(OUR_FUNCTIONS)]
    assert "public.invoke_bubble_sync_processor" in live and "bubble_sync.claim" in live
    assert len(live) == len(functions())  # every function of sql/, nothing else
    vault = dict(db.query("select name, decrypted_secret from vault.decrypted_secrets"))
    assert vault == {
        "supabase_url": project.values["supabaseUrl"],
        "service_role_key": project.secrets["serviceRoleKey"],
    }
    assert db.query("select relrowsecurity from pg_class where oid = 'public.sync_queue'::regclass") == [
        (True,)
    ]
    function = project.api.function(REF, "bubble_sync")
    assert function is not None and function.verify_jwt is False
    assert project.api.our_secrets(REF)["BUBBLE_API_TOKEN"] == project.secrets["bubbleApiToken"]
    outputs = json.loads(project.cli.ok(["stack", "output", "--json", "--stack", STACK]))
    assert outputs["cronJobs"] == JOBS and outputs["edgeFunction"] == "bubble_sync"


def test_a_second_up_and_the_pr_preview_change_nothing(project: Project) -> None:
    deploys = len(project.api.deploys())
    up = project.workflow(DEPLOY)
    assert up.code == 0, up.output
    assert "created" not in up.output and "updated" not in up.output and "deleted" not in up.output
    assert len(project.api.deploys()) == deploys  # an unchanged function is not redeployed
    preview = project.workflow(PR_PREVIEW)
    assert preview.code == 0, preview.output
    assert "to create" not in preview.output and "to update" not in preview.output


def _unschedule_a_job(project: Project) -> str:
    project.postgres.execute("select cron.unschedule('bubble-sync-retry')")
    return "bubble-sync-job-bubble-sync-retry"


def _edit_a_function(project: Project) -> str:
    project.postgres.execute(
        "create or replace function public.invoke_bubble_sync_retry() returns bigint language sql"
        " set search_path = '' as $$ select 0::bigint $$"
    )
    return "bubble-sync-fn-public.invoke_bubble_sync_retry"


def _change_a_vault_secret(project: Project) -> str:
    project.postgres.execute(
        "select vault.update_secret(id, 'https://tampered.example') from vault.secrets"
        " where name = 'supabase_url'"
    )
    return "bubble-sync-secret-supabase_url"


def _delete_the_edge_function(project: Project) -> str:
    project.api.delete_function(REF, "bubble_sync")
    return "bubble-sync-edge-function"


def _live_state(project: Project) -> Any:
    db = project.postgres
    return (
        db.query("select jobname, schedule, command, active from cron.job order by 1"),
        db.query(
            "select p.proname, p.prosrc from pg_proc p where p.proname like 'invoke_bubble_sync_%' order by 1"
        ),
        db.query("select name, decrypted_secret from vault.decrypted_secrets order by 1"),
        project.api.function(REF, "bubble_sync") is not None,
    )


@pytest.mark.parametrize(
    "make_drift",
    [_unschedule_a_job, _edit_a_function, _change_a_vault_secret, _delete_the_edge_function],
    ids=["job unscheduled", "function edited", "Vault secret changed", "Edge Function deleted"],
)
def test_drift_is_reported_by_the_drift_workflow_and_repaired_by_the_deploy_workflow(
    project: Project, make_drift: Any
) -> None:
    codes = drift_exit_codes()
    assert codes[0] == "clean" and codes[7] == "drift"
    before = _live_state(project)
    resource = make_drift(project)
    assert _live_state(project) != before

    check = project.workflow(DRIFT_CHECK)
    assert codes.get(check.code) == "drift", check.output
    assert resource in check.output

    repair = project.workflow(DEPLOY)
    assert repair.code == 0, repair.output
    assert codes.get(project.workflow(DRIFT_CHECK).code) == "clean"
    assert _live_state(project) == before


def test_no_secret_is_stored_or_printed_in_plain_text(project: Project) -> None:
    state = project.cli.ok(["stack", "export", "--stack", STACK])
    stored = [state, project.cli.workspace.stack_file(STACK).read_text()]
    stored += [
        p.read_text(errors="replace") for p in project.cli.workspace.backend_dir.rglob("*") if p.is_file()
    ]
    assert secrets_in("\n".join(stored), project.secrets) == []
    assert secrets_in("\n".join(project.cli.transcript), project.secrets) == []
    # They are in the state, encrypted: the Vault secret's value is a secret output.
    deployment = json.loads(state)["deployment"]
    vault = next(
        r for r in deployment["resources"] if r["urn"].endswith("bubble-sync-secret-service_role_key")
    )
    assert vault["outputs"]["value"]["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270"


def test_destroy_removes_what_it_made_and_keeps_the_queue_rows(project: Project) -> None:
    db = project.postgres
    db.execute(
        "insert into public.sync_queue (table_name, record_id, operation, payload)"
        " values ('profiles', 'kept-1', 'INSERT', '{}'), ('profiles', 'kept-2', 'INSERT', '{}')"
    )
    destroy = project.cli.run(["destroy", "--stack", STACK, "--yes", "--non-interactive"])
    assert destroy.code == 0, destroy.output

    assert db.query("select jobname from cron.job") == []
    assert db.query(OUR_FUNCTIONS) == []
    assert db.query("select name from vault.secrets") == []
    assert db.query("select 1 from pg_namespace where nspname = 'bubble_sync'") == []
    assert project.api.function(REF, "bubble_sync") is None and project.api.our_secrets(REF) == {}
    assert db.query("select record_id from public.sync_queue order by 1") == [("kept-1",), ("kept-2",)]
    assert db.query("select count(*) from pg_extension where extname in ('pg_cron', 'pg_net')") == [(2,)]
    resources = json.loads(project.cli.ok(["stack", "export", "--stack", STACK]))["deployment"].get(
        "resources"
    )
    assert not resources


# -- adopting the original plan's hand-made setup ------------------------------------------------------------

HAND_MADE_SETUP = """
create table public.sync_queue (
  id uuid primary key default gen_random_uuid(),
  table_name varchar(100) not null, record_id varchar(100) not null, operation varchar(20),
  payload jsonb, status varchar(20) not null default 'pending', error_message text,
  retry_count smallint default 0, max_retries smallint default 3, next_retry_at timestamptz,
  created_at timestamptz default now()
);
insert into public.sync_queue (table_name, record_id, operation, status, retry_count)
  values ('profiles', 'u1', 'INSERT', 'pending', 0), ('profiles', 'u2', 'INSERT', 'failed', 1),
         ('profiles', 'u3', 'INSERT', 'completed', 0);
select vault.create_secret('https://old.supabase.co', 'supabase_url');
select vault.create_secret('old-service-role-key', 'service_role_key');
create or replace function public.invoke_bubble_sync_processor() returns void language plpgsql as $$
begin
  perform net.http_post(
    url := (select decrypted_secret from vault.decrypted_secrets where name = 'supabase_url')
           || '/functions/v1/bubble_sync',
    body := '{"action": "process_queue_data_api"}'::jsonb);
end $$;
create or replace function public.invoke_bubble_sync_retry() returns void language plpgsql as $$
begin
  perform net.http_post(
    url := (select decrypted_secret from vault.decrypted_secrets where name = 'supabase_url')
           || '/functions/v1/bubble_sync',
    body := '{"action": "retry_failed"}'::jsonb);
end $$;
select cron.schedule('bubble-sync-processor', '* * * * *', 'SELECT invoke_bubble_sync_processor()');
select cron.schedule('bubble-sync-retry', '*/5 * * * *', 'SELECT invoke_bubble_sync_retry()');
"""

# The seed's verification queries (PGCRON_SETUP_SUMMARY.md), unchanged.
SEED_JOBS = (
    "SELECT jobname, schedule, active FROM cron.job WHERE jobname LIKE 'bubble-sync%' ORDER BY jobname"
)
SEED_SECRETS = (
    "SELECT name FROM vault.secrets WHERE name IN ('supabase_url', 'service_role_key') ORDER BY name"
)
SEED_FUNCTIONS = (
    "SELECT proname FROM pg_proc"
    " WHERE proname IN ('invoke_bubble_sync_processor', 'invoke_bubble_sync_retry') ORDER BY proname"
)


def test_a_stack_adopts_the_hand_made_setup_without_losing_a_row(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = "sbp_enginetest_" + secrets.token_hex(16)
    with running_double(token) as api:
        with fresh_postgres(tmp_path_factory.mktemp("adopt-pg")) as postgres:
            postgres.execute(HAND_MADE_SETUP)
            rows = postgres.query(
                "select id, record_id, status, retry_count from public.sync_queue order by 2"
            )
            cli = new_cli(engine, tmp_path_factory.mktemp("adopt-ws"))
            values, secret_values = stack_values(postgres, api, token)
            assert make_stack_the_readme_way(cli, values) == {}

            up = cli.run(["up", "--stack", STACK, "--yes", "--non-interactive"])
            assert up.code == 0, up.output
            assert (
                postgres.query("select id, record_id, status, retry_count from public.sync_queue order by 2")
                == rows
            )
            assert postgres.query(SEED_JOBS) == [
                ("bubble-sync-processor", "* * * * *", True),
                ("bubble-sync-retry", "*/5 * * * *", True),
            ]
            assert postgres.query(SEED_SECRETS) == [("service_role_key",), ("supabase_url",)]
            assert postgres.query(SEED_FUNCTIONS) == [
                ("invoke_bubble_sync_processor",),
                ("invoke_bubble_sync_retry",),
            ]
            # Ours now: the stack's values in Vault, our command in the jobs, no duplicate secret or job.
            assert dict(postgres.query("select name, decrypted_secret from vault.decrypted_secrets")) == {
                "supabase_url": values["supabaseUrl"],
                "service_role_key": secret_values["serviceRoleKey"],
            }
            assert len(postgres.query("select 1 from cron.job where jobname like 'bubble-sync%'")) == 2
            check = cli.run([a.replace("$STACK", STACK) for a in DRIFT_CHECK])
            assert check.code == 0, check.output

            # Destroy hands the adopted setup back: rows and the secrets that were there before stay.
            destroy = cli.run(["destroy", "--stack", STACK, "--yes", "--non-interactive"])
            assert destroy.code == 0, destroy.output
            assert (
                postgres.query("select id, record_id, status, retry_count from public.sync_queue order by 2")
                == rows
            )
            assert postgres.query(SEED_SECRETS) == [("service_role_key",), ("supabase_url",)]
            assert secrets_in("\n".join(cli.transcript), secret_values) == []


# -- a database the stack cannot use -------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["wrong password", "nothing listening"])
def test_a_database_it_cannot_reach_fails_naming_the_cause_and_hiding_the_password(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, fault: str
) -> None:
    token = "sbp_enginetest_" + secrets.token_hex(16)
    with running_double(token) as api:
        with fresh_postgres(tmp_path_factory.mktemp("fault-pg")) as postgres:
            cli = new_cli(engine, tmp_path_factory.mktemp("fault-ws"))
            values, secret_values = stack_values(postgres, api, token)
            if fault == "wrong password":
                values["dbPassword"] = secret_values["dbPassword"] = "wrong-" + secrets.token_hex(8)
                cause = 'password authentication failed for user "postgres"'
            else:
                values["dbPort"] = str(free_port())
                cause = "Connection refused"
            assert make_stack_the_readme_way(cli, values) == {}
            up = cli.run(["up", "--stack", STACK, "--yes", "--non-interactive"])
            assert up.code != 0
            assert "cannot connect to the database" in up.output and cause in up.output, up.output
            assert secrets_in("\n".join(cli.transcript), secret_values) == []
            assert (
                postgres.query(OUR_FUNCTIONS) == [] and postgres.query("select jobname from cron.job") == []
            )


def test_the_cli_refuses_a_stack_missing_a_required_secret_and_the_program_a_plain_one(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cli = new_cli(engine, tmp_path_factory.mktemp("config-ws"))
    assert cli.run(["stack", "init", STACK]).code == 0
    for key, value in [("projectRef", REF), ("bubbleBaseUrl", "https://x.bubbleapps.io/api/1.1")]:
        cli.ok(["config", "set", "--stack", STACK, key, value])
    cli.ok(["config", "set", "--stack", STACK, "--secret", "bubbleApiToken"], input="t0ken-value")
    missing = cli.run(["preview", "--stack", STACK, "--non-interactive"])
    assert missing.code != 0
    assert "Stack 'dev' is missing configuration value 'serviceRoleKey'" in missing.output

    cli.ok(["config", "set", "--stack", STACK, "--secret", "serviceRoleKey"], input="svc-key-value")
    cli.ok(["config", "set", "--stack", STACK, "dbHost", "127.0.0.1"])
    cli.ok(["config", "set", "--stack", STACK, "dbPassword", "plain-password"])  # forgot --secret
    plain = cli.run(["preview", "--stack", STACK, "--non-interactive"])
    assert plain.code != 0
    assert "bubble-sync:dbPassword: is stored in plain text but is a secret" in plain.output
    assert "plain-password" not in plain.output

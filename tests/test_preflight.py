"""`python -m components preflight`: each check passing on a Supabase-shaped database and the Management API
double, and failing the way a user's project can make it fail, with the output's shape, the exit codes, and
no secret in any output (text and JSON) of any failing run.

Why one module: its tests share the `Run` harness and the stack and environment builders, and walk the
command's checks in the order preflight runs them, from the stack file through the database to the Management
API.

The database checks run against real PostgreSQL 15 with the real pg_cron and the devstack's pg_net and Vault
doubles: `cron_db` (the cluster's `postgres` database, where pg_cron is installed and runs jobs; preflight
only reads it) or a fresh copy of the Supabase-shaped template (`db`, where pg_cron is not installed and
`postgres` may not create it). The Management API checks run against tests/management_api_double.py, alone
(`groups=(management_api,)`), so they do not depend on a database.
"""

from __future__ import annotations

import io
import json
import socket
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest

from components import preflight
from components.__main__ import main
from components.preflight import database, management_api
from components.preflight.checks import CheckResult, Context, Status, failed, ok, skipped
from devstack.bubble_double import BubbleDouble
from devstack.cluster import Cluster, free_port
from tests.conftest import Database
from tests.management_api_double import ManagementApiDouble, running_double

STACK = "pf"
REF = "abcdefghijklmnopqrst"
TOKEN = "sbp_preflight_TOKEN_9f3a7c"
ENCRYPTED = {"secure": "v1:AAAAAAAAAAAAAAAA:not-readable-here"}
DB_CHECKS = (
    "database.connection",
    "database.server_version",
    "database.pg_cron",
    "database.pg_cron_database",
    "database.pg_net",
    "database.vault",
)
BUBBLE_TOKEN = "bubble-token-for-preflight-5d2e9a"
BUBBLE_READS = tuple(
    f"bubble.{name}"
    for name in (
        "token",
        "reachable",
        "token_accepted",
        "data_type",
        "key_field",
        "email_lookup",
        "rate_limit",
    )
)
BUBBLE_WRITES = ("bubble.write_create", "bubble.write_modify", "bubble.used_email", "bubble.write_delete")
API_CHECKS = (
    "management_api.token",
    "management_api.functions",
    "management_api.secrets",
    "management_api.write_scopes",
)


# -- helpers -------------------------------------------------------------------------------------------------


@contextmanager
def _bubble_app() -> Iterator[str]:
    """A Bubble app (the double) whose users carry the key field and one user: its version-test base URL."""
    with BubbleDouble(token=BUBBLE_TOKEN, schema={"user": ["supabase_id"]}) as bubble:
        made = httpx.post(
            f"{bubble.url}/version-test/api/1.1/obj/user",
            json={"email": "ada@example.com"},
            headers={"Authorization": f"Bearer {BUBBLE_TOKEN}"},
        )
        assert made.status_code == 201
        yield f"{bubble.url}/version-test/api/1.1"


def _password(dsn: str) -> str:
    password = urlsplit(dsn).password
    assert password
    return password


def _stack(tmp_path: Path, db: Database | None = None, **config: Any) -> Path:
    """Pulumi.pf.yaml as a user writes it: the connection of `db` (its password encrypted), every required
    secret encrypted, the Edge Function deploy off unless `config` says otherwise."""
    values: dict[str, Any] = {
        "projectRef": REF,
        "serviceRoleKey": ENCRYPTED,
        "bubbleBaseUrl": "https://example.bubbleapps.io/version-test/api/1.1",
        "bubbleApiToken": ENCRYPTED,
        "deployEdgeFunction": False,
    }
    if db is not None:
        parts = urlsplit(db.dsn)
        values.update(
            dbHost=parts.hostname,
            dbPort=parts.port,
            dbName=parts.path.lstrip("/"),
            dbSslMode="disable",
            dbPassword=ENCRYPTED,
        )
    values.update(config)
    lines = ["config:"]
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, dict):
            lines += [f"  bubble-sync:{key}:", f"    secure: {value['secure']}"]
        else:
            lines.append(f"  bubble-sync:{key}: {json.dumps(value)}")
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def _env(db: Database | None = None, **extra: str) -> dict[str, str]:
    """The environment a user gives preflight: the database password, and a token it must never print."""
    env = {"SUPABASE_ACCESS_TOKEN": TOKEN}
    if db is not None:
        env["PGPASSWORD"] = _password(db.dsn)
    env.update(extra)
    return {k: v for k, v in env.items() if v}


class Run:
    """One preflight run, in both formats: exit code, text output, the JSON document's checks by id."""

    def __init__(self, project: Path, env: Mapping[str, str], **kwargs: Any) -> None:
        out, err = io.StringIO(), io.StringIO()
        self.code = preflight.run_preflight(
            STACK, project_dir=project, environ=env, out=out, err=err, **kwargs
        )
        self.text, self.err = out.getvalue(), err.getvalue()
        out, err = io.StringIO(), io.StringIO()
        json_code = preflight.run_preflight(
            STACK, project_dir=project, environ=env, as_json=True, out=out, err=err, **kwargs
        )
        assert json_code == self.code
        self.json_text = out.getvalue()
        self.document = json.loads(self.json_text)
        self.checks = {c["id"]: c for c in self.document["checks"]}

    def status(self, check: str) -> str:
        return self.checks[check]["status"]

    def line(self, check: str) -> str:
        title = self.checks[check]["title"]
        (found,) = [line for line in self.text.splitlines() if line[2:].startswith(title)]
        return found

    def assert_never_shows(self, *secrets: str) -> None:
        everything = self.text + self.err + self.json_text
        for secret in secrets:
            assert secret and secret not in everything, f"a secret is printed: {everything}"
            assert quote(secret, safe="") not in everything


def _db_only(project: Path, env: Mapping[str, str]) -> Run:
    return Run(project, env, groups=(database,))


def _api_only(project: Path, env: Mapping[str, str], **kwargs: Any) -> Run:
    return Run(project, env, groups=(management_api,), **kwargs)


def _admin(db: Database, sql: str) -> None:
    with db.connect_admin() as conn:
        conn.execute(sql)


# -- the whole command ---------------------------------------------------------------------------------------


def test_every_check_passes_on_a_supabase_shaped_project(cron_db: Database, tmp_path: Path) -> None:
    with running_double(TOKEN) as double, _bubble_app() as bubble:
        project = _stack(
            tmp_path, cron_db, deployEdgeFunction=True, managementApiUrl=double.url, bubbleBaseUrl=bubble
        )
        run = Run(project, _env(cron_db, BUBBLE_API_TOKEN=BUBBLE_TOKEN))
        exchanges = list(double.exchanges)

    assert run.code == 0, run.text
    assert run.document["ok"] is True and run.document["exit_code"] == 0
    assert [c["id"] for c in run.document["checks"]] == [
        *DB_CHECKS,
        *API_CHECKS,
        *BUBBLE_READS,
        *BUBBLE_WRITES,
        "mappings.source",
    ]
    for check in (*DB_CHECKS, *API_CHECKS[:-1], *BUBBLE_READS):
        assert run.status(check) == "ok", run.checks[check]
    assert run.status("management_api.write_scopes") == "skipped"
    assert {run.status(check) for check in BUBBLE_WRITES} == {"skipped"}  # read-only without --write-probe
    # a stack without mappings (none in its config, none deployed in the database): nothing to check
    assert run.status("mappings.source") == "skipped"
    assert "no mappings in the stack config nor in the database" in run.checks["mappings.source"]["detail"]
    assert {c["group"] for c in run.document["checks"]} == {
        "database",
        "management_api",
        "bubble",
        "mappings",
    }
    assert set(run.document["checks"][0]) == {"id", "group", "title", "status", "detail", "fix"}

    lines = run.text.splitlines()
    checks = len(DB_CHECKS) + len(API_CHECKS) + len(BUBBLE_READS) + len(BUBBLE_WRITES) + 1
    assert len(lines) == checks + 1  # one per check, then the summary
    assert all(line.startswith("✓ ") for line in lines[:9]), run.text
    assert lines[9].startswith("- Management API write scopes") and ": skipped (" in lines[9]
    assert all(line.startswith("✓ ") for line in lines[10:17]), run.text
    assert lines[-1] == f"preflight of stack {STACK}: 16 ok, 0 failed, 0 warnings, 6 skipped (exit 0)"
    port = urlsplit(cron_db.dsn).port
    assert run.line("database.connection") == (
        f"✓ database reachable (postgres@127.0.0.1:{port}/postgres, sslmode disable): "
        "as postgres, database postgres"
    )
    assert "pg_cron 1.4" in run.checks["database.pg_cron"]["detail"]
    assert run.checks["database.pg_cron_database"]["detail"] == "cron.database_name is postgres"
    assert "bubble_sync not deployed yet" in run.checks["management_api.functions"]["detail"]
    run.assert_never_shows(TOKEN, _password(cron_db.dsn), BUBBLE_TOKEN)

    # Read-only: two GETs per run (text and JSON), each a path of the official spec.
    assert {(e.method, e.path) for e in exchanges} == {
        ("GET", f"/v1/projects/{REF}/functions"),
        ("GET", f"/v1/projects/{REF}/secrets"),
    }
    spec = json.loads(
        (Path(__file__).parent / "contracts" / "supabase-management-api.functions.json").read_text()
    )
    for path in ("/v1/projects/{ref}/functions", "/v1/projects/{ref}/secrets"):
        assert "get" in spec["paths"][path]


def test_the_command_line(
    cron_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _bubble_app() as bubble:
        project = _stack(tmp_path, cron_db, bubbleBaseUrl=bubble)
        for name in ("BUBBLE_SYNC_DATABASE_URL", "SUPABASE_ACCESS_TOKEN", "PGPASSWORD"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PGPASSWORD", _password(cron_db.dsn))
        monkeypatch.setenv("BUBBLE_API_TOKEN", BUBBLE_TOKEN)
        args = ["preflight", "--stack", STACK, "--project-dir", str(project)]
        code = main([*args, "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert {c["status"] for c in document["checks"] if c["group"] == "management_api"} == {"skipped"}
    api_checks = document["checks"][len(DB_CHECKS) : len(DB_CHECKS) + len(API_CHECKS)]
    assert all("deployEdgeFunction is false" in c["detail"] for c in api_checks)

    monkeypatch.setenv("PGPASSWORD", "Wrong-Pass-4b1d")
    assert main([*args, "--write-probe"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("✗ database reachable") and "Wrong-Pass-4b1d" not in out


def test_help_documents_the_exit_codes_and_the_write_probe(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["preflight", "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 the stack config"
        in help_text
    )
    assert "--write-probe" in help_text and "never write" in help_text
    assert "--json" in help_text and "--stack NAME" in help_text


# -- the stack config: exit 2 --------------------------------------------------------------------------------


def _config_error(project: Path, *, as_json: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = preflight.run_preflight(
        STACK, project_dir=project, environ=_env(), as_json=as_json, out=out, err=err
    )
    assert code == preflight.EXIT_CONFIG == 2
    return out.getvalue(), err.getvalue()


def test_an_invalid_stack_exits_2_naming_each_key_and_runs_no_check(tmp_path: Path) -> None:
    project = _stack(tmp_path, dbHost="127.0.0.1", dbPassword="Plain-Text-Pass-77", dispatchMode="sometimes")
    out, err = _config_error(project)
    assert out == ""
    assert "bubble-sync:dbPassword: is stored in plain text but is a secret" in err
    assert "bubble-sync:dispatchMode: must be one of immediate | cron" in err
    assert "no check ran (exit 2)" in err
    assert "Plain-Text-Pass-77" not in err

    out, err = _config_error(project, as_json=True)
    document = json.loads(out)
    assert document["ok"] is False and document["exit_code"] == 2 and document["checks"] == []
    assert {p["key"] for p in document["config_problems"]} == {"dbPassword", "dispatchMode"}
    assert "Plain-Text-Pass-77" not in out + err

    _out, err = _config_error(_stack(tmp_path, batchSzie=10))
    assert "bubble-sync:batchSzie: unknown key in Pulumi.pf.yaml (did you mean batchSize?)" in err


def test_a_stack_missing_a_required_key_exits_2(tmp_path: Path) -> None:
    """render-sql needs neither the project ref nor the secrets; pulumi up (and so preflight) does."""
    _out, err = _config_error(_stack(tmp_path, projectRef=None, serviceRoleKey=None))
    assert "bubble-sync:projectRef: is required" in err and "`pulumi config set projectRef <value>`" in err
    assert "bubble-sync:serviceRoleKey: is required" in err
    assert "`pulumi config set --secret serviceRoleKey <value>`" in err


def test_no_stack_file_or_broken_yaml_exits_2(tmp_path: Path) -> None:
    err = io.StringIO()
    assert preflight.run_preflight("nope", project_dir=tmp_path, environ={}, out=io.StringIO(), err=err) == 2
    assert "no stack file" in err.getvalue() and "(stacks here: none)" in err.getvalue()

    (tmp_path / "Pulumi.pf.yaml").write_text("config:\n  bubble-sync:dbPassword: [Secret-In-Yaml\n")
    err = io.StringIO()
    assert preflight.run_preflight(STACK, project_dir=tmp_path, environ={}, out=io.StringIO(), err=err) == 2
    assert "Pulumi.pf.yaml is not valid YAML" in err.getvalue() and "Secret-In-Yaml" not in err.getvalue()


# -- the frame -----------------------------------------------------------------------------------------------


def _group(name: str, body: Any) -> Any:
    return SimpleNamespace(GROUP=name, checks=body)


def test_a_group_that_raises_is_one_failed_check_and_the_next_group_still_runs(tmp_path: Path) -> None:
    seen: list[bool] = []

    def broken(ctx: Context) -> Iterator[CheckResult]:
        yield ok("broken.first", "first")
        raise RuntimeError(f"boom with postgresql://u:{TOKEN}@h/db and {TOKEN}")

    def later(ctx: Context) -> Iterator[CheckResult]:
        seen.append(ctx.write_probe)
        assert ctx.result("broken.first") is not None  # an earlier group's results are visible
        yield skipped("later.x", "x", "nothing to do")

    project = _stack(tmp_path)
    run = Run(project, _env(), groups=(_group("broken", broken), _group("later", later)), write_probe=True)
    assert run.code == 1
    assert [c["id"] for c in run.document["checks"]] == ["broken.first", "broken.error", "later.x"]
    error = run.checks["broken.error"]
    assert (
        error["status"] == "failed"
        and "RuntimeError: boom with postgresql://u:***@h/db and ***" in error["detail"]
    )
    assert "bug in preflight" in error["fix"]
    assert seen == [True, True]  # --write-probe reaches every group, in both runs
    run.assert_never_shows(TOKEN)


def test_a_check_id_outside_its_group_is_reported_as_a_bug(tmp_path: Path) -> None:
    def stray(ctx: Context) -> Iterator[CheckResult]:
        yield ok("other.thing", "thing")

    run = Run(_stack(tmp_path), _env(), groups=(_group("mine", stray),))
    assert [c["id"] for c in run.document["checks"]] == ["mine.error"]
    assert "outside its group" in run.checks["mine.error"]["detail"]


def test_output_lines_and_exit_codes() -> None:
    results = [
        ok("g.a", "A", "found"),
        failed("g.b", "B", "is wrong", "do this"),
        CheckResult("g.c", "C", Status.WARNING, "careful", "maybe that"),
        skipped("g.d", "D", "B failed"),
        ok("g.e", "E"),
    ]
    results = [CheckResult(r.id, r.title, r.status, r.detail, r.fix, "g") for r in results]
    text = preflight.report.render_text(results, stack="s")
    assert text.splitlines() == [
        "✓ A: found",
        "✗ B: is wrong — fix: do this",
        "! C: careful — fix: maybe that",
        "- D: skipped (B failed)",
        "✓ E",
        "preflight of stack s: 2 ok, 1 failed, 1 warnings, 1 skipped (exit 1)",
    ]
    assert preflight.report.exit_code(results) == 1
    assert preflight.report.exit_code([r for r in results if r.status is not Status.FAILED]) == 0
    document = json.loads(preflight.report.render_json(results, stack="s"))
    assert document["ok"] is False
    assert document["checks"][2] == {
        "id": "g.c", "group": "g", "title": "C", "status": "warning", "detail": "careful",
        "fix": "maybe that",
    }  # fmt: skip


def test_redaction(tmp_path: Path) -> None:
    ctx = preflight.stack.load_context(
        STACK,
        _stack(tmp_path),
        environ={"PGPASSWORD": "p@ss word", "BUBBLE_SYNC_DATABASE_URL": "postgresql://u:Url-Pass-1@h/db"},
    )
    ctx.add_secret("registered-secret")
    text = (
        "a postgresql://someone:other-pass@host:5432/db?sslmode=require b host=h password=dsn-pass c "
        "p@ss word p%40ss%20word Url-Pass-1 registered-secret"
    )
    shown = ctx.redact(text)
    for secret in ("other-pass", "dsn-pass", "p@ss word", "p%40ss%20word", "Url-Pass-1", "registered-secret"):
        assert secret not in shown
    assert "postgresql://someone:***@host:5432/db?sslmode=require" in shown and "password=***" in shown


# -- the database --------------------------------------------------------------------------------------------


def test_a_wrong_password_fails_the_connection_and_skips_the_rest(db: Database, tmp_path: Path) -> None:
    run = _db_only(_stack(tmp_path, db), _env(db, PGPASSWORD="Wrong-Pass-4b1d"))
    assert run.code == 1
    connection = run.checks["database.connection"]
    assert connection["status"] == "failed" and "password authentication failed" in connection["detail"]
    assert "check dbUser and the password" in connection["fix"]
    for key in ("dbHost", "dbPort", "dbUser", "dbPassword", "databaseUrl", "session pooler"):
        assert key in connection["fix"]
    assert f"user postgres.{REF}" in connection["fix"]
    for check in DB_CHECKS[1:]:
        assert (
            run.status(check) == "skipped" and run.checks[check]["detail"] == "the database cannot be reached"
        )
    assert (
        run.line("database.pg_cron")
        == "- pg_cron installed or installable: skipped (the database cannot be reached)"
    )
    run.assert_never_shows("Wrong-Pass-4b1d", _password(db.dsn), TOKEN)


def test_a_closed_port_fails_the_connection_naming_host_port_and_the_pooler(
    db: Database, tmp_path: Path
) -> None:
    port = free_port()
    run = _db_only(_stack(tmp_path, db, dbPort=port), _env(db))
    connection = run.checks["database.connection"]
    assert run.code == 1 and connection["status"] == "failed"
    assert f"127.0.0.1:{port}" in connection["title"] and "refused" in connection["detail"].lower()
    assert connection["fix"].startswith("check dbHost and dbPort (or databaseUrl)")
    assert "aws-0-<region>.pooler.supabase.com, port 5432" in connection["fix"]
    assert (
        run.line("database.connection").startswith("✗ database reachable (")
        and " — fix: check dbHost" in run.text
    )
    run.assert_never_shows(_password(db.dsn), TOKEN)


def test_without_the_password_preflight_says_how_to_give_it(db: Database, tmp_path: Path) -> None:
    run = _db_only(_stack(tmp_path, db), _env())
    connection = run.checks["database.connection"]
    assert run.code == 1 and connection["status"] == "failed"
    assert 'PGPASSWORD="$(pulumi config get dbPassword --stack pf)"' in connection["detail"]
    assert all(run.status(c) == "skipped" for c in DB_CHECKS[1:])
    run.assert_never_shows(TOKEN)


def test_a_database_where_postgres_cannot_create_pg_cron(db: Database, tmp_path: Path) -> None:
    """The template copy: pg_cron is on the server but not here, `postgres` is no superuser and pg_cron is not
    trusted, and nothing like supautils lists it. pg_net and Vault are installed as on Supabase."""
    run = _db_only(_stack(tmp_path, db), _env(db))
    assert run.code == 1
    cron = run.checks["database.pg_cron"]
    assert cron["status"] == "failed"
    assert cron["detail"] == (
        "pg_cron is not installed, and postgres cannot create it: it is not a superuser, and the extension "
        "is neither trusted nor in supautils.privileged_extensions"
    )
    assert cron["fix"] == (
        "enable pg_cron in the Supabase dashboard (Database > Extensions) and set manageExtensions to false"
    )
    assert run.status("database.pg_cron_database") == "skipped"
    assert run.checks["database.pg_cron_database"]["detail"] == "pg_cron is not usable here; see above"
    assert (
        run.status("database.pg_net") == "ok"
        and "pg_net 0.20.4 in schema extensions" in run.checks["database.pg_net"]["detail"]
    )
    assert run.status("database.vault") == "ok"
    assert run.status("database.connection") == "ok" and run.status("database.server_version") == "ok"
    run.assert_never_shows(_password(db.dsn), TOKEN)


def test_pg_cron_installable_through_supautils_but_jobs_would_run_elsewhere(
    db: Database, tmp_path: Path
) -> None:
    """supautils' list makes pg_cron creatable by postgres, as on Supabase; but cron.database_name is
    `postgres`, not this database, so its jobs would never run here."""
    _admin(db, f"alter database \"{db.name}\" set supautils.privileged_extensions = 'pg_cron, pg_net'")
    run = _db_only(_stack(tmp_path, db), _env(db))
    cron = run.checks["database.pg_cron"]
    assert cron["status"] == "ok"
    assert cron["detail"] == (
        "not installed yet; pulumi up will create it "
        "(supautils.privileged_extensions lets postgres create it)"
    )
    where = run.checks["database.pg_cron_database"]
    assert where["status"] == "failed" and run.code == 1
    assert where["detail"] == (
        "pg_cron runs jobs only in database postgres (cron.database_name), "
        f"and this stack connects to {db.name}"
    )
    assert where["fix"].startswith("set dbName to postgres")
    run.assert_never_shows(_password(db.dsn), TOKEN)


def test_pg_cron_database_unreadable_is_a_warning(cluster: Cluster, db: Database, tmp_path: Path) -> None:
    """A role without pg_read_all_settings may not read cron.database_name: a warning, not a failure."""
    role, password = f"pf_{uuid.uuid4().hex[:8]}", "Role-Pass-5e2"
    cluster.psql(f"create role {role} login password '{password}'")
    try:
        _admin(db, f'grant create on database "{db.name}" to {role}')
        _admin(db, f"alter database \"{db.name}\" set supautils.privileged_extensions = 'pg_cron'")
        run = _db_only(_stack(tmp_path, db, dbUser=role), _env(db, PGPASSWORD=password))
        where = run.checks["database.pg_cron_database"]
        assert run.status("database.pg_cron") == "ok", run.checks["database.pg_cron"]
        assert where["status"] == "warning" and "needs pg_read_all_settings" in where["detail"]
        assert run.line("database.pg_cron_database").startswith("! pg_cron runs jobs in this database: ")
        run.assert_never_shows(password, TOKEN)
    finally:
        _admin(db, f'revoke all on database "{db.name}" from {role}')
        cluster.psql(f"drop role {role}")


def test_a_role_without_privileges(cluster: Cluster, db: Database, tmp_path: Path) -> None:
    role, password = f"pf_{uuid.uuid4().hex[:8]}", "Role-Pass-7c4"
    cluster.psql(f"create role {role} login password '{password}'")
    try:
        _admin(db, f'revoke create on database "{db.name}" from public')
        run = _db_only(_stack(tmp_path, db, dbUser=role), _env(db, PGPASSWORD=password))
        assert run.code == 1 and run.status("database.connection") == "ok"
        assert run.checks["database.connection"]["detail"] == f"as {role}, database {db.name}"
        cron = run.checks["database.pg_cron"]
        assert cron["status"] == "failed" and "it has no CREATE privilege on the database" in cron["detail"]
        assert cron["fix"].endswith("; or connect as postgres (dbUser), whom Supabase lets create it")
        vault = run.checks["database.vault"]
        assert vault["status"] == "failed"
        assert vault["detail"] == (
            f"{role} lacks USAGE on schema vault, EXECUTE on vault.create_secret, EXECUTE on "
            "vault.update_secret, SELECT on vault.decrypted_secrets, SELECT on vault.secrets, DELETE on "
            "vault.secrets"
        )
        assert vault["fix"].startswith("connect as postgres (dbUser; postgres.<projectRef> on the pooler)")
        run.assert_never_shows(password, _password(db.dsn), TOKEN)
    finally:
        cluster.psql(f"drop role {role}")


def test_pg_net_missing_is_created_by_a_managing_stack_and_refused_by_one_that_is_not(
    db: Database, tmp_path: Path
) -> None:
    _admin(db, "drop extension pg_net cascade")
    run = _db_only(_stack(tmp_path, db), _env(db))
    net = run.checks["database.pg_net"]
    assert net["status"] == "ok"
    assert net["detail"] == (
        "not installed yet; pulumi up will create it (it is a trusted extension and postgres may create in "
        "this database)"
    )
    with db.connect() as conn:  # read-only: judged installable, not installed
        assert conn.execute("select count(*) from pg_extension where extname = 'pg_net'").fetchone() == (0,)

    run = _db_only(_stack(tmp_path, db, manageExtensions=False), _env(db))
    net = run.checks["database.pg_net"]
    assert net["status"] == "failed" and run.code == 1
    assert "not enabled in this database, and manageExtensions is false" in net["detail"]
    assert net["fix"] == (
        "enable pg_net in the Supabase dashboard (Database > Extensions), or set manageExtensions to true so "
        "that pulumi up creates it"
    )
    run.assert_never_shows(_password(db.dsn), TOKEN)


def test_pg_net_installed_but_not_callable(db: Database, tmp_path: Path) -> None:
    _admin(
        db,
        "revoke execute on function net.http_post(text, jsonb, jsonb, jsonb, integer) from public, postgres",
    )
    run = _db_only(_stack(tmp_path, db), _env(db))
    net = run.checks["database.pg_net"]
    assert net["status"] == "failed"
    assert net["detail"] == (
        "pg_net 0.20.4 in schema extensions is installed, but postgres lacks EXECUTE on net.http_post"
    )


def test_vault_missing_or_unreadable(db: Database, tmp_path: Path) -> None:
    # postgres inherits service_role's grants (has_table_privilege counts them, as a query would)
    _admin(db, "revoke select on vault.decrypted_secrets from postgres, service_role")
    run = _db_only(_stack(tmp_path, db), _env(db))
    vault = run.checks["database.vault"]
    assert (
        vault["status"] == "failed" and vault["detail"] == "postgres lacks SELECT on vault.decrypted_secrets"
    )

    _admin(db, "drop extension supabase_vault cascade")
    _admin(db, "drop schema if exists vault cascade")
    run = _db_only(_stack(tmp_path, db), _env(db))
    vault = run.checks["database.vault"]
    assert vault["status"] == "failed" and "Vault (supabase_vault) is not enabled" in vault["detail"]
    assert "supabase_vault" in vault["fix"]
    run.assert_never_shows(_password(db.dsn), TOKEN)


def test_a_stack_without_a_host_takes_the_url_from_the_environment(cron_db: Database, tmp_path: Path) -> None:
    """As `status` does: a stack whose connection is a secret databaseUrl (or none) uses
    $BUBBLE_SYNC_DATABASE_URL whole."""
    project = _stack(tmp_path, databaseUrl=ENCRYPTED)
    run = _db_only(project, _env())
    assert run.code == 1 and "databaseUrl is encrypted" in run.checks["database.connection"]["detail"]
    run = _db_only(project, _env(BUBBLE_SYNC_DATABASE_URL=cron_db.dsn))
    assert run.code == 0 and run.status("database.vault") == "ok"
    run.assert_never_shows(_password(cron_db.dsn), cron_db.dsn, TOKEN)


def test_the_session_refuses_writes(db: Database) -> None:
    """The safety belt under "read-only": whatever a check runs after the session query cannot write."""
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(database._query("session"))
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("create table preflight_wrote (x int)")


def test_judging_extensions_and_versions() -> None:
    """What the catalogs cannot be made to say on this server: an extension the server lacks, a superuser,
    an older major version."""
    server = {"user": "postgres", "superuser": False, "can_create": True, "privileged_extensions": None}
    missing = database.Extension("pg_net", False, None, None, None, False)
    assert database.installable_by(server, missing) is None
    cron = database.Extension("pg_cron", True, "1.6", None, None, False)
    assert database.installable_by({**server, "superuser": True}, cron) == "postgres is a superuser"
    assert database.installable_by({**server, "privileged_extensions": "pg_net,pg_cron"}, cron)
    assert (
        database.installable_by({**server, "privileged_extensions": "pg_cron", "can_create": False}, cron)
        is None
    )

    ctx = SimpleNamespace(config=SimpleNamespace(manage_extensions=True))
    result = database._extension_check(ctx, None, server, missing, database.PG_NET)  # type: ignore[arg-type]
    assert result.status is Status.FAILED and "not available on this server" in result.detail
    old = database._server_version({"version": "14.11", "version_num": 140011})
    assert old.status is Status.WARNING and "tested on 15" in old.detail
    assert database._server_version({"version": "17.4", "version_num": 170004}).status is Status.OK


# -- the Management API --------------------------------------------------------------------------------------


@pytest.fixture
def double() -> Iterator[ManagementApiDouble]:
    with running_double(TOKEN) as d:
        yield d


def _api_stack(tmp_path: Path, url: str, **config: Any) -> Path:
    return _stack(tmp_path, deployEdgeFunction=True, managementApiUrl=url, **config)


def _assert_skipped_after(run: Run, check: str, why: str) -> None:
    later = API_CHECKS[API_CHECKS.index(check) + 1 :]
    for other in later:
        assert run.status(other) == "skipped", run.checks[other]
        assert run.checks[other]["detail"] == why


def test_the_api_checks_pass_and_name_our_function(double: ManagementApiDouble, tmp_path: Path) -> None:
    deployed = [{"id": "f1", "slug": "bubble_sync", "name": "bubble_sync", "status": "ACTIVE", "version": 7,
                 "created_at": 1, "updated_at": 2}]  # fmt: skip
    double.fail_next(200, deployed, path=r"/functions$", times=2)
    run = _api_only(_api_stack(tmp_path, double.url), _env())
    assert run.code == 0
    assert run.checks["management_api.functions"]["detail"] == "1 functions; bubble_sync deployed (version 7)"
    assert (
        run.checks["management_api.secrets"]["detail"]
        == "4 secrets (names only; the API never returns values)"
    )
    assert run.checks["management_api.token"]["detail"] == "from $SUPABASE_ACCESS_TOKEN"
    assert all(e.method == "GET" for e in double.exchanges)
    run.assert_never_shows(TOKEN)


def test_the_api_checks_are_skipped_without_the_edge_function_deploy(tmp_path: Path) -> None:
    run = _api_only(_stack(tmp_path, deployEdgeFunction=False), _env())
    assert run.code == 0
    for check in API_CHECKS:
        assert run.status(check) == "skipped"
        assert run.checks[check]["detail"].startswith("deployEdgeFunction is false")


def test_no_token(double: ManagementApiDouble, tmp_path: Path) -> None:
    run = _api_only(_api_stack(tmp_path, double.url), {})
    token = run.checks["management_api.token"]
    assert run.code == 1 and token["status"] == "failed"
    assert "neither supabaseAccessToken nor $SUPABASE_ACCESS_TOKEN is set" in token["detail"]
    for scope in management_api.SCOPES:
        assert scope in token["fix"]
    assert "deployEdgeFunction to false" in token["fix"]
    _assert_skipped_after(run, "management_api.token", "no access token")
    assert double.exchanges == []


def test_a_token_kept_encrypted_in_the_stack(double: ManagementApiDouble, tmp_path: Path) -> None:
    project = _api_stack(tmp_path, double.url, supabaseAccessToken=ENCRYPTED)
    run = _api_only(project, {})
    token = run.checks["management_api.token"]
    assert token["status"] == "failed" and "is encrypted, so preflight cannot read it" in token["detail"]
    assert (
        'export SUPABASE_ACCESS_TOKEN="$(pulumi config get supabaseAccessToken --stack pf)"' in token["fix"]
    )

    run = _api_only(
        project, _env()
    )  # the environment's token is checked, with a warning: up uses the stack's
    assert run.code == 0 and run.status("management_api.token") == "warning"
    assert run.status("management_api.functions") == "ok"
    assert run.line("management_api.token").startswith(
        "! Management API access token: checking $SUPABASE_ACCESS_TOKEN"
    )
    run.assert_never_shows(TOKEN)


def test_a_refused_token(double: ManagementApiDouble, tmp_path: Path) -> None:
    wrong = "sbp_wrong_TOKEN_0d1e"
    run = _api_only(_api_stack(tmp_path, double.url), _env(SUPABASE_ACCESS_TOKEN=wrong))
    functions = run.checks["management_api.functions"]
    assert run.code == 1 and functions["status"] == "failed"
    assert (
        functions["detail"] == "the Management API refused the token (401): it is invalid, expired or revoked"
    )
    assert "edge_functions:write" in functions["fix"]
    _assert_skipped_after(run, "management_api.functions", "the token was refused")
    run.assert_never_shows(wrong, TOKEN)


def test_a_token_without_access_to_the_project(double: ManagementApiDouble, tmp_path: Path) -> None:
    double.grant(TOKEN, {"zzzzzzzzzzzzzzzzzzzz"})
    run = _api_only(_api_stack(tmp_path, double.url), _env())
    assert run.code == 1
    for check, scope in (
        ("management_api.functions", "edge_functions:read"),
        ("management_api.secrets", "secrets:read"),
    ):
        result = run.checks[check]
        assert result["status"] == "failed"  # both: each read needs its own scope, so each says something
        assert f"of project {REF} (403): it lacks the scope {scope} or access" in result["detail"]
        assert result["fix"] == (
            f"use a token with access to project {REF} and the scopes edge_functions:read, "
            "edge_functions:write, secrets:read, secrets:write"
        )
    run.assert_never_shows(TOKEN)


def test_a_token_without_the_secrets_scope(double: ManagementApiDouble, tmp_path: Path) -> None:
    double.fail_next(403, {"message": "Forbidden action"}, path=r"/secrets$", times=2)
    run = _api_only(_api_stack(tmp_path, double.url), _env())
    assert run.status("management_api.functions") == "ok"
    assert run.status("management_api.secrets") == "failed" and run.code == 1
    assert "scope secrets:read" in run.checks["management_api.secrets"]["detail"]


def test_an_unknown_project(double: ManagementApiDouble, tmp_path: Path) -> None:
    double.fail_next(404, {"message": "Project not found"}, times=2)
    run = _api_only(_api_stack(tmp_path, double.url), _env())
    functions = run.checks["management_api.functions"]
    assert run.code == 1 and functions["detail"] == f"no project {REF} for this token (404)"
    assert functions["fix"].startswith("check projectRef")
    _assert_skipped_after(run, "management_api.functions", "the project was not found")
    run.assert_never_shows(TOKEN)


def test_rate_limited(double: ManagementApiDouble, tmp_path: Path) -> None:
    double.fail_next(429, {"message": "Too many requests"}, headers={"Retry-After": "60"}, times=2)
    run = _api_only(_api_stack(tmp_path, double.url), _env())
    assert run.code == 1 and "rate limited (429)" in run.checks["management_api.functions"]["detail"]
    assert run.checks["management_api.functions"]["fix"] == "wait a minute and run preflight again"
    _assert_skipped_after(run, "management_api.functions", "rate limited")


@pytest.mark.parametrize("status", [500, 503])
def test_the_api_failing(double: ManagementApiDouble, tmp_path: Path, status: int) -> None:
    double.fail_next(status, {"message": f"upstream {TOKEN}"}, times=2)
    run = _api_only(_api_stack(tmp_path, double.url), _env())
    functions = run.checks["management_api.functions"]
    assert run.code == 1
    assert functions["detail"] == f"Supabase's Management API at {double.url} is unreachable (HTTP {status})"
    assert functions["fix"].startswith("try again in a few minutes")
    _assert_skipped_after(run, "management_api.functions", "the Management API is unreachable")
    run.assert_never_shows(TOKEN)


def test_the_api_not_answering(tmp_path: Path) -> None:
    """A server that accepts the connection and never answers (a timeout), and a closed port."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        run = _api_only(_api_stack(tmp_path, url), _env(), http_timeout=0.3)
    functions = run.checks["management_api.functions"]
    assert run.code == 1 and functions["status"] == "failed"
    assert functions["detail"].startswith(f"Supabase's Management API at {url} is unreachable (ReadTimeout")
    _assert_skipped_after(run, "management_api.functions", "the Management API is unreachable")
    run.assert_never_shows(TOKEN)

    url = f"http://127.0.0.1:{free_port()}"
    run = _api_only(_api_stack(tmp_path, url), _env())
    assert run.checks["management_api.functions"]["detail"].startswith(
        f"Supabase's Management API at {url} is unreachable (ConnectError"
    )
    run.assert_never_shows(TOKEN)


def test_the_api_url_comes_from_the_environment_when_the_stack_has_none(
    double: ManagementApiDouble, tmp_path: Path
) -> None:
    run = _api_only(_stack(tmp_path, deployEdgeFunction=True), _env(SUPABASE_MANAGEMENT_API_URL=double.url))
    assert run.code == 0 and len(double.exchanges) == 4

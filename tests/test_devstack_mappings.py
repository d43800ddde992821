"""The README's "Mapping tables to Bubble types", run as written on a devstack of its own, and then the real
Pulumi engine on that devstack's two-mapping `local` stack: drift of a mapping's trigger found by drift.yml's
`preview --refresh --expect-no-changes` and repaired by pulumi-up.yml's `up --refresh`, a mapping naming a
missing column refused at `preview` naming its config path, and `destroy` taking the stack's triggers and
mapping rows and leaving the user's tables and rows alone. Every CLI output is searched for the devstack's
secrets.

One devstack for the module (started by the README's own `./dev up`, about 10 s with the engine): the engine
tests build on what the README made, in file order, `destroy` last. Without the engine the README still runs
(with psql) and the engine tests are skipped.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from devstack import stack
from devstack.processes import is_alive
from tests.engine_support import Cli, drift_exit_codes, engine_or_skip, new_cli, secrets_in, workflow_command
from tests.markdown_support import code_blocks

REPO = Path(__file__).resolve().parent.parent
README_SECTION = "## Mapping tables to Bubble types"
DRIFT_CHECK = [
    a.replace("$STACK", "local")
    for a in workflow_command("drift.yml", "pulumi preview --refresh --expect-no-changes")
]
DEPLOY = [
    a.replace("$STACK", "local") for a in workflow_command("pulumi-up.yml", "pulumi up --refresh --yes")
]
TRIGGERS = (
    "select c.relname, t.tgname, t.tgenabled::text from pg_trigger t join pg_class c on c.oid = t.tgrelid"
    " where t.tgname in ('bubble_sync_users', 'bubble_sync_listings') order by 1"
)
USER_ROWS = (
    "select p.*, l.* from public.profiles p full join public.listings l on l.host_id = p.id order by 1"
)

# Before the README's commands, in the same shell: the double gets a record a moment after its insert (the
# function is woken by the insert), so `curl` asks again, for up to 20 s, while the list is empty.
PRELUDE = """set -euo pipefail
curl() {
  local out
  for _ in $(seq 100); do
    out=$(command curl "$@")
    case "$out" in *'"records": []'*) sleep 0.2 ;; *) break ;; esac
  done
  printf '%s\\n' "$out"
}
"""


def readme_commands() -> str:
    """The shell block of the README's mapping section."""
    section = (REPO / "README.md").read_text().split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = code_blocks(section)
    assert blocks, f"no command block under {README_SECTION!r}"
    return blocks[0]


def on_state_dir(commands: str, state: Path) -> str:
    """The commands with `--state-dir` after each `./dev` command: the README's default, .devstack/, may be a
    developer's own running devstack."""
    return re.sub(
        r"\./dev (up|down|status|pulumi)\b", rf"./dev \1 --state-dir {shlex.quote(str(state))}", commands
    )


def devstack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@dataclass
class ReadmeRun:
    state: Path
    info: stack.StackInfo
    result: subprocess.CompletedProcess[str]

    @property
    def records(self) -> list[dict[str, Any]]:
        """What each `curl` printed: the double's records."""
        return [json.loads(line) for line in self.result.stdout.splitlines() if line.startswith('{"records"')]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.info.database_url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def wait_for(
        self, sql: str, expected: list[tuple[Any, ...]], timeout: float = 10
    ) -> list[tuple[Any, ...]]:
        """The query's rows once they are `expected`, or as they are after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (rows := self.query(sql)) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return rows

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.info.database_url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    @property
    def secrets(self) -> dict[str, str]:
        return {
            "dbPassword": urlsplit(self.info.database_url).password or "",
            "serviceRoleKey": self.info.service_role_key,
            "bubbleApiToken": self.info.bubble_token,
        }


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmeRun]:
    state = tmp_path_factory.mktemp("readme-mappings") / "state"
    script = PRELUDE + on_state_dir(readme_commands(), state)
    result = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    try:
        info = stack.load(state)
        assert result.returncode == 0 and info is not None, result.stdout + result.stderr
        yield ReadmeRun(state, info, result)
    finally:
        devstack("down", "--state-dir", str(state))


def test_the_readmes_two_mappings_reach_the_bubble_double(readme: ReadmeRun) -> None:
    assert "applying stack `local` again" in readme.result.stderr  # the second `up` applied the mappings
    users, listings = (r["records"] for r in readme.records)
    assert len(users) == 1 and len(listings) == 1, readme.records
    user, listing = users[0], listings[0]
    profile_id = readme.query("select id::text from public.profiles")[0][0]
    assert user["supabase_id"] == f"profiles:{profile_id}"
    assert (user["First Name"], user["Last Name"]) == ("Ada", "Lovelace")
    assert user["authentication"]["email"]["email"] == "ada@example.com"
    assert (listing["Title"], listing["Price"], listing["supabase_id"]) == (
        "Loft by the sea",
        120,
        "listings:1",
    )
    assert listing["Host"] == user["_id"]  # the relation: the user's Bubble id, not the profile's uuid
    # the function completes a row once Bubble has answered: a moment after the double lists the record
    done = [("listings", "completed"), ("profiles", "completed")]
    assert readme.wait_for("select table_name, status from public.sync_queue order by 1", done) == done


def test_a_file_whose_mapping_does_not_fit_the_tables_changes_nothing(
    readme: ReadmeRun, tmp_path: Path
) -> None:
    example = yaml.safe_load((REPO / "docs" / "examples" / "mappings.yaml").read_text())
    example["config"]["bubble-sync:mappings"][1]["fields"]["nope"] = "Nope"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(example))
    triggers, host = readme.query(TRIGGERS), readme.info.processes["functions_host"]

    result = devstack("up", "--state-dir", str(readme.state), "--config-file", str(bad))
    assert result.returncode == 1
    assert 'bubble-sync:mappings[1].fields.nope: public.listings has no column "nope"' in result.stderr
    assert "the devstack is still running" in result.stderr
    assert readme.query(TRIGGERS) == triggers
    after = stack.load(readme.state)
    assert after is not None and after.processes["functions_host"] == host and is_alive(host)
    assert after.config == readme.info.config


# -- the real Pulumi engine on the devstack's `local` stack -------------------------------------------------


@pytest.fixture(scope="module")
def cli(readme: ReadmeRun) -> Cli:
    engine = engine_or_skip()
    assert readme.info.applied_with.startswith("pulumi up"), readme.info.applied_with
    return new_cli(engine, readme.state / stack.PULUMI_DIR)  # the devstack's own workspace


def test_the_mappings_reach_pulumi_as_structured_config(readme: ReadmeRun, cli: Cli) -> None:
    stack_file = yaml.safe_load(cli.workspace.stack_file("local").read_text())
    assert [m["name"] for m in stack_file["config"]["bubble-sync:mappings"]] == ["users", "listings"]
    value = json.loads(cli.ok(["config", "get", "--stack", "local", "--json", "mappings"]))
    assert value["objectValue"][1]["fields"]["host_id"] == {"field": "Host", "ref": "users"}
    assert value["objectValue"][1]["onDelete"] == {"set": {"Archived": True}}
    outputs = json.loads(cli.ok(["stack", "output", "--stack", "local", "--json"]))
    assert outputs["mappings"] == ["users", "listings"]
    assert readme.query(TRIGGERS) == [
        ("listings", "bubble_sync_listings", "O"),
        ("profiles", "bubble_sync_users", "O"),
    ]
    check = cli.run(DRIFT_CHECK)
    assert check.code == 0, check.output


def test_mapping_triggers_changed_by_hand_are_reported_and_repaired(readme: ReadmeRun, cli: Cli) -> None:
    codes = drift_exit_codes()
    before = readme.query(TRIGGERS)
    readme.execute("drop trigger bubble_sync_users on public.profiles")
    readme.execute("alter table public.listings disable trigger bubble_sync_listings")
    assert readme.query(TRIGGERS) == [("listings", "bubble_sync_listings", "D")]

    check = cli.run(DRIFT_CHECK)
    assert codes.get(check.code) == "drift", check.output
    # one check, both changes (as --diff shows them): the dropped trigger to create, the disabled one read
    # back disabled ("D" where the program expects "O": origin-enabled) and to update
    assert re.search(r"\(create\)\n\s+\[urn=\S+::bubble-sync-trigger-users\]", check.output), check.output
    assert re.search(r"\(update\)\n\s+\[id=public\.listings\.bubble_sync_listings\]", check.output)
    assert '=> "D CREATE TRIGGER bubble_sync_listings AFTER' in check.output

    repair = cli.run(DEPLOY)
    assert repair.code == 0, repair.output
    assert readme.query(TRIGGERS) == before
    assert codes.get(cli.run(DRIFT_CHECK).code) == "clean"


def test_a_mapping_naming_a_missing_column_fails_at_preview_naming_its_path(
    readme: ReadmeRun, cli: Cli
) -> None:
    path = "bubble-sync:mappings[1].fields.nope"
    cli.ok(["config", "set", "--stack", "local", "--path", path, "Nope"])
    try:
        preview = cli.run(["preview", "--stack", "local", "--non-interactive"])
        assert preview.code != 0
        assert f'{path}: public.listings has no column "nope"' in preview.output, preview.output
    finally:
        cli.ok(["config", "rm", "--stack", "local", "--path", path])
    check = cli.run(DRIFT_CHECK)  # nothing was changed, and the stack is as the README left it
    assert check.code == 0, check.output


def test_no_engine_cannot_apply_a_pulumi_devstack_again(readme: ReadmeRun, cli: Cli) -> None:
    example = str(REPO / "docs" / "examples" / "mappings.yaml")
    result = devstack("up", "--state-dir", str(readme.state), "--config-file", example, "--no-engine")
    assert result.returncode == 1
    assert "--no-engine: this devstack was applied with `pulumi up`" in result.stderr


def test_destroy_takes_the_triggers_and_mapping_rows_and_keeps_the_users_tables(
    readme: ReadmeRun, cli: Cli
) -> None:
    rows = readme.query(USER_ROWS)
    assert len(rows) == 1 and readme.query("select name from bubble_sync.mappings order by 1") == [
        ("listings",),
        ("users",),
    ]
    destroy = cli.run(["destroy", "--stack", "local", "--yes", "--non-interactive"])
    assert destroy.code == 0, destroy.output

    assert readme.query(TRIGGERS) == []
    # The local stack drops the queue and its schema (dropQueueOnDestroy), bubble_sync.mappings with them;
    # the mapping rows went first, each with its resource.
    assert "bubble-sync-mapping-users" in destroy.output and "bubble-sync-mapping-listings" in destroy.output
    assert readme.query("select to_regclass('bubble_sync.mappings')") == [(None,)]
    assert readme.query(USER_ROWS) == rows
    assert readme.query("select count(*) from pg_trigger where tgrelid in ('public.profiles'::regclass,"
                        " 'public.listings'::regclass) and not tgisinternal") == [(0,)]  # fmt: skip


def test_no_secret_is_printed_or_stored_in_plain_text(readme: ReadmeRun, cli: Cli) -> None:
    stored = [cli.workspace.stack_file("local").read_text()]
    stored += [p.read_text(errors="replace") for p in cli.workspace.backend_dir.rglob("*") if p.is_file()]
    assert secrets_in("\n".join(stored), readme.secrets) == []
    assert secrets_in("\n".join(cli.transcript), readme.secrets) == []
    # `up` prints DATABASE_URL (with the password) on stdout by design; nothing else it prints holds one
    assert secrets_in(readme.result.stderr, readme.secrets) == []

"""EdgeFunction against the Management API test double over real HTTP: the deploy form, read/diff/update for
every drift case, delete, 429/401/402/403 handling, and what the pickled provider holds.

Why one module: its tests share the Management API double and the `configured`/`inputs` helpers, and follow
one provider through create, read/diff for every drift case, delete and each error status.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from components.providers import (
    EdgeFunctionProvider,
    FunctionSourceError,
    ManagementApiError,
    function_source_hash,
)
from components.providers.edge_function import MAX_BUNDLE_BYTES, REDEPLOYED_MARKER, collect_function_files
from tests.management_api_double import ManagementApiDouble, parse_multipart, running_double

REF = "abcdefghijklmnopqrst"
SLUG = "bubble_sync"
SOURCE_DIR = "supabase/functions/bubble_sync"
TOKEN = "sbp_TOKEN_must_never_leak_5e1d"
ROOT = Path(__file__).resolve().parent.parent

SOURCES = {
    f"{SOURCE_DIR}/index.ts": 'import { handler } from "./handler.ts";\nDeno.serve(handler);\n',
    f"{SOURCE_DIR}/handler.ts": (
        'import { log } from "../_shared/log.ts";\nimport postgres from "npm:postgres@3.4.9";\n'
        "export async function handler(_req: Request) { log('x'); return new Response('ok'); }\n"
    ),
    "supabase/functions/_shared/log.ts": "export function log(m: string) { console.log(m); }\n",
    # not uploaded: tests, docs, dotfiles, a module nothing imports outside the directory
    f"{SOURCE_DIR}/handler_test.ts": 'import { handler } from "./handler.ts";\nDeno.test("x", () => {});\n',
    f"{SOURCE_DIR}/tests/e2e.ts": "export {};\n",
    f"{SOURCE_DIR}/README.md": "# bubble_sync\n",
    f"{SOURCE_DIR}/.env": "BUBBLE_API_TOKEN=nope\n",
    "supabase/functions/_shared/unused.ts": "export {};\n",
}
UPLOADED = [  # sorted by path
    "supabase/functions/_shared/log.ts",
    f"{SOURCE_DIR}/handler.ts",
    f"{SOURCE_DIR}/index.ts",
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with the function's sources, made the working directory (as under `pulumi up`)."""
    for rel, text in SOURCES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.chdir(tmp_path)
    for var in ("SUPABASE_ACCESS_TOKEN", "SUPABASE_MANAGEMENT_API_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def double() -> Iterator[ManagementApiDouble]:
    with running_double(TOKEN) as d:
        yield d


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def configured(double: ManagementApiDouble, **config: str) -> EdgeFunctionProvider:
    provider = EdgeFunctionProvider()
    values = {"managementApiUrl": double.url, "supabaseAccessToken": TOKEN, **config}
    provider.configure(
        ConfigureRequest(Config({f"bubble-sync:{k}": v for k, v in values.items()}, "bubble-sync"))
    )
    provider.sleep = Sleeps()  # type: ignore[method-assign]
    return provider


def inputs(**overrides: Any) -> dict[str, Any]:
    return {
        "project_ref": REF,
        "slug": SLUG,
        "source_dir": SOURCE_DIR,
        "entrypoint": "index.ts",
        "verify_jwt": False,
        "source_hash": function_source_hash(SOURCE_DIR),
        **overrides,
    }


def clean(
    provider: EdgeFunctionProvider, id_: str, outs: dict[str, Any], news: dict[str, Any]
) -> dict[str, Any]:
    """Refresh and assert there is nothing to do; returns the refreshed outputs."""
    read = provider.read(id_, outs)
    assert read.id == id_
    diff = provider.diff(read.id, read.outs, news)
    assert (diff.changes, diff.replaces) == (False, []), read.outs
    return read.outs


# -- the deploy request --------------------------------------------------------------------------------------


def test_create_sends_the_cli_form_and_read_matches_the_inputs(
    project: Path, double: ManagementApiDouble
) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    assert created.id == f"{REF}/{SLUG}"

    [deploy] = double.deploys()
    assert deploy.query == {"slug": [SLUG]}
    assert deploy.headers["authorization"] == "Bearer <present>"
    parts = parse_multipart(deploy.content_type, deploy.body)
    # metadata first, then one `file` part per source, named by its path relative to the project root
    assert [p.name for p in parts] == ["metadata", "file", "file", "file"]
    assert parts[0].filename is None
    assert json.loads(parts[0].content) == {
        "entrypoint_path": f"{SOURCE_DIR}/index.ts",
        "name": SLUG,
        "verify_jwt": False,
    }
    assert [p.filename for p in parts[1:]] == UPLOADED
    for part in parts[1:]:
        assert part.content == SOURCES[part.filename].encode()  # type: ignore[index]
        assert part.content_type == "application/octet-stream"

    live = double.function(REF, SLUG)
    assert live is not None and (live.version, live.status, live.verify_jwt) == (1, "ACTIVE", False)
    assert created.outs == {
        **inputs(),
        "function_id": live.id,
        "version": 1,
        "status": "ACTIVE",
        "ezbr_sha256": live.ezbr_sha256,
    }
    assert clean(provider, created.id, created.outs, inputs()) == created.outs


def test_a_function_deno_json_is_sent_as_its_import_map(project: Path, double: ManagementApiDouble) -> None:
    (project / SOURCE_DIR / "deno.json").write_text('{"imports": {}}\n')
    configured(double).create(inputs())
    parts = parse_multipart(double.deploys()[0].content_type, double.deploys()[0].body)
    assert json.loads(parts[0].content)["import_map_path"] == f"{SOURCE_DIR}/deno.json"
    assert f"{SOURCE_DIR}/deno.json" in [p.filename for p in parts]


# -- the source hash -----------------------------------------------------------------------------------------


def test_source_hash_covers_paths_and_contents_of_what_is_uploaded(project: Path) -> None:
    before = function_source_hash(SOURCE_DIR)
    assert before == function_source_hash(SOURCE_DIR, "index.ts", project)
    assert [f.path for f in collect_function_files(SOURCE_DIR)] == UPLOADED

    # tests, docs and unimported modules outside the directory do not count
    (project / SOURCE_DIR / "handler_test.ts").write_text("changed")
    (project / SOURCE_DIR / "README.md").write_text("changed")
    (project / "supabase/functions/_shared/unused.ts").write_text("changed")
    assert function_source_hash(SOURCE_DIR) == before

    (project / "supabase/functions/_shared/log.ts").write_text("export function log() {}\n")  # imported
    changed = function_source_hash(SOURCE_DIR)
    assert changed != before
    (project / SOURCE_DIR / "extra.ts").write_text("export {};\n")  # a new file in the directory
    assert function_source_hash(SOURCE_DIR) not in (before, changed)


def test_the_repository_function_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    files = collect_function_files(SOURCE_DIR)
    assert f"{SOURCE_DIR}/index.ts" in [f.path for f in files]
    assert all(not f.path.endswith(("_test.ts", ".test.ts")) for f in files)
    assert len(function_source_hash(SOURCE_DIR)) == 64


# -- check ---------------------------------------------------------------------------------------------------


def test_check_fills_defaults_and_rejects_bad_inputs(project: Path) -> None:
    provider = EdgeFunctionProvider()
    result = provider.check({}, {"project_ref": REF, "source_hash": "a" * 64})
    assert result.failures == []
    assert result.inputs == {
        "project_ref": REF,
        "slug": SLUG,
        "source_dir": SOURCE_DIR,
        "entrypoint": "index.ts",
        "verify_jwt": False,
        "source_hash": "a" * 64,
    }
    bad = provider.check(
        {},
        {
            "project_ref": "not-a-ref",
            "slug": "1bad slug",
            "source_dir": "/abs/path",
            "entrypoint": "../outside.ts",
            "verify_jwt": "no",
            "source_hash": "xyz",
        },
    )
    assert sorted(f.property for f in bad.failures) == [
        "entrypoint",
        "project_ref",
        "slug",
        "source_dir",
        "source_hash",
        "verify_jwt",
    ]
    unknown = provider.check({}, {"project_ref": Unknown(), "source_hash": Unknown()})
    assert unknown.failures == []


# -- drift ---------------------------------------------------------------------------------------------------


def test_function_deleted_by_hand_is_gone_and_created_again(
    project: Path, double: ManagementApiDouble
) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    double.delete_function(REF, SLUG)

    read = provider.read(created.id, created.outs)
    assert (read.id, read.outs) == ("", {})  # refresh drops it; the next `up` creates it
    again = provider.create(inputs())
    assert double.function(REF, SLUG) is not None
    clean(provider, again.id, again.outs, inputs())


def test_removed_function_is_gone_and_redeployed(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    double.set_function(REF, SLUG, status="REMOVED")

    assert provider.read(created.id, created.outs).id == ""
    again = provider.create(inputs())
    live = double.function(REF, SLUG)
    assert live is not None and (live.status, live.version) == ("ACTIVE", 2)
    clean(provider, again.id, again.outs, inputs())


def test_verify_jwt_flipped_by_hand_is_detected_and_repaired(
    project: Path, double: ManagementApiDouble
) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    double.set_function(REF, SLUG, verify_jwt=True)

    read = provider.read(created.id, created.outs)
    assert read.outs["verify_jwt"] is True
    diff = provider.diff(read.id, read.outs, inputs())
    assert (diff.changes, diff.replaces) == (True, [])

    updated = provider.update(read.id, read.outs, inputs())
    assert len(double.deploys()) == 2
    live = double.function(REF, SLUG)
    assert live is not None and live.verify_jwt is False
    clean(provider, read.id, updated.outs, inputs())


def test_redeployed_by_someone_else_is_detected_and_repaired(
    project: Path, double: ManagementApiDouble
) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    double.redeploy(REF, SLUG)  # the dashboard or the CLI: version 2, other sources

    read = provider.read(created.id, created.outs)
    assert read.outs["version"] == 2
    assert read.outs["source_hash"] == f"{REDEPLOYED_MARKER}v2"
    assert provider.diff(read.id, read.outs, inputs()).changes is True
    # a second refresh before `up` still shows it
    assert provider.diff(read.id, provider.read(read.id, read.outs).outs, inputs()).changes is True

    updated = provider.update(read.id, read.outs, inputs())
    live = double.function(REF, SLUG)
    assert live is not None and live.version == 3 == updated.outs["version"]
    assert sorted(live.files) == UPLOADED
    assert updated.outs["source_hash"] == inputs()["source_hash"]
    clean(provider, read.id, updated.outs, inputs())


def test_changed_sources_redeploy_and_unchanged_ones_do_not(
    project: Path, double: ManagementApiDouble
) -> None:
    provider = configured(double)
    created = provider.create(inputs())

    # same hash, same settings: update is a no-op (no deploy call)
    same = provider.update(created.id, created.outs, inputs())
    assert same.outs == created.outs
    assert len(double.deploys()) == 1

    (project / SOURCE_DIR / "index.ts").write_text(
        'import { handler } from "./handler.ts";\nDeno.serve(handler); // v2\n'
    )
    news = inputs()
    assert news["source_hash"] != created.outs["source_hash"]
    diff = provider.diff(created.id, created.outs, news)
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(created.id, created.outs, news)
    assert len(double.deploys()) == 2
    assert updated.outs["version"] == 2 and updated.outs["source_hash"] == news["source_hash"]
    live = double.function(REF, SLUG)
    assert live is not None and live.files[f"{SOURCE_DIR}/index.ts"].endswith(b"// v2\n")
    clean(provider, created.id, updated.outs, news)


def test_another_slug_or_project_is_a_replacement(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double)
    outs = provider.create(inputs()).outs
    for key, value in (("slug", "bubble-sync-2"), ("project_ref", "zyxwvutsrqponmlkjihg")):
        diff = provider.diff(f"{REF}/{SLUG}", outs, inputs(**{key: value}))
        assert (diff.changes, diff.replaces, diff.delete_before_replace) == (True, [key], False)
    assert provider.diff(f"{REF}/{SLUG}", outs, inputs(source_hash=Unknown())).changes is True


# -- delete --------------------------------------------------------------------------------------------------


def test_delete_twice_is_fine(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double)
    created = provider.create(inputs())
    provider.delete(created.id, created.outs)
    assert double.function(REF, SLUG) is None
    provider.delete(created.id, created.outs)  # 404: already gone
    assert [e.status for e in double.requests("DELETE", "/functions/")] == [200, 404]


# -- sources at deploy time ----------------------------------------------------------------------------------


def test_missing_sources_are_a_clear_error(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double)
    news = inputs()
    (project / SOURCE_DIR / "index.ts").unlink()
    with pytest.raises(
        ManagementApiError, match=r"entrypoint supabase/functions/bubble_sync/index.ts not found"
    ):
        provider.create(news)
    with pytest.raises(ManagementApiError, match=r"source directory supabase/functions/absent/ not found"):
        provider.create({**news, "source_dir": "supabase/functions/absent"})
    assert double.exchanges == []


def test_sources_are_found_in_the_checkout_when_run_elsewhere(
    project: Path, double: ManagementApiDouble, tmp_path: Path
) -> None:
    """Should the provider process run outside the project directory, the repository's own copy is used."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(elsewhere)
        expected = function_source_hash(SOURCE_DIR, "index.ts", ROOT)
        assert function_source_hash(SOURCE_DIR) == expected
        outs = configured(double).create(inputs(source_hash=expected)).outs
    assert outs["source_hash"] == expected
    live = double.function(REF, SLUG)
    assert live is not None and f"{SOURCE_DIR}/index.ts" in live.files


def test_sources_over_5_mb_are_refused_before_uploading(project: Path, double: ManagementApiDouble) -> None:
    news = inputs()
    (project / SOURCE_DIR / "big.ts").write_bytes(b"//" + b"x" * MAX_BUNDLE_BYTES)
    with pytest.raises(ManagementApiError, match=r"more than the 5242880 bytes \(5 MB\).*big\.ts"):
        configured(double).create(news)
    assert double.exchanges == []
    with pytest.raises(FunctionSourceError, match="5 MB"):  # and `preview` already fails on it
        function_source_hash(SOURCE_DIR)


# -- limits and errors ---------------------------------------------------------------------------------------


def test_429_waits_for_retry_after_and_succeeds(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double)
    double.fail_next(429, {"message": "Too many requests"}, headers={"Retry-After": "7"}, path="/deploy")
    double.fail_next(429, {"message": "Too many requests"}, path="/deploy")  # no header: a minute
    created = provider.create(inputs())
    assert provider.sleep == [7.0, 60.0]
    assert [e.status for e in double.deploys()] == [429, 429, 201]
    assert created.outs["version"] == 1


def test_429_that_never_ends_is_a_clear_error(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double)
    double.fail_next(429, {"message": "Too many requests"}, headers={"Retry-After": "1"}, times=10)
    with pytest.raises(ManagementApiError) as info:
        provider.read(f"{REF}/{SLUG}", inputs())
    assert info.value.status == 429
    assert "60 requests per minute" in str(info.value)
    assert provider.sleep == [1.0, 1.0, 1.0]  # bounded: 4 attempts
    assert TOKEN not in str(info.value)


def test_transient_5xx_is_retried(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double)
    double.fail_next(503, {"message": "upstream unavailable"}, path="/deploy")
    provider.create(inputs())
    assert provider.sleep == [2.0]


def test_401_names_the_token_settings_without_the_token(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double, supabaseAccessToken="sbp_expired_TOKEN_0000")
    with pytest.raises(ManagementApiError) as info:
        provider.create(inputs())
    message = str(info.value)
    assert info.value.status == 401
    assert "invalid, expired or revoked" in message
    assert "bubble-sync:supabaseAccessToken" in message and "SUPABASE_ACCESS_TOKEN" in message
    assert "sbp_expired_TOKEN_0000" not in message and TOKEN not in message


def test_402_names_the_plan_limit(project: Path, double: ManagementApiDouble) -> None:
    double.max_functions = 0
    with pytest.raises(ManagementApiError) as info:
        configured(double).create(inputs())
    assert info.value.status == 402
    assert "Maximum number of functions reached for Plan" in str(info.value)
    assert "plan" in str(info.value)


def test_403_names_the_missing_scope_or_project(project: Path, double: ManagementApiDouble) -> None:
    double.grant(TOKEN, {"zyxwvutsrqponmlkjihg"})  # a scoped token for another project
    with pytest.raises(ManagementApiError) as info:
        configured(double).create(inputs())
    message = str(info.value)
    assert info.value.status == 403
    assert "edge_functions:write" in message and "access to this project" in message
    assert TOKEN not in message


def test_server_errors_never_echo_the_token(project: Path, double: ManagementApiDouble) -> None:
    double.fail_next(500, {"message": f"Failed to deploy function: token {TOKEN} broke it"}, path="/deploy")
    with pytest.raises(ManagementApiError) as info:
        configured(double).create(inputs())
    assert "Failed to deploy function: token [redacted] broke it" in str(info.value)
    assert TOKEN not in str(info.value)


def test_without_a_token_nothing_is_sent(project: Path, double: ManagementApiDouble) -> None:
    provider = configured(double, supabaseAccessToken="")
    with pytest.raises(ManagementApiError) as info:
        provider.create(inputs())
    assert "bubble-sync:supabaseAccessToken" in str(info.value)
    assert "SUPABASE_ACCESS_TOKEN" in str(info.value)
    assert double.exchanges == []


def test_url_and_token_fall_back_to_the_environment(
    project: Path, double: ManagementApiDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_MANAGEMENT_API_URL", double.url)
    monkeypatch.setenv("SUPABASE_ACCESS_TOKEN", TOKEN)
    provider = EdgeFunctionProvider()
    provider.configure(ConfigureRequest(Config({}, "bubble-sync")))
    assert provider.create(inputs()).outs["version"] == 1


# -- what the state holds ------------------------------------------------------------------------------------


def test_the_pickled_provider_holds_no_token_or_url(
    project: Path, double: ManagementApiDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_ACCESS_TOKEN", TOKEN)
    provider = configured(double)
    provider.create(inputs())
    for raw in (dill.dumps(provider, recurse=True), base64.b64decode(serialize_provider(provider))):
        assert TOKEN.encode() not in raw
        assert double.url.encode() not in raw
        clone = dill.loads(raw)
        assert type(clone) is EdgeFunctionProvider
        assert (clone._token, clone._api_url) == (None, None)
        assert "sleep" not in clone.__dict__
    assert provider._token == TOKEN  # pickling did not disturb the live object


def test_the_pickled_provider_works_in_a_fresh_process(project: Path, double: ManagementApiDouble) -> None:
    """As the dynamic-provider process does: import by reference, unpickle, configure, call."""
    configured(double).create(inputs())
    blob = serialize_provider(configured(double))
    script = (
        "import base64, sys, dill\n"
        "from pulumi.dynamic import Config, ConfigureRequest\n"
        "p = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "p.configure(ConfigureRequest(Config({'bubble-sync:managementApiUrl': sys.argv[2],"
        " 'bubble-sync:supabaseAccessToken': sys.argv[3]}, 'bubble-sync')))\n"
        "state = {'project_ref': sys.argv[4], 'slug': 'bubble_sync', 'version': 1}\n"
        "print(p.read('x', state).outs['status'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, blob, double.url, TOKEN, REF],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "ACTIVE\n", "")

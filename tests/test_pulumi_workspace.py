"""Which Pulumi engine `./dev pulumi`, `./dev up` and the tests use, and the workspace they run it in."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devstack import pulumi_engine
from devstack.pulumi_engine import ENGINE_BIN, PROJECT_ENTRIES, REPO_ROOT, Engine, Workspace, find_engine


def fake_pulumi(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pulumi"
    path.write_text("#!/bin/sh\necho v3.0.0-fake\n")
    path.chmod(0o755)
    return path


def test_the_users_own_pulumi_on_path_wins(tmp_path: Path) -> None:
    own = fake_pulumi(tmp_path / "bin")
    assert find_engine(f"{ENGINE_BIN}{os.pathsep}{tmp_path / 'bin'}") == Engine(own, built=False)


def test_the_built_engine_is_used_when_no_other_pulumi_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / "engine"
    fake_pulumi(built)
    (built / "pulumi-language-python").write_text("")
    monkeypatch.setattr(pulumi_engine, "ENGINE_BIN", built)
    # Our own directory on PATH does not count as the user's installation.
    assert find_engine(f"{built}{os.pathsep}/usr/bin") == Engine(built / "pulumi", built=True)
    (built / "pulumi-language-python").unlink()  # half a build is no engine
    assert find_engine("/usr/bin") is None


def test_a_workspace_runs_the_repositorys_program_with_its_own_stacks_state_and_passphrase(
    tmp_path: Path,
) -> None:
    workspace = Workspace(tmp_path / "ws", Engine(fake_pulumi(tmp_path / "bin"), built=True)).prepare(["dev"])
    for name in (*PROJECT_ENTRIES, "Pulumi.dev.yaml"):
        assert (workspace.project_dir / name).resolve() == (REPO_ROOT / name).resolve()
    assert not (workspace.project_dir / "Pulumi.local.yaml").exists()  # generated per devstack, not linked
    passphrase = tmp_path / "ws" / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600 and len(passphrase.read_text()) >= 32
    workspace.prepare(["dev"])  # again: same links, same passphrase
    env = workspace.environment({"PULUMI_ACCESS_TOKEN": None, "EXTRA": "1"})
    assert env["PULUMI_BACKEND_URL"] == (tmp_path / "ws" / "backend").as_uri()
    assert env["PULUMI_CONFIG_PASSPHRASE"] == passphrase.read_text()
    assert env["PATH"].split(os.pathsep)[:2] == [str(tmp_path / "bin"), str(REPO_ROOT / ".venv" / "bin")]
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["PULUMI_HOME"] == str(tmp_path / "ws" / "home")
    assert "PULUMI_ACCESS_TOKEN" not in env and env["EXTRA"] == "1"


def test_the_users_own_engine_keeps_its_plugins_and_downloads(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws", Engine(fake_pulumi(tmp_path / "bin"), built=False)).prepare()
    env = workspace.environment()
    variable = "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"
    assert env.get(variable) == os.environ.get(variable)
    assert env.get("PULUMI_HOME") == os.environ.get("PULUMI_HOME")
    assert str(tmp_path / "bin") not in env["PATH"].split(os.pathsep)[:1]
    assert workspace.run(["version"]).stdout.strip() == "v3.0.0-fake"


def test_the_engines_go_programs_collect_garbage_less_often_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = Workspace(tmp_path / "ws", Engine(fake_pulumi(tmp_path / "bin"), built=True)).prepare()
    monkeypatch.delenv("GOGC", raising=False)
    assert workspace.environment()["GOGC"] == "400"
    monkeypatch.setenv("GOGC", "100")
    assert workspace.environment()["GOGC"] == "100"
    assert workspace.environment({"GOGC": None}).get("GOGC") is None

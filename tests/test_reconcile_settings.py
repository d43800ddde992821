"""Where reconcile finds Bubble and how fast it may ask it: the stack file (bubbleBaseUrl,
bubbleRateLimitPerMinute, reconcileRatePercent) or the flags, the token from $BUBBLE_API_TOKEN; and the flags
refused before anything is asked of the database or Bubble (exit 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.__main__ import main
from components.config_keys import KEYS
from components.operator.reconcile import ReconcileError, resolve_settings

PROJECT = Path(__file__).resolve().parent.parent
TOKEN = {"BUBBLE_API_TOKEN": "bubble-token-for-settings-test"}


def project_with(tmp_path: Path, extra: str = "") -> Path:
    shutil.copy(PROJECT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    text = (PROJECT / "Pulumi.local.yaml").read_text(encoding="utf-8") + extra
    (tmp_path / "Pulumi.local.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_key_is_an_integer_percent_defaulting_to_a_fifth() -> None:
    spec = next(k for k in KEYS if k.name == "reconcileRatePercent")
    assert (spec.type, spec.default, spec.range, spec.env) == ("integer", 20, (1, 100), None)


def test_a_stack_gives_bubbles_url_its_limit_and_reconciles_share(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    plain = resolve_settings(stack="local", project_dir=project, bubble_url=None, rate_limit_per_minute=None,
                             environ=TOKEN)  # fmt: skip
    assert plain.base_url == "http://127.0.0.1:54330/version-test/api/1.1"
    assert (plain.rate_limit_per_minute, plain.share_percent, plain.per_minute) == (1000, 20, 200)
    assert plain.token == TOKEN["BUBBLE_API_TOKEN"]
    assert TOKEN["BUBBLE_API_TOKEN"] not in plain.describe()

    project = project_with(
        tmp_path, "  bubble-sync:bubbleRateLimitPerMinute: 15000\n  bubble-sync:reconcileRatePercent: 10\n"
    )
    tuned = resolve_settings(stack="local", project_dir=project, bubble_url="https://x.example/api/1.1/",
                             rate_limit_per_minute=None, environ=TOKEN)  # fmt: skip
    assert (tuned.base_url, tuned.per_minute) == ("https://x.example/api/1.1", 1500)
    assert "at most 10 % of 15,000 requests/min: 1,500/min" in tuned.describe()


def test_a_share_out_of_range_names_the_key(tmp_path: Path) -> None:
    project = project_with(tmp_path, "  bubble-sync:reconcileRatePercent: 0\n")
    with pytest.raises(ReconcileError, match="reconcileRatePercent: must be from 1 to 100, got 0"):
        resolve_settings(stack="local", project_dir=project, bubble_url=None, rate_limit_per_minute=None,
                         environ=TOKEN)  # fmt: skip


def test_without_a_stack_bubbles_url_is_a_flag_and_the_limit_its_default() -> None:
    with pytest.raises(ReconcileError, match="--bubble-url"):
        resolve_settings(stack=None, project_dir=PROJECT, bubble_url=None, rate_limit_per_minute=None,
                         environ=TOKEN)  # fmt: skip
    given = resolve_settings(stack=None, project_dir=PROJECT, bubble_url="http://127.0.0.1:9/api/1.1",
                             rate_limit_per_minute=None, environ=TOKEN)  # fmt: skip
    assert (given.rate_limit_per_minute, given.share_percent) == (1000, 20)
    with pytest.raises(ReconcileError, match="Data API root"):
        resolve_settings(stack=None, project_dir=PROJECT, bubble_url="bubble.example",
                         rate_limit_per_minute=1, environ=TOKEN)  # fmt: skip


def test_the_token_comes_from_the_environment_only() -> None:
    with pytest.raises(ReconcileError, match=r"\$BUBBLE_API_TOKEN .*pulumi config get bubbleApiToken"):
        resolve_settings(stack=None, project_dir=PROJECT, bubble_url="http://127.0.0.1:9/api/1.1",
                         rate_limit_per_minute=None, environ={})  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--dry-run"], "--dry-run goes with --repair"),
        (["--delete-duplicates"], "--delete-duplicates goes with --repair"),
        (["--chunk-size", "0"], "--chunk-size 0"),
    ],
)
def test_flags_that_do_not_fit_exit_2_before_connecting(
    flags: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUBBLE_API_TOKEN", "t")
    code = main(["reconcile", "--database-url", "postgresql://nobody@127.0.0.1:9/none",
                 "--bubble-url", "http://127.0.0.1:9/api/1.1", *flags])  # fmt: skip
    assert code == 2
    assert said in capsys.readouterr().err


def test_no_database_exits_2_without_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUBBLE_API_TOKEN", "t")
    code = main(["reconcile", "--database-url", "postgresql://me:s3cret-pw@127.0.0.1:9/none",
                 "--bubble-url", "http://127.0.0.1:9/api/1.1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "cannot connect" in err and "s3cret-pw" not in err

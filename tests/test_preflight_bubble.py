"""`python -m components preflight`'s Bubble checks (components/preflight/bubble.py) against the Bubble double
(devstack/bubble_double), configured the way a user's app can make each check fail: no token, a refused token,
Bubble down, a data type the Data API does not expose, a key field the type lacks, a search by email that
does not reach users' built-in email (each plausible answer, since Bubble does not document it), and the
write probe recording each plausible way an app refuses a used email. No output may show the token.

Sources of the double's answers: Bubble's manual (Data API requests, "Creating users", hard limits) and the
facts checked against primary sources in November 2026.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from components import preflight
from components.preflight import bubble as bubble_checks
from devstack.bubble_double import BubbleDouble
from devstack.cluster import free_port

STACK = "pfb"
TOKEN = "bubble-token-0123456789abcdef0123456789"
ENCRYPTED = {"secure": "v1:AAAAAAAAAAAAAAAA:not-readable-here"}
READ_CHECKS = (
    "bubble.token",
    "bubble.reachable",
    "bubble.token_accepted",
    "bubble.data_type",
    "bubble.key_field",
    "bubble.email_lookup",
    "bubble.rate_limit",
)
WRITE_CHECKS = ("bubble.write_create", "bubble.write_modify", "bubble.used_email", "bubble.write_delete")
# The local app: users carry the external key and a name (display names; Bubble's ids end in _text).
SCHEMA = {"user": ["supabase_id", "first_name"], "signup": ["supabase_id", "email"]}


@pytest.fixture
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=TOKEN, schema=SCHEMA) as double:
        yield double


def make_user(bubble: BubbleDouble, email: str) -> str:
    answer = httpx.post(
        f"{bubble.url}/version-test/api/1.1/obj/user",
        json={"email": email, "first_name": "Made in Bubble"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


class Run:
    """One preflight run of the Bubble group, text and JSON."""

    def __init__(
        self,
        tmp_path: Path,
        bubble: BubbleDouble,
        *,
        env: dict[str, str] | None = None,
        write_probe: bool = False,
        **config: Any,
    ) -> None:
        values: dict[str, Any] = {
            "projectRef": "abcdefghijklmnopqrst",
            "serviceRoleKey": ENCRYPTED,
            "bubbleBaseUrl": f"{bubble.url}/version-test/api/1.1",
            "bubbleApiToken": ENCRYPTED,
            "deployEdgeFunction": False,
            **config,
        }
        lines = ["config:"]
        for key, value in values.items():
            if isinstance(value, dict):
                lines += [f"  bubble-sync:{key}:", f"    secure: {value['secure']}"]
            else:
                lines.append(f"  bubble-sync:{key}: {json.dumps(value)}")
        (tmp_path / f"Pulumi.{STACK}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        environ = {"BUBBLE_API_TOKEN": TOKEN} if env is None else env
        out, err = io.StringIO(), io.StringIO()
        self.code = preflight.run_preflight(
            STACK, project_dir=tmp_path, environ=environ, groups=(bubble_checks,), out=out, err=err,
            as_json=True, write_probe=write_probe, http_timeout=5,
        )  # fmt: skip
        self.json_text, self.err = out.getvalue(), err.getvalue()
        assert self.code != 2, self.err
        self.checks = {c["id"]: c for c in json.loads(self.json_text)["checks"]}
        text = io.StringIO()
        preflight.run_preflight(
            STACK, project_dir=tmp_path, environ=environ, groups=(bubble_checks,), out=text, err=err,
            http_timeout=5,
        )  # fmt: skip
        self.text = text.getvalue()
        assert TOKEN not in self.json_text + self.text + self.err, "the token is printed"

    def status(self, check: str) -> str:
        return str(self.checks[check]["status"])

    def statuses(self, *checks: str) -> list[str]:
        return [self.status(c) for c in checks]


def test_every_read_check_passes_on_an_app_that_fits(tmp_path: Path, bubble: BubbleDouble) -> None:
    make_user(bubble, "Ada@Example.com")
    run = Run(tmp_path, bubble)
    assert run.code == 0, run.text
    assert run.statuses(*READ_CHECKS) == ["ok"] * len(READ_CHECKS)
    assert run.statuses(*WRITE_CHECKS) == ["skipped"] * len(WRITE_CHECKS)
    assert "--write-probe" in run.checks["bubble.write_create"]["detail"]
    assert "1,000/min" in run.checks["bubble.rate_limit"]["detail"]
    # read-only: GETs only (after the one POST that made the user)
    assert {r["method"] for r in bubble.requests()[1:]} == {"GET"}


def test_no_token_in_the_environment_says_how_to_export_the_stacks(
    tmp_path: Path, bubble: BubbleDouble
) -> None:
    run = Run(tmp_path, bubble, env={})
    assert (run.code, run.status("bubble.token")) == (1, "failed")
    assert "pulumi config get bubbleApiToken --stack pfb" in run.checks["bubble.token"]["fix"]
    assert all(run.status(c) == "skipped" for c in READ_CHECKS[1:] + WRITE_CHECKS)
    assert bubble.requests() == []


def test_a_refused_token_is_named_and_the_rest_skipped(tmp_path: Path, bubble: BubbleDouble) -> None:
    bubble.configure(token="another-apps-token-0123456789abcdef")
    run = Run(tmp_path, bubble)
    assert run.statuses("bubble.reachable", "bubble.token_accepted") == ["ok", "failed"]
    # Bubble's 401 body (captured responses): its translation is what the user sees
    assert "401" in run.checks["bubble.token_accepted"]["detail"]
    assert "Unauthorized" in run.checks["bubble.token_accepted"]["detail"]
    assert run.status("bubble.data_type") == "skipped"


def test_bubble_down_is_a_failure_to_try_again(tmp_path: Path, bubble: BubbleDouble) -> None:
    bubble.configure(outage_status=503)
    run = Run(tmp_path, bubble)
    assert run.status("bubble.reachable") == "failed"
    assert "try again" in run.checks["bubble.reachable"]["fix"]
    assert run.status("bubble.token_accepted") == "skipped"


def test_nothing_listening_at_the_base_url_names_the_key(tmp_path: Path, bubble: BubbleDouble) -> None:
    closed = f"http://127.0.0.1:{free_port()}/version-test/api/1.1"
    run = Run(tmp_path, bubble, bubbleBaseUrl=closed)
    assert run.status("bubble.reachable") == "failed"
    assert "ConnectError" in run.checks["bubble.reachable"]["detail"]
    assert "bubbleBaseUrl" in run.checks["bubble.reachable"]["fix"]


def test_a_data_type_the_data_api_does_not_expose(tmp_path: Path, bubble: BubbleDouble) -> None:
    run = Run(tmp_path, bubble, bubbleDataType="customer")
    assert run.status("bubble.data_type") == "failed"
    assert "404" in run.checks["bubble.data_type"]["detail"]
    assert "Settings > API" in run.checks["bubble.data_type"]["fix"]
    assert run.status("bubble.key_field") == "skipped"


def test_a_key_field_the_type_lacks(tmp_path: Path, bubble: BubbleDouble) -> None:
    run = Run(tmp_path, bubble, bubbleExternalKeyField="external_key")
    assert (run.code, run.status("bubble.key_field")) == (1, "failed")
    assert "Unrecognized field: external_key" in run.checks["bubble.key_field"]["detail"]
    assert "add a text field 'external_key'" in run.checks["bubble.key_field"]["fix"]


@pytest.mark.parametrize(("search", "said"), [("empty", "answered 200"), ("refused", "answered 404")])
def test_a_search_by_email_that_does_not_reach_users_emails(
    tmp_path: Path, bubble: BubbleDouble, search: str, said: str
) -> None:
    # undocumented: whether the key "email" reaches the built-in email (the double answers each way)
    make_user(bubble, "ada@example.com")
    bubble.configure(user_email_search=search)
    run = Run(tmp_path, bubble)
    assert (run.code, run.status("bubble.email_lookup")) == (1, "failed")
    assert said in run.checks["bubble.email_lookup"]["detail"]
    assert "cannot be linked" in run.checks["bubble.email_lookup"]["detail"]


def test_the_email_lookup_needs_a_user_or_the_write_probe(tmp_path: Path, bubble: BubbleDouble) -> None:
    run = Run(tmp_path, bubble)
    assert run.status("bubble.email_lookup") == "skipped"
    assert "--write-probe" in run.checks["bubble.email_lookup"]["detail"]
    other_type = Run(tmp_path, bubble, bubbleDataType="signup")
    assert other_type.status("bubble.email_lookup") == "skipped"


def test_an_unpaced_stack_is_warned(tmp_path: Path, bubble: BubbleDouble) -> None:
    run = Run(tmp_path, bubble, bubbleRateLimitPerMinute=0)
    assert (run.code, run.status("bubble.rate_limit")) == (0, "warning")
    assert "Growth 25,000" in run.checks["bubble.rate_limit"]["fix"]


@pytest.mark.parametrize(
    ("answer", "recorded"),
    [("code", "HTTP 400, code USED_EMAIL"), ("message", "HTTP 400, code INVALID_DATA"),
     ("worded", "HTTP 400, code INVALID_DATA"), ("conflict", "HTTP 409, code CONFLICT")],
)  # fmt: skip
def test_the_write_probe_proves_writes_records_the_used_email_answer_and_leaves_nothing(
    tmp_path: Path, bubble: BubbleDouble, answer: str, recorded: str
) -> None:
    bubble.configure(used_email_answer=answer)
    run = Run(tmp_path, bubble, write_probe=True)
    assert run.code == 0, run.text
    assert run.statuses(*WRITE_CHECKS) == ["ok"] * 4
    assert recorded in run.checks["bubble.used_email"]["detail"]
    assert bubble.records("user", env="test") == []  # deleted again
    created = [
        json.loads(r["body"]) for r in bubble.requests() if r["method"] == "POST" and r["status"] == 201
    ]
    assert all(c["supabase_id"].startswith("bubble-sync-preflight-") for c in created)


def test_the_write_probe_on_a_type_of_the_apps_own_and_on_one_that_refuses_the_key(
    tmp_path: Path, bubble: BubbleDouble
) -> None:
    run = Run(tmp_path, bubble, write_probe=True, bubbleDataType="signup")
    assert run.statuses(*WRITE_CHECKS) == ["ok", "ok", "skipped", "ok"]
    assert bubble.records("signup", env="test") == []
    # a display name with a space works in bodies and searches alike (manual)
    bubble.configure(schema={"signup": {"Supabase ID": "text"}})
    spaced = Run(
        tmp_path, bubble, write_probe=True, bubbleDataType="signup", bubbleExternalKeyField="Supabase ID"
    )
    assert spaced.statuses("bubble.key_field", "bubble.write_create") == ["ok", "ok"]
    # a type without the key field: the search fails, and so does the create, with Bubble's words
    bubble.configure(schema={"signup": ["email"]})
    refused = Run(tmp_path, bubble, write_probe=True, bubbleDataType="signup")
    assert refused.status("bubble.write_create") == "failed"
    assert "Unrecognized field" in refused.checks["bubble.write_create"]["detail"]
    assert refused.statuses(*WRITE_CHECKS[1:]) == ["skipped"] * 3


def test_the_group_runs_in_the_command(tmp_path: Path, bubble: BubbleDouble) -> None:
    assert bubble_checks in preflight.GROUPS

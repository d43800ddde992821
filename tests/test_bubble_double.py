"""Tests for the Bubble Data API test double (devstack/bubble_double/), driven over real HTTP.

Why one module: its tests share the `bubble`/`client` fixtures and together specify the double's Data API
behaviour, which devstack/bubble_double/double.py implements as one class.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.bubble_double import BubbleDouble, user_email
from devstack.bubble_double.double import UNAUTHORIZED_BODY

TOKEN = "0123456789abcdef0123456789abcdef"
LIVE = "/api/1.1/obj"
TEST = "/version-test/api/1.1/obj"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=TOKEN) as double:
        yield double


@pytest.fixture
def client(bubble: BubbleDouble) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bubble.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as c:
        yield c


def search(client: httpx.Client, *constraints: dict[str, Any], prefix: str = LIVE, **params: Any) -> Any:
    response = client.get(f"{prefix}/user", params={"constraints": json.dumps(constraints), **params})
    assert response.status_code == 200, response.text
    return response.json()["response"]


def bulk(client: httpx.Client, *lines: str, type_: str = "user") -> httpx.Response:
    return client.post(
        f"{LIVE}/{type_}/bulk", content="\n".join(lines), headers={"Content-Type": "text/plain"}
    )


def test_create_answers_201_with_a_bubble_id_and_stores_the_record(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    response = client.post(f"{LIVE}/user", json={"email": "ada@example.com", "name": "Ada"})

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "success"
    assert re.fullmatch(r"\d{13}x\d{18}", body["id"])
    [record] = bubble.records("user")
    assert record["_id"] == body["id"]
    # manual, captured responses: a user's email lives under authentication.email.email
    assert record["authentication"]["email"]["email"] == "ada@example.com" and "email" not in record
    assert record["name"] == "Ada"
    assert record["Created Date"] == record["Modified Date"]
    assert record["Created Date"].endswith("Z")


def test_patch_answers_204_and_changes_only_the_given_fields(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    thing_id = client.post(f"{LIVE}/user", json={"email": "a@example.com", "name": "A"}).json()["id"]

    response = client.patch(f"{LIVE}/user/{thing_id}", json={"name": "B"})

    assert response.status_code == 204
    assert response.content == b""
    record = client.get(f"{LIVE}/user/{thing_id}").json()["response"]
    assert (record["_id"], user_email(record), record["name"]) == (thing_id, "a@example.com", "B")
    assert record["Modified Date"] >= record["Created Date"]
    assert client.patch(f"{LIVE}/user/1x1", json={"name": "C"}).status_code == 404
    # A 204 carries no body, so the keep-alive connection stays usable for the next request.
    assert len({entry["connection"] for entry in bubble.requests()}) == 1


def test_unknown_id_answers_404_in_bubbles_error_envelope(client: httpx.Client) -> None:
    response = client.get(f"{LIVE}/user/1700000000000x000000000000000001")

    assert response.status_code == 404
    body = response.json()
    assert body["statusCode"] == 404
    assert body["body"]["status"] == "MISSING_DATA"
    assert "1700000000000x000000000000000001" in body["body"]["message"]


def test_put_replaces_and_delete_removes(bubble: BubbleDouble, client: httpx.Client) -> None:
    thing_id = client.post(f"{LIVE}/item", json={"a": 1, "b": 2}).json()["id"]

    assert client.put(f"{LIVE}/item/{thing_id}", json={"a": 3}).status_code == 204
    record = bubble.records("item")[0]
    assert record["a"] == 3 and "b" not in record and record["_id"] == thing_id
    assert client.delete(f"{LIVE}/item/{thing_id}").status_code == 204
    assert bubble.records("item") == []


def test_search_filters_by_constraints_and_pages_with_cursor(client: httpx.Client) -> None:
    for n in range(5):
        fields = {"email": f"u{n}@example.com", "n": n}
        if n % 2 == 0:
            fields["plan"] = "pro"
        client.post(f"{LIVE}/user", json=fields)

    found = search(client, {"key": "email", "constraint_type": "equals", "value": "u3@example.com"})
    assert [r["n"] for r in found["results"]] == [3]
    assert (found["count"], found["remaining"]) == (1, 0)
    assert [r["n"] for r in search(client, {"key": "plan", "constraint_type": "is_empty"})["results"]] == [
        1,
        3,
    ]
    not_pro = search(client, {"key": "plan", "constraint_type": "not equal", "value": "pro"})
    assert [r["n"] for r in not_pro["results"]] == [1, 3]
    in_list = search(client, {"key": "n", "constraint_type": "in", "value": [0, 4, 9]})
    assert [r["n"] for r in in_list["results"]] == [0, 4]

    first = search(client, limit=2)
    assert [r["n"] for r in first["results"]] == [0, 1]
    assert (first["cursor"], first["count"], first["remaining"]) == (0, 2, 3)
    last = search(client, limit=2, cursor=4)
    assert [r["n"] for r in last["results"]] == [4]
    assert (last["cursor"], last["count"], last["remaining"]) == (4, 1, 0)


def test_searches_and_the_email_check_follow_every_change(bubble: BubbleDouble, client: httpx.Client) -> None:
    """The store indexes emails and searched text fields (so it stays fast as it fills): every create, modify
    and delete must show in them, and results keep creation order."""

    def by_key(kind: str, value: Any) -> list[str]:
        found = search(client, {"key": "key", "constraint_type": kind, "value": value})["results"]
        return [str(user_email(r)) for r in found]

    ids = {}
    for name, key in [("a", "k1"), ("b", "k2"), ("c", "k1")]:
        ids[name] = client.post(f"{LIVE}/user", json={"email": f"{name}@example.com", "key": key}).json()[
            "id"
        ]
    assert by_key("equals", "k1") == ["a@example.com", "c@example.com"]
    client.patch(f"{LIVE}/user/{ids['a']}", json={"key": "k3"})
    assert by_key("equals", "k1") == ["c@example.com"]
    assert by_key("equals", "k3") == ["a@example.com"]
    assert by_key("in", ["k2", "k3", "k1"]) == ["a@example.com", "b@example.com", "c@example.com"]
    client.delete(f"{LIVE}/user/{ids['c']}")
    assert by_key("in", ["k1", "k2"]) == ["b@example.com"]
    # a deleted user's email is free again; a changed one frees the old and takes the new
    assert client.post(f"{LIVE}/user", json={"email": "c@example.com", "key": "k1"}).status_code == 201
    assert by_key("equals", "k1") == ["c@example.com"]
    bubble.configure(user_email_patch="accept")
    assert client.patch(f"{LIVE}/user/{ids['b']}", json={"email": "b2@example.com"}).status_code == 204
    assert client.post(f"{LIVE}/user", json={"email": "b@example.com"}).status_code == 201
    assert client.post(f"{LIVE}/user", json={"email": "B2@example.com"}).status_code == 400
    # a number never equals text, indexed or not
    client.post(f"{LIVE}/user", json={"email": "n@example.com", "key": 1})
    assert by_key("equals", "1") == [] and by_key("equals", 1) == ["n@example.com"]


def test_search_limit_is_capped_at_100(client: httpx.Client) -> None:
    assert bulk(client, *[json.dumps({"n": n}) for n in range(105)], type_="item").status_code == 200

    page = client.get(f"{LIVE}/item", params={"limit": 500}).json()["response"]

    assert (page["count"], page["remaining"]) == (100, 5)


@pytest.mark.parametrize(
    "constraints",
    ["not json", '{"key": "email"}', '[{"key": "email", "constraint_type": "resembles", "value": 1}]'],
)
def test_malformed_constraints_answer_400(client: httpx.Client, constraints: str) -> None:
    response = client.get(f"{LIVE}/user", params={"constraints": constraints})

    assert response.status_code == 400
    assert response.json()["body"]["status"] == "INVALID_DATA"


def test_chunked_request_bodies_are_read_and_the_connection_reused(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # httpx sends an iterator body with Transfer-Encoding: chunked.
    response = client.post(f"{LIVE}/user", content=iter([b'{"email": "chunk', b'@example.com"}']))

    assert response.status_code == 201
    assert (
        user_email(client.get(f"{LIVE}/user/{response.json()['id']}").json()["response"])
        == "chunk@example.com"
    )
    assert len({entry["connection"] for entry in bubble.requests()}) == 1


def test_concurrent_creates_with_one_email_store_exactly_one(bubble: BubbleDouble) -> None:
    def create(_: int) -> int:
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            return c.post(f"{bubble.url}{LIVE}/user", json={"email": "race@example.com"}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(create, range(10)))

    assert statuses == [201] + [400] * 9
    assert len(bubble.records("user")) == 1


def test_live_and_test_prefixes_have_separate_stores(bubble: BubbleDouble, client: httpx.Client) -> None:
    live_id = client.post(f"{LIVE}/user", json={"email": "same@example.com"}).json()["id"]
    # The same email is fine in the other environment, because the data is separate.
    test_response = client.post(f"{TEST}/user", json={"email": "same@example.com"})

    assert test_response.status_code == 201
    assert client.get(f"{TEST}/user/{live_id}").status_code == 404
    assert [r["_id"] for r in bubble.records("user", env="live")] == [live_id]
    assert [r["_id"] for r in bubble.records("user", env="test")] == [test_response.json()["id"]]
    assert search(client, prefix=TEST)["count"] == 1


def test_bulk_answers_one_result_per_line_and_keeps_the_good_lines(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    client.post(f"{LIVE}/user", json={"email": "taken@example.com"})

    response = bulk(
        client,
        json.dumps({"email": "one@example.com"}),
        "{not json",
        json.dumps({"email": "TAKEN@example.com"}),
        json.dumps({"email": "two@example.com"}),
        json.dumps({"email": "two@example.com"}),
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    results = [json.loads(line) for line in response.text.splitlines()]
    assert [r["status"] for r in results] == ["success", "error", "error", "success", "error"]
    assert "already exists" in results[2]["message"]
    emails = [user_email(r) for r in bubble.records("user")]
    assert emails == ["taken@example.com", "one@example.com", "two@example.com"]
    assert [r["_id"] for r in bubble.records("user")[1:]] == [results[0]["id"], results[3]["id"]]


def test_bulk_over_1000_lines_is_refused_whole(bubble: BubbleDouble, client: httpx.Client) -> None:
    response = bulk(client, *[json.dumps({"n": n}) for n in range(1001)])

    assert response.status_code == 400
    assert response.json()["body"]["status"] == "INVALID_DATA"
    assert bubble.records("user") == []


@pytest.mark.parametrize("authorization", [None, f"Bearer {TOKEN}x", "Bearer", f"Basic {TOKEN}"])
def test_missing_or_wrong_token_answers_401_and_stores_nothing(
    bubble: BubbleDouble, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = httpx.post(f"{bubble.url}{LIVE}/user", json={"email": "x@example.com"}, headers=headers)

    assert response.status_code == 401
    # captured responses: a 401 has its own shape, not the {statusCode, body} envelope of a 400
    assert response.json() == UNAUTHORIZED_BODY and set(UNAUTHORIZED_BODY) >= {"error_class", "translation"}
    assert bubble.records("user") == []


def test_user_email_is_unique_ignoring_case_on_create_and_patch(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    client.post(f"{LIVE}/user", json={"email": "dup@example.com"})
    other_id = client.post(f"{LIVE}/user", json={"email": "other@example.com"}).json()["id"]

    create = client.post(f"{LIVE}/user", json={"email": "DUP@Example.com"})
    bubble.configure(user_email_patch="accept")
    patch = client.patch(f"{LIVE}/user/{other_id}", json={"email": "dup@example.com", "name": "x"})
    invalid = client.post(f"{LIVE}/user", json={"email": "not-an-email"})

    assert create.status_code == 400 and create.json()["body"]["status"] == "USED_EMAIL"
    assert patch.status_code == 400 and "dup@example.com" in patch.json()["body"]["message"]
    assert invalid.status_code == 400 and invalid.json()["body"]["status"] == "NOT_VALID_EMAIL"
    records = bubble.records("user")
    assert [user_email(r) for r in records] == ["dup@example.com", "other@example.com"]
    assert "name" not in records[1]
    # Re-saving a user's own email is not a duplicate.
    assert client.patch(f"{LIVE}/user/{other_id}", json={"email": "OTHER@example.com"}).status_code == 204


def test_rate_limit_answers_429_with_retry_after_and_changes_nothing(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # 6/min refills one token every 10 s, so the third request cannot be admitted during this test.
    bubble.configure(rate_limit_per_minute=6, rate_limit_burst=2)

    statuses = [client.post(f"{LIVE}/item", json={"n": n}).status_code for n in range(2)]
    limited = client.post(f"{LIVE}/item", json={"n": 2})

    assert statuses == [201, 201]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    assert limited.json()["statusCode"] == 429
    assert [r["n"] for r in bubble.records("item")] == [0, 1]
    bubble.configure(rate_limit_per_minute=0)
    assert client.post(f"{LIVE}/item", json={"n": 3}).status_code == 201


def test_status_fault_with_count_1_fails_once_then_succeeds(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    bubble.configure(faults=[{"kind": "status", "status": 503, "count": 1, "method": "POST"}])

    first = client.post(f"{LIVE}/item", json={"n": 1})
    second = client.post(f"{LIVE}/item", json={"n": 2})

    assert first.status_code == 503
    assert first.json()["body"]["status"] == "SERVICE_UNAVAILABLE"
    assert second.status_code == 201
    assert [r["n"] for r in bubble.records("item")] == [2]
    assert [entry["fault"] for entry in bubble.requests()] == ["status", None]


def test_outage_answers_503_to_every_request_before_the_rate_limit_and_stores_nothing(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # One token in the bucket: a status fault rule would let the second request see 429.
    bubble.configure(rate_limit_per_minute=6, rate_limit_burst=1, outage_status=503)
    wrong_token = {"Authorization": "Bearer wrong"}

    answers = [
        client.post(f"{LIVE}/item", json={"n": 1}),
        client.get(f"{TEST}/item"),
        client.post(f"{LIVE}/item/bulk", content='{"n": 2}', headers={"Content-Type": "text/plain"}),
        client.get(f"{LIVE}/item", headers=wrong_token),
    ]

    assert [a.status_code for a in answers] == [503, 503, 503, 503]
    assert answers[0].json()["body"]["status"] == "SERVICE_UNAVAILABLE"
    assert bubble.records("item") == [] and bubble.records("item", env="test") == []
    assert {entry["fault"] for entry in bubble.requests()} == {"outage"}
    assert bubble.config()["outage_status"] == 503
    # Back up: the outage took nothing from the bucket, so its one token is still there.
    bubble.configure(outage_status=None)
    assert client.post(f"{LIVE}/item", json={"n": 3}).status_code == 201
    assert client.post(f"{LIVE}/item", json={"n": 4}).status_code == 429
    with pytest.raises(ValueError):
        bubble.configure(outage_status=404)
    bubble.configure(outage_status=502)
    bubble.reset()
    assert bubble.config()["outage_status"] is None


def test_fault_probability_is_reproducible_with_a_seed(bubble: BubbleDouble, client: httpx.Client) -> None:
    def run() -> list[int]:
        bubble.reset()
        bubble.configure(seed=7, faults=[{"kind": "status", "status": 500, "probability": 0.5}])
        return [client.get(f"{LIVE}/user").status_code for _ in range(20)]

    first, second = run(), run()

    assert first == second
    assert set(first) == {200, 500}


def test_hang_outlasts_a_short_client_timeout_without_blocking_others(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    bubble.configure(faults=[{"kind": "hang", "hang_seconds": 2.0, "count": 1, "method": "POST"}])

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"{LIVE}/item", json={"n": 1}, timeout=0.3)
    # The hung request sleeps without the store's lock, so other requests are served meanwhile: before the
    # hang ends (a GET that waited for it would come after 2 s).
    assert client.get(f"{LIVE}/item").status_code == 200
    assert time.monotonic() - started < 1.8

    # After the hang the request is processed normally, so the give-up was ambiguous.
    deadline = time.monotonic() + 3
    while not bubble.records("item") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["n"] for r in bubble.records("item")] == [1]


def test_close_after_store_drops_the_connection_but_keeps_the_record(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    bubble.configure(faults=[{"kind": "close_after_store", "count": 1}])

    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{LIVE}/user", json={"email": "ambiguous@example.com"})

    assert [user_email(r) for r in bubble.records("user")] == ["ambiguous@example.com"]
    entry = bubble.requests()[-1]
    assert (entry["status"], entry["responded"], entry["fault"]) == (201, False, "close_after_store")
    # The rule is spent: the client's retry is answered (and hits the duplicate).
    assert client.post(f"{LIVE}/user", json={"email": "ambiguous@example.com"}).status_code == 400


def test_latency_delays_each_request(bubble: BubbleDouble, client: httpx.Client) -> None:
    bubble.configure(latency_ms=150)

    started = time.monotonic()
    client.get(f"{LIVE}/user")

    assert time.monotonic() - started >= 0.15


def test_request_log_has_no_token_and_caps_bodies(bubble: BubbleDouble, client: httpx.Client) -> None:
    client.post(f"{LIVE}/item", json={"bio": "x" * 5000})
    # Bubble also takes the token as a query parameter; the log must not keep it there either.
    client.get(f"{LIVE}/item", params={"api_token": TOKEN})

    log = bubble.requests()

    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", f"{LIVE}/item", 201),
        ("GET", f"{LIVE}/item", 200),
    ]
    assert TOKEN not in json.dumps(log)
    assert all("authorization" not in key.lower() for entry in log for key in entry)
    assert log[0]["body_bytes"] > 5000 and len(log[0]["body"]) <= 201
    # One client, one keep-alive connection: Content-Length framing is right.
    assert log[0]["connection"] == log[1]["connection"]


def test_admin_endpoints_configure_inspect_and_reset(bubble: BubbleDouble, client: httpx.Client) -> None:
    admin = httpx.Client(base_url=f"{bubble.url}/_double")
    client.post(f"{TEST}/user", json={"email": "t@example.com"})

    assert admin.get("/health").status_code == 200
    assert [
        user_email(r) for r in admin.get("/records", params={"env": "test", "type": "user"}).json()["records"]
    ] == ["t@example.com"]
    assert len(admin.get("/requests").json()["requests"]) == 1
    configured = admin.post(
        "/config", json={"latency_ms": 5, "faults": [{"kind": "hang", "hang_seconds": 0}]}
    )
    assert configured.status_code == 200
    assert configured.json()["config"]["latency_ms"] == 5 and "token" not in configured.json()["config"]
    assert admin.post("/config", json={"latency_ms": -1}).status_code == 400
    assert admin.post("/config", json={"no_such_knob": 1}).status_code == 400

    assert admin.post("/reset").status_code == 200
    assert bubble.records("user", env="test") == []
    assert bubble.requests() == []
    assert bubble.config()["faults"] == [] and bubble.config()["latency_ms"] == 5
    with pytest.raises(ValueError):
        bubble.configure(faults=[{"kind": "explode"}])


def test_cli_prints_the_url_then_stops_on_sigterm() -> None:
    env = {**os.environ, "BUBBLE_DOUBLE_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.bubble_double", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"BUBBLE_URL=(http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        response = httpx.post(
            f"{match[1]}{LIVE}/item", json={"n": 1}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 201

        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr
    assert stdout == ""  # exactly one line in all
    assert TOKEN not in line + stdout + stderr


# --- what Bubble's manual documents, and each plausible answer where it is silent ---------------------------
# Sources: manual.bubble.io "Data API requests" (creating users, bulk, search constraints) and captured
# responses, as summarised in the facts checked against primary sources in November 2026.


def test_a_user_needs_an_email_and_its_password_is_never_returned(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # manual, "Creating users": Email is required, Password optional
    refused = client.post(f"{LIVE}/user", json={"name": "No Email"})
    created = client.post(f"{LIVE}/user", json={"email": "p@example.com", "password": "s3cret-pw"})

    assert refused.status_code == 400 and "email is required" in refused.json()["body"]["message"]
    assert created.status_code == 201
    [record] = bubble.records("user")
    assert "s3cret-pw" not in json.dumps(record) and "password" not in record


def test_an_app_with_a_schema_refuses_unknown_types_and_fields_but_searches_by_id_too(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    bubble.configure(schema={"user": ["supabase_id", "full name"]})
    thing_id = client.post(
        f"{LIVE}/user", json={"email": "s@example.com", "supabase_id": "profiles:1"}
    ).json()["id"]

    # manual + a third-party live test: bodies take display names; the field id is "Unrecognized field"
    by_id = client.post(f"{LIVE}/user", json={"email": "t@example.com", "supabase_id_text": "profiles:2"})
    patch = client.patch(f"{LIVE}/user/{thing_id}", json={"nickname": "x"})
    unknown_type = client.get(f"{LIVE}/signup")

    assert (
        by_id.status_code == 400 and by_id.json()["body"]["message"] == "Unrecognized field: supabase_id_text"
    )
    assert patch.status_code == 400 and patch.json()["body"]["message"] == "Unrecognized field: nickname"
    assert unknown_type.status_code == 404
    # manual: search constraints accept the display name and the id alike
    for key in ("supabase_id", "supabase_id_text"):
        found = search(client, {"key": key, "constraint_type": "equals", "value": "profiles:1"})
        assert [r["_id"] for r in found["results"]] == [thing_id]
    assert (
        client.get(
            f"{LIVE}/user",
            params={"constraints": json.dumps([{"key": "nope", "constraint_type": "is_empty"}])},
        ).status_code
        == 400
    )
    assert bubble.config()["schema"] == {"user": {"supabase_id": "text", "full name": "text"}}


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [("code", 400, "USED_EMAIL"), ("message", 400, "INVALID_DATA"), ("worded", 400, "INVALID_DATA"),
     ("conflict", 409, "CONFLICT")],
)  # fmt: skip
def test_a_used_email_is_refused_in_each_plausible_way(
    bubble: BubbleDouble, client: httpx.Client, answer: str, status: int, code: str
) -> None:
    # Bubble documents the code USED_EMAIL, not the HTTP status nor where the code sits
    bubble.configure(used_email_answer=answer)
    client.post(f"{LIVE}/user", json={"email": "dup@example.com"})

    refused = client.post(f"{LIVE}/user", json={"email": "Dup@example.com"})
    line = json.loads(bulk(client, json.dumps({"email": "Dup@example.com"})).text)

    assert (refused.status_code, refused.json()["body"]["status"]) == (status, code)
    assert ("USED_EMAIL" in refused.text) == (answer in ("code", "message"))
    assert line["status"] == "error" and line["message"] == refused.json()["body"]["message"]
    assert len(bubble.records("user")) == 1


@pytest.mark.parametrize(
    ("mode", "status", "found"), [("builtin", 200, 1), ("empty", 200, 0), ("refused", 404, 0)]
)
def test_searching_users_by_email_behaves_each_plausible_way(
    bubble: BubbleDouble, client: httpx.Client, mode: str, status: int, found: int
) -> None:
    # whether the key "email" reaches the built-in email is undocumented
    bubble.configure(user_email_search=mode)
    client.post(f"{LIVE}/user", json={"email": "Find.Me@example.com"})

    constraints = json.dumps([{"key": "email", "constraint_type": "equals", "value": "find.me@example.com"}])
    response = client.get(f"{LIVE}/user", params={"constraints": constraints})

    assert response.status_code == status
    if status == 200:
        assert response.json()["response"]["count"] == found


def test_patching_a_users_email_or_password_is_refused_by_default(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # undocumented; one public client says the Data API cannot change them
    thing_id = client.post(f"{LIVE}/user", json={"email": "e@example.com"}).json()["id"]

    assert client.patch(f"{LIVE}/user/{thing_id}", json={"email": "f@example.com"}).status_code == 400
    assert client.patch(f"{LIVE}/user/{thing_id}", json={"password": "pw"}).status_code == 400
    assert client.patch(f"{LIVE}/user/{thing_id}", json={"name": "E"}).status_code == 204
    assert bubble.config()["user_email_patch"] == "refuse"


@pytest.mark.parametrize("form", ["seconds", "date", "absent"])
def test_a_429_says_when_to_come_back_in_each_plausible_form(
    bubble: BubbleDouble, client: httpx.Client, form: str
) -> None:
    # whether a 429 carries Retry-After is undocumented; HTTP allows seconds or a date (RFC 9110 10.2.3)
    bubble.configure(rate_limit_per_minute=6, rate_limit_burst=1, retry_after=form)
    client.get(f"{LIVE}/item")

    limited = client.get(f"{LIVE}/item")

    assert limited.status_code == 429
    header = limited.headers.get("Retry-After")
    if form == "absent":
        assert header is None
    elif form == "seconds":
        assert header is not None and 1 <= int(header) <= 10
    else:
        assert header is not None and header.endswith(" GMT") and not header.isdigit()


def test_a_bulk_call_takes_time_per_line_and_may_fail_whole(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # manual: Bubble may take up to 4 minutes over 1,000 lines; a capacity failure gives one error, no lines
    bubble.configure(bulk_ms_per_line=20)
    lines = [json.dumps({"email": f"b{n}@example.com"}) for n in range(10)]
    started = time.monotonic()
    assert bulk(client, *lines).status_code == 200
    assert time.monotonic() - started >= 0.2

    bubble.configure(bulk_ms_per_line=0, faults=[{"kind": "bulk_capacity", "count": 1}])
    failed = bulk(client, *[json.dumps({"email": f"c{n}@example.com"}) for n in range(5)])

    assert failed.status_code == 200 and len(failed.text.splitlines()) == 1
    assert json.loads(failed.text)["status"] == "error"
    assert len(bubble.records("user")) == 10

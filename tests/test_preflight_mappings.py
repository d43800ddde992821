"""`python -m components preflight`'s mapping checks (components/preflight/mappings.py, bubble_types.py): each
mapping's Bubble type and fields exist and each column's type fits its field's.

Why one module: its tests share the Bubble double, the deployed mappings and the `Run` harness, and take both
sources of the app's types (/meta and probing) through the same checks.

Where the app's types come from: GET <base>/meta, parsed from recorded shapes (the shape public clients of
Bubble's /meta read, and the one the project's Bubble double is gaining) and served here through an httpx
MockTransport; else a probe per type, against the Bubble double (devstack/bubble_double), whose things show
their fields. The mappings come from the stack config when it has them (a config object standing in for
StackConfig.mappings, which components/mapping_config.py brings), else from the database they were deployed
to (real PostgreSQL, deployed as `pulumi up` deploys them). No output may show the Bubble token.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from components import preflight
from components.mappings import FieldMap, Mapping
from components.preflight import mappings as mapping_checks
from components.preflight.bubble_types import column_kind, fit, fit_value, parse_meta
from components.preflight.checks import run_groups
from components.preflight.stack import load_context
from devstack.bubble_double import BubbleDouble
from tests.conftest import Database
from tests.mapping_support import LISTINGS_MAPPING, USERS, create_tables, deploy

STACK = "pfm"
TOKEN = "bubble-token-for-mapping-checks-7c1f0e"
ENCRYPTED = {"secure": "v1:AAAAAAAAAAAAAAAA:not-readable-here"}
# The mappings these tests deploy: fields the double's schema can hold (text, number, date, user)
PEOPLE = dataclasses.replace(
    USERS,
    fields=(FieldMap("email", "email"), FieldMap("first_name", "First Name"), FieldMap("joined", "Joined"),
            FieldMap("score", "Score")),
)  # fmt: skip
PLACES = LISTINGS_MAPPING
SCHEMA = {
    "user": {"supabase_id": "text", "First Name": "text", "Joined": "date", "Score": "number"},
    "listing": {"supabase_id": "text", "Title": "text", "Price": "number", "Host": "user"},
}


# -- the parser and the type rules, on recorded shapes ------------------------------------------------------

# The shape public clients of /meta read (types keyed by Data API name, fields with id, display and type,
# `get` listing the exposed types); written for these tests, not copied from an app.
META_BY_ID = {
    "get": ["user", "listing"],
    "post": [{"endpoint": "confirm", "parameters": [{"key": "listing", "value": "custom.listing"}]}],
    "app_data": {"appname": "rentals"},
    "types": {
        "user": {"display": "User", "fields": [
            {"id": "first_name_text", "display": "First Name", "type": "text"},
            {"id": "joined_date", "display": "Joined", "type": "date"},
            {"id": "score_number", "display": "Score", "type": "number"},
            {"id": "supabase_id_text", "display": "supabase_id", "type": "text"},
        ]},
        "listing": {"display": "Listing", "fields": [
            {"id": "title_text", "display": "Title", "type": "text"},
            {"id": "price_number", "display": "Price", "type": "number"},
            {"id": "host_user", "display": "Host", "type": "user"},
            {"id": "supabase_id_text", "display": "supabase_id", "type": "text"},
            {"id": "photos_list_image", "display": "Photos", "type": "list.image"},
        ]},
        "draft": {"display": "Draft", "fields": []},
    },
}  # fmt: skip
# The Bubble double's (devstack/bubble_double, being built): `key` where Bubble has `id`, no `get`
META_BY_KEY = {
    "types": {
        "user": {
            "display": "User",
            "fields": [{"display": "First Name", "key": "first_name_text", "type": "text"}],
        }
    }
}


def test_meta_is_read_in_either_shape_and_anything_else_is_not_a_description() -> None:
    types = parse_meta(META_BY_ID)
    assert types is not None and set(types) == {"user", "listing", "draft"}
    assert (
        types["listing"].fields["Host"].type == "user" and types["listing"].fields["Host"].key == "host_user"
    )
    assert types["user"].display == "User" and types["user"].exposed and not types["draft"].exposed
    by_key = parse_meta(META_BY_KEY)
    assert by_key is not None and by_key["user"].fields["First Name"].key == "first_name_text"
    assert by_key["user"].exposed  # no `get`: every type listed is taken as exposed
    assert parse_meta({"response": META_BY_KEY})["user"].fields["First Name"].type == "text"  # type: ignore[index]
    keyed = {"types": {"user": {"fields": {"first_name_text": {"display": "First Name", "type": "text"}}}}}
    assert parse_meta(keyed)["user"].fields["First Name"].key == "first_name_text"  # type: ignore[index]
    no_name = {"types": {"user": {"fields": [{"type": "text"}]}}}
    for junk in (None, [], "x", {"types": []}, {"types": {"user": 3}}, {"types": {"user": {"fields": [1]}}},
                 no_name, {"statusCode": 404, "body": {}}):  # fmt: skip
        assert parse_meta(junk) is None, junk


def test_which_column_kinds_fit_which_bubble_fields() -> None:
    assert column_kind("character varying", None, is_enum=False, element_is_enum=False) == "text"
    assert column_kind("mood", None, is_enum=True, element_is_enum=False) == "text"
    assert column_kind("timestamp without time zone", None, is_enum=False, element_is_enum=False) == "date"
    assert column_kind("text[]", "text", is_enum=False, element_is_enum=False) == "list.text"
    assert column_kind("jsonb", None, is_enum=False, element_is_enum=False) is None
    assert column_kind("interval[]", "interval", is_enum=False, element_is_enum=False) is None
    for kind, bubble_type in [("text", "text"), ("number", "number"), ("boolean", "yes_no"), ("date", "date"),
                              ("boolean", "boolean"), ("list.number", "list.number")]:  # fmt: skip
        assert fit(kind, bubble_type).status == "ok", (kind, bubble_type)
    for kind, bubble_type in [("text", "number"), ("number", "text"), ("date", "text"), ("text", "list.text"),
                              ("list.text", "text"), ("list.text", "list.number"), ("text", "user"),
                              ("text", "custom.listing"), ("boolean", "number")]:  # fmt: skip
        assert fit(kind, bubble_type).status == "failed", (kind, bubble_type)
    assert fit("text", "option.colour").status == "warning" and fit("text", "image").status == "warning"
    assert fit("ref", "user", ref_type="user").status == "ok"
    assert fit("ref", "custom.listing", ref_type="listing").status == "ok"
    assert (
        "refers to a user thing, the field holds custom.listing"
        in fit("ref", "custom.listing", ref_type="user").why
    )
    assert fit("ref", "text", ref_type="user").status == "failed"
    assert (
        fit_value("number", 3.5).status == "ok" and fit_value("date", "2026-01-01T00:00:00Z").status == "ok"
    )
    assert fit_value("number", "3").why == "the thing holds text there, the column number"
    assert (
        fit_value("list.text", ["a", 1]).status == "failed"
        and fit_value("ref", "1x2", is_ref=True).status == "ok"
    )


# -- against a database and an app --------------------------------------------------------------------------


@pytest.fixture
def bubble() -> Iterator[BubbleDouble]:
    """The double as an app that does not describe itself: the probe path (see `described` for /meta)."""
    with BubbleDouble(token=TOKEN, schema=SCHEMA) as double:
        double.configure(meta_exposed=False)
        yield double


@pytest.fixture
def described() -> Iterator[BubbleDouble]:
    """The double as an app that answers GET /meta (once the double has it)."""
    with BubbleDouble(token=TOKEN, schema=SCHEMA) as double:
        yield double


@pytest.fixture
def deployed(queue_db: Database) -> Database:
    with psycopg.connect(queue_db.dsn, autocommit=True) as conn:
        create_tables(conn)
        deploy(conn, PEOPLE, PLACES)
    return queue_db


def make(bubble: BubbleDouble, data_type: str, fields: dict[str, Any]) -> str:
    answer = httpx.post(
        f"{bubble.url}/version-test/api/1.1/obj/{data_type}", json=fields,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def a_user_and_a_listing(bubble: BubbleDouble, **listing: Any) -> None:
    host = make(bubble, "user", {"email": "ada@example.com", "supabase_id": "profiles:1", "First Name": "Ada",
                                 "Joined": "2026-01-02T00:00:00.000Z", "Score": 3})  # fmt: skip
    make(
        bubble,
        "listing",
        {"supabase_id": "listings:1", "Title": "Loft", "Price": 120, "Host": host, **listing},
    )


def write_stack(tmp_path: Path, base_url: str, db: Database | None) -> None:
    values: dict[str, Any] = {
        "projectRef": "abcdefghijklmnopqrst", "serviceRoleKey": ENCRYPTED, "bubbleBaseUrl": base_url,
        "bubbleApiToken": ENCRYPTED, "deployEdgeFunction": False,
    }  # fmt: skip
    if db is not None:
        parts = urlsplit(db.dsn)
        values.update(dbHost=parts.hostname, dbPort=parts.port, dbName=parts.path.lstrip("/"),
                      dbSslMode="disable", dbPassword=ENCRYPTED)  # fmt: skip
    lines = ["config:"]
    for key, value in values.items():
        if isinstance(value, dict):
            lines += [f"  bubble-sync:{key}:", f"    secure: {value['secure']}"]
        else:
            lines.append(f"  bubble-sync:{key}: {json.dumps(value)}")
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


class Run:
    """The mapping group alone, as the command runs it (text and JSON), or on a context of the test's own."""

    def __init__(
        self, tmp_path: Path, base_url: str, db: Database | None, *, config_mappings: tuple[Mapping, ...] = ()
    ) -> None:
        write_stack(tmp_path, base_url, db)
        env = {"BUBBLE_API_TOKEN": TOKEN}
        if db is not None:
            env["PGPASSWORD"] = urlsplit(db.dsn).password or ""
        if config_mappings:
            ctx = load_context(STACK, tmp_path, environ=env)
            ctx.config = dataclasses.replace(ctx.config, mappings=config_mappings)
            ctx.http_timeout = 5
            results = run_groups(ctx, (mapping_checks,))
            self.code = 1 if any(r.status.value == "failed" for r in results) else 0
            self.checks = {
                r.id: {"status": r.status.value, "detail": r.detail, "fix": r.fix} for r in results
            }
            self.text = json.dumps(self.checks)
        else:
            out, err = io.StringIO(), io.StringIO()
            self.code = preflight.run_preflight(STACK, project_dir=tmp_path, environ=env,
                                                groups=(mapping_checks,), as_json=True, out=out, err=err,
                                                http_timeout=5)  # fmt: skip
            assert self.code != 2, err.getvalue()
            self.checks = {c["id"]: c for c in json.loads(out.getvalue())["checks"]}
            text = io.StringIO()
            preflight.run_preflight(STACK, project_dir=tmp_path, environ=env, groups=(mapping_checks,),
                                    out=text, err=err, http_timeout=5)  # fmt: skip
            self.text = text.getvalue() + out.getvalue() + err.getvalue()
        assert TOKEN not in self.text, "the token is printed"

    def status(self, check: str) -> str:
        return str(self.checks[check]["status"])

    def detail(self, check: str) -> str:
        return str(self.checks[check]["detail"])


def base(bubble: BubbleDouble) -> str:
    return f"{bubble.url}/version-test/api/1.1"


def test_the_deployed_mappings_fit_the_app_probed_type_by_type(
    tmp_path: Path, bubble: BubbleDouble, deployed: Database
) -> None:
    a_user_and_a_listing(bubble)
    run = Run(tmp_path, base(bubble), deployed)
    assert run.code == 0, run.text
    assert list(run.checks) == [
        "mappings.source", "mappings.bubble_types", "mappings.listings.data_type", "mappings.listings.fields",
        "mappings.users.data_type", "mappings.users.fields",
    ]  # fmt: skip
    assert run.detail("mappings.source") == "2 from the database (bubble_sync.mappings): listings, users"
    assert "/meta answered 404" in run.detail("mappings.bubble_types") and "probed" in run.detail(
        "mappings.bubble_types"
    )
    assert {run.status(c) for c in run.checks} == {"ok"}, run.text
    assert (
        "'Title', 'Price', 'Host' and the key field 'supabase_id': the sample thing's values fit"
        in run.detail("mappings.listings.fields")
    )
    assert "✓ mapping users: fields and types" in run.text
    # read-only: GETs only (after the POSTs that made the things)
    assert {r["method"] for r in bubble.requests()[2:]} == {"GET"}


def test_a_value_of_another_kind_fails_naming_the_column_the_field_and_both_types(
    tmp_path: Path, bubble: BubbleDouble, deployed: Database
) -> None:
    bubble.configure(schema={**SCHEMA, "listing": {**SCHEMA["listing"], "Price": "text"}})
    a_user_and_a_listing(bubble, Price="about 120")
    run = Run(tmp_path, base(bubble), deployed)
    assert (run.code, run.status("mappings.listings.fields")) == (1, "failed")
    assert (
        "column price (numeric, sent as number) → field 'Price': the thing holds text there, the column "
        "number" in run.detail("mappings.listings.fields")
    )
    assert "Data > Data types" in run.checks["mappings.listings.fields"]["fix"]


def test_a_field_the_sample_lacks_is_a_warning_and_a_type_bubble_does_not_expose_fails(
    tmp_path: Path, bubble: BubbleDouble, deployed: Database
) -> None:
    make(bubble, "user", {"email": "ada@example.com", "supabase_id": "profiles:1", "First Name": "Ada"})
    bubble.configure(schema={"user": SCHEMA["user"]})  # listing is not exposed
    run = Run(tmp_path, base(bubble), deployed)
    assert run.code == 1
    assert run.status("mappings.users.fields") == "warning"
    assert "field 'Joined' is not on the sample thing (empty there, or no such field)" in run.detail(
        "mappings.users.fields"
    )
    assert (run.status("mappings.listings.data_type"), run.status("mappings.listings.fields")) == (
        "failed",
        "skipped",
    )
    assert "GET /obj/listing answered 404" in run.detail("mappings.listings.data_type")


def test_a_type_without_things_cannot_show_its_fields(
    tmp_path: Path, bubble: BubbleDouble, deployed: Database
) -> None:
    run = Run(tmp_path, base(bubble), deployed)
    assert run.code == 0
    assert run.status("mappings.users.fields") == "warning"
    assert "no user thing to see its fields on" in run.detail("mappings.users.fields")


def test_mappings_of_the_stack_config_come_first_and_column_types_are_checked(
    tmp_path: Path, bubble: BubbleDouble, deployed: Database
) -> None:
    a_user_and_a_listing(bubble)
    with psycopg.connect(deployed.dsn, autocommit=True) as conn:
        conn.execute("alter table public.profiles add column prefs jsonb, drop column score")
    config_only = dataclasses.replace(
        PEOPLE, fields=(*PEOPLE.fields, FieldMap("prefs", "Prefs"), FieldMap("nickname", "Nickname"))
    )
    run = Run(tmp_path, base(bubble), deployed, config_mappings=(config_only,))
    assert run.detail("mappings.source") == "1 from the stack config (bubble-sync:mappings): users"
    assert run.status("mappings.users.fields") == "failed"
    detail = run.detail("mappings.users.fields")
    assert "column prefs (jsonb): Bubble's Data API has no field type that takes it" in detail
    assert "column nickname: the table has no such column" in detail
    assert "column score: the table has no such column" in detail


def test_without_a_database_the_config_mappings_are_checked_by_name_only(
    tmp_path: Path, bubble: BubbleDouble
) -> None:
    a_user_and_a_listing(bubble)
    run = Run(tmp_path, base(bubble), None, config_mappings=(PEOPLE,))
    assert run.status("mappings.users.fields") == "ok"
    assert "column types not checked: the database cannot be reached" in run.detail("mappings.users.fields")


def test_no_mappings_anywhere_is_nothing_to_check_and_a_broken_row_is_named(
    tmp_path: Path, bubble: BubbleDouble, queue_db: Database
) -> None:
    run = Run(tmp_path, base(bubble), queue_db)
    assert (run.code, list(run.checks), run.status("mappings.source")) == (0, ["mappings.source"], "skipped")
    with psycopg.connect(queue_db.dsn, autocommit=True) as conn:
        create_tables(conn)
        deploy(conn, PEOPLE)
        conn.execute("update bubble_sync.mappings set definition = '[]'")
    run = Run(tmp_path, base(bubble), queue_db)
    assert (run.code, run.status("mappings.source")) == (1, "failed")
    assert "bubble_sync.mappings row 'users'" in run.detail("mappings.source")


def test_a_refused_token_skips_the_bubble_side_with_the_reason(
    tmp_path: Path, bubble: BubbleDouble, deployed: Database
) -> None:
    bubble.configure(token="another-apps-token-0123456789abcdef")
    write_stack(tmp_path, base(bubble), deployed)
    env = {"BUBBLE_API_TOKEN": TOKEN, "PGPASSWORD": urlsplit(deployed.dsn).password or ""}
    out = io.StringIO()
    preflight.run_preflight(STACK, project_dir=tmp_path, environ=env, as_json=True, out=out,
                            err=io.StringIO(), http_timeout=5,
                            groups=(preflight.bubble, mapping_checks))  # fmt: skip
    checks = {c["id"]: c for c in json.loads(out.getvalue())["checks"]}
    assert checks["mappings.source"]["status"] == "ok"
    assert checks["mappings.users.fields"]["status"] == "skipped"
    assert "(bubble.token_accepted)" in checks["mappings.users.fields"]["detail"]
    assert TOKEN not in out.getvalue()


def _meta_transport(meta: Any, status: int = 200) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and request.headers["authorization"] == f"Bearer {TOKEN}"
        if request.url.path.endswith("/meta"):
            return httpx.Response(status, json=meta)
        return httpx.Response(404, json={"statusCode": 404, "body": {"status": "NOT_FOUND"}})

    return httpx.MockTransport(handle)


def test_from_meta_every_field_and_type_is_checked(
    tmp_path: Path, deployed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = json.loads(json.dumps(META_BY_ID))
    listing = meta["types"]["listing"]["fields"]
    listing[1]["type"] = "text"  # Price is text in this app
    listing[2]["type"] = "custom.listing"  # and Host refers to a listing
    del meta["types"]["user"]["fields"][1]  # no Joined
    meta["types"]["user"]["fields"][0]["display"] = "first name"
    client = httpx.Client
    monkeypatch.setattr(httpx, "Client", functools.partial(client, transport=_meta_transport(meta)))
    run = Run(tmp_path, "https://rentals.example/version-test/api/1.1", deployed)
    assert "from GET https://rentals.example/version-test/api/1.1/meta (3 types)" == run.detail(
        "mappings.bubble_types"
    )
    assert (
        run.status("mappings.users.data_type") == "ok" and run.status("mappings.listings.fields") == "failed"
    )
    listings = run.detail("mappings.listings.fields")
    assert (
        "column price (numeric, sent as number) → field 'Price' (text): Bubble refuses such a value"
        in listings
    )
    assert (
        "column host_id (uuid, a reference to users) → field 'Host' (custom.listing): the column refers to "
        "a user thing, the field holds custom.listing" in listings
    )
    users = run.detail("mappings.users.fields")
    assert "field 'First Name': user has no such field (did you mean 'first name'?" in users
    assert (
        "column joined (timestamp with time zone, sent as date) → field 'Joined': user has no such field"
        in users
    )

    meta["get"] = ["user"]  # the Data API does not expose listing
    monkeypatch.setattr(httpx, "Client", functools.partial(client, transport=_meta_transport(meta)))
    run = Run(tmp_path, "https://rentals.example/version-test/api/1.1", deployed)
    assert run.status("mappings.listings.data_type") == "failed"
    assert run.detail("mappings.listings.data_type") == "the Data API does not expose listing"
    # an app that does not describe itself: the probe (here every type answers 404)
    monkeypatch.setattr(httpx, "Client", functools.partial(client, transport=_meta_transport({"x": 1})))
    run = Run(tmp_path, "https://rentals.example/version-test/api/1.1", deployed)
    assert (
        "GET https://rentals.example/version-test/api/1.1/meta answered 200 (not a description of the app)"
        in (run.detail("mappings.bubble_types"))
    )
    assert run.status("mappings.users.data_type") == "failed"


def test_mapping_checks_read_the_apps_types_from_meta_of_the_double(
    tmp_path: Path, described: BubbleDouble, deployed: Database
) -> None:
    url = base(described)
    run = Run(tmp_path, url, deployed)  # no thing made: only /meta can show the fields
    assert run.code == 0, run.text
    assert run.detail("mappings.bubble_types").startswith(f"from GET {url}/meta")
    assert {run.status(c) for c in run.checks} == {"ok"}, run.text
    assert run.detail("mappings.listings.fields").endswith(": their types fit")
    listing = {**SCHEMA["listing"], "Price": "text", "Host": "listing"}
    described.configure(schema={**SCHEMA, "listing": listing})
    run = Run(tmp_path, url, deployed)
    assert run.status("mappings.listings.fields") == "failed"
    listings = run.detail("mappings.listings.fields")
    assert "column price (numeric, sent as number) → field 'Price' (text): Bubble refuses" in listings
    assert "→ field 'Host' (custom.listing): the column refers to a user thing" in listings

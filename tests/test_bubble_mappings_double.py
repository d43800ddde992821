"""What the Bubble double serves for mappings (docs/mappings.md): several data types from its `schema` knob,
field types and relation fields, deletes, `/meta`, and editing things behind the client's back. Driven over
real HTTP like tests/test_bubble_double.py.

Why one module: its tests share the double serving a schema and the create/read/bulk/refusal helpers, and read
as one account, source by source, of what the double serves for mappings.

Each test names its source. "manual" is Bubble's manual, Data API requests (manual.bubble.io,
core-resources/api/the-bubble-api/the-data-api/data-api-requests) and "The Bubble API" reference; "facts"
are the facts checked against sources in December 2026. Where the manual is silent the test says so, and the
double answers each plausible way behind a knob.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.bubble_double import BubbleDouble

TOKEN = "0123456789abcdef0123456789abcdef"
LIVE = "/api/1.1"
TEST = "/version-test/api/1.1"
# An app like docs/mappings.md's: users, their listings (a relation and a list of relations) and reviews.
SCHEMA: dict[str, Any] = {
    "user": {"First Name": "text", "supabase_id": "text"},
    "listing": {
        "Title": "text",
        "Price": "number",
        "Available": "boolean",
        "Starts": "date",
        "Photos": "list.image",
        "Tags": "list.text",
        "Address": "geographic_address",
        "Host": "user",
        "Guests": "list.user",
        "supabase_id": "text",
    },
    "review": {"Listing": "custom.listing", "Stars": "number"},
}


@pytest.fixture
def bubble() -> Iterator[BubbleDouble]:
    with BubbleDouble(token=TOKEN, schema=SCHEMA) as double:
        yield double


@pytest.fixture
def client(bubble: BubbleDouble) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bubble.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as c:
        yield c


def create(client: httpx.Client, type_: str, fields: dict[str, Any], prefix: str = LIVE) -> str:
    answer = client.post(f"{prefix}/obj/{type_}", json=fields)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def read(client: httpx.Client, type_: str, thing_id: str) -> dict[str, Any]:
    answer = client.get(f"{LIVE}/obj/{type_}/{thing_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["response"])


def bulk(client: httpx.Client, type_: str, *lines: dict[str, Any]) -> list[dict[str, Any]]:
    answer = client.post(
        f"{LIVE}/obj/{type_}/bulk",
        content="\n".join(json.dumps(line) for line in lines),
        headers={"Content-Type": "text/plain"},
    )
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.text.splitlines()]


def found(client: httpx.Client, type_: str, key: str, value: Any) -> list[str]:
    constraints = json.dumps([{"key": key, "constraint_type": "equals", "value": value}])
    answer = client.get(f"{LIVE}/obj/{type_}", params={"constraints": constraints})
    assert answer.status_code == 200, answer.text
    return [thing["_id"] for thing in answer.json()["response"]["results"]]


def refusal(answer: httpx.Response) -> tuple[int, str, str]:
    body = answer.json()
    assert body["statusCode"] == answer.status_code
    return answer.status_code, body["body"]["status"], body["body"]["message"]


# --- several data types -------------------------------------------------------------------------------------


def test_create_modify_search_and_bulk_work_on_every_type_of_the_schema(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # manual: the same requests on /obj/<typename> for any data type exposed to the Data API
    host = create(client, "user", {"email": "host@example.com", "First Name": "Hal"})
    listing = create(client, "listing", {"Title": "Loft", "Host": host, "supabase_id": "listings:1"})
    [review] = [line["id"] for line in bulk(client, "review", {"Listing": listing, "Stars": 5})]

    assert client.patch(f"{LIVE}/obj/listing/{listing}", json={"Price": 120}).status_code == 204
    assert client.patch(f"{LIVE}/obj/review/{review}", json={"Stars": 4}).status_code == 204
    assert found(client, "listing", "supabase_id", "listings:1") == [listing]
    assert found(client, "review", "Listing", listing) == [review]
    # manual: a search constraint takes the field's id too (Bubble's: name, then type with _ for dots)
    assert found(client, "listing", "host_user", host) == [listing]
    assert found(client, "review", "listing_custom_listing", listing) == [review]
    thing = client.get(f"{LIVE}/obj/listing/{listing}").json()["response"]
    assert (thing["Title"], thing["Price"], thing["Host"]) == ("Loft", 120, host)
    assert [r["Stars"] for r in bubble.records("review")] == [4]


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "BULK"])
def test_a_field_the_type_does_not_have_is_refused_with_bubbles_exact_body(
    bubble: BubbleDouble, client: httpx.Client, method: str
) -> None:
    # manual (facts, CONFIRMED): "The keys should match the names of the keys returned via a GET request";
    # another key is 400 {"statusCode":400,"body":{"status":"ERROR","message":"Unrecognized field: <name>"}}
    listing = create(client, "listing", {"Title": "Loft"})
    body = {"Title": "Den", "Stars": 5}  # Stars is a field of review, not of listing

    if method == "BULK":
        [line] = bulk(client, "listing", body)
        assert line == {"status": "error", "message": "Unrecognized field: Stars"}
    else:
        path = f"{LIVE}/obj/listing" + ("" if method == "POST" else f"/{listing}")
        answer = client.request(method, path, json=body)
        assert answer.json() == {
            "statusCode": 400,
            "body": {"status": "ERROR", "message": "Unrecognized field: Stars"},
        }
    assert [r["Title"] for r in bubble.records("listing")] == ["Loft"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/obj/booking"), ("POST", "/obj/booking"), ("POST", "/obj/booking/bulk"),
     ("GET", "/obj/booking/1x1"), ("PATCH", "/obj/booking/1x1"), ("DELETE", "/obj/booking/1x1")],
)  # fmt: skip
def test_a_type_not_in_the_schema_answers_404(client: httpx.Client, method: str, path: str) -> None:
    # manual, 404 "Errors and solutions": "Check that the data type is active in the Data API settings"
    answer = client.request(method, f"{LIVE}{path}", json={}, headers={"Content-Type": "text/plain"})

    assert refusal(answer)[:2] == (404, "NOT_FOUND")


# --- field types --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("Price", "ten"), ("Price", True), ("Available", "yes"), ("Available", 1), ("Starts", "tomorrow"),
     ("Starts", True), ("Title", 5), ("Title", ["Loft"]), ("Photos", "//img/a.png"), ("Tags", ["a", 2]),
     ("Address", 12), ("Host", 17)],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(
    bubble: BubbleDouble, client: httpx.Client, field: str, value: Any
) -> None:
    # manual (PATCH): "The field to change and new value. Must match field type." It shows no refusal: the
    # status INVALID_DATA is what a real app answered to an option-set value it did not know (a public Bubble
    # client's notes), the wording is the double's (UNCONFIRMED), and it names the field.
    listing = create(client, "listing", {"Title": "Loft"})
    before = bubble.records("listing")

    created = client.post(f"{LIVE}/obj/listing", json={field: value})
    modified = client.patch(f"{LIVE}/obj/listing/{listing}", json={field: value})

    for answer in (created, modified):
        status, code, message = refusal(answer)
        assert (status, code) == (400, "INVALID_DATA")
        assert message.startswith(f"Invalid data for field {field}: ")
    assert bubble.records("listing") == before


def test_a_wrong_value_in_a_bulk_call_fails_that_line_alone_with_bubbles_message(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # docs/mappings.md: "A value Bubble refuses (a wrong type: a 400) fails that row alone"; manual, bulk:
    # one result per line
    single = client.post(f"{LIVE}/obj/listing", json={"Price": "ten"})

    lines = bulk(
        client, "listing", {"Title": "A", "Price": 1}, {"Title": "B", "Price": "ten"}, {"Title": "C"}
    )

    assert [line["status"] for line in lines] == ["success", "error", "success"]
    assert lines[1]["message"] == refusal(single)[2] == 'Invalid data for field Price: "ten" is not a number'
    assert [r["Title"] for r in bubble.records("listing")] == ["A", "C"]


def test_values_of_each_type_are_stored_and_dates_read_back_as_bubble_writes_them(
    client: httpx.Client,
) -> None:
    # facts: dates as ISO 8601 strings (UNCONFIRMED, widely used); manual, "Sending data": a date may also
    # be a timestamp, an address a string or {address, lat, lng}. How Bubble returns a date it was sent is
    # not documented: the double returns it as its own dates (Created Date), UTC with milliseconds.
    fields = {
        "Title": "Loft",
        "Price": 99.5,
        "Available": False,
        "Photos": ["//cdn/a.png"],
        "Tags": [],
        "Address": {"address": "1 Main St", "lat": 51.5, "lng": -0.1},
    }
    starts = {
        "2026-12-05T09:13:51.123456Z": "2026-12-05T09:13:51.123Z",
        "2026-12-05T10:13:51+01:00": "2026-12-05T09:13:51.000Z",
        "2026-12-05": "2026-12-05T00:00:00.000Z",
        1764926031123: "2025-12-05T09:13:51.123Z",
    }
    for sent, stored in starts.items():
        thing_id = create(client, "listing", {**fields, "Starts": sent})
        thing = client.get(f"{LIVE}/obj/listing/{thing_id}").json()["response"]
        assert {key: thing[key] for key in fields} == fields
        assert thing["Starts"] == stored
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", thing["Created Date"])


# --- relation fields ----------------------------------------------------------------------------------------


def test_a_relation_takes_the_unique_id_of_an_existing_thing_of_its_type(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # facts (UNCONFIRMED, widely used): a field whose type is another data type takes that thing's unique id,
    # a list field a JSON array of them
    host = create(client, "user", {"email": "host@example.com"})
    guest = create(client, "user", {"email": "guest@example.com"})

    listing = create(client, "listing", {"Host": host, "Guests": [guest, host]})
    review = create(client, "review", {"Listing": listing})

    assert read(client, "listing", listing)["Guests"] == [guest, host]
    assert read(client, "review", review)["Listing"] == listing
    assert client.patch(f"{LIVE}/obj/listing/{listing}", json={"Host": guest}).status_code == 204


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("Host", "1700000000000x1", "object with id 1700000000000x1 of type user does not exist"),
     ("Host", "LISTING", "object with id LISTING of type user"),
     ("Host", "TEST_USER", "object with id TEST_USER of type user"),
     ("Guests", ["HOST", "LISTING"], "object with id LISTING of type user"),
     ("Guests", "HOST", 'HOST" is not a list of unique ids of user')],
)  # fmt: skip
def test_a_relation_to_no_thing_of_its_type_is_refused(
    bubble: BubbleDouble, client: httpx.Client, field: str, value: Any, says: str
) -> None:
    # The manual is silent on how Bubble refuses an id that names no thing of the field's type: the double
    # answers 400 INVALID_DATA naming the field and the id (its own wording, UNCONFIRMED) and stores nothing.
    # An id of another type, or of the other environment, names no thing of the type here.
    ids = {
        "HOST": create(client, "user", {"email": "host@example.com"}),
        "LISTING": create(client, "listing", {"Title": "Loft"}),
        "TEST_USER": create(client, "user", {"email": "host@example.com"}, prefix=TEST),
    }

    def named(text: str) -> str:
        for name, thing_id in ids.items():
            text = text.replace(name, thing_id)
        return text

    sent = [named(v) for v in value] if isinstance(value, list) else named(value)
    answer = client.post(f"{LIVE}/obj/listing", json={field: sent})

    status, code, message = refusal(answer)
    assert (status, code) == (400, "INVALID_DATA")
    assert message.startswith(f"Invalid data for field {field}: ") and named(says) in message
    assert len(bubble.records("listing")) == 1


def test_deleting_a_thing_a_relation_names_leaves_the_id_in_place(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # The manual is silent on what a relation to a deleted thing reads as; the double keeps the id (nothing
    # rewrites it), so a client must not take a relation's id as proof the thing exists.
    host = create(client, "user", {"email": "host@example.com"})
    listing = create(client, "listing", {"Host": host})

    assert client.delete(f"{LIVE}/obj/user/{host}").status_code == 204

    assert client.get(f"{LIVE}/obj/listing/{listing}").json()["response"]["Host"] == host


# --- null ---------------------------------------------------------------------------------------------------


def test_a_create_leaves_a_null_field_empty_and_a_modify_with_null_clears_it(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # The manual is silent on null. A public Bubble client's notes of a real app: "PATCH with a field set to
    # null clears it (204, and the field is gone when read back)" -- the default (knob null_modify="clear").
    # Bubble leaves empty fields out of what it returns.
    listing = create(client, "listing", {"Title": "Loft", "Price": None, "Tags": ["a"]})
    assert "Price" not in read(client, "listing", listing)

    assert client.patch(f"{LIVE}/obj/listing/{listing}", json={"Title": None}).status_code == 204
    thing = read(client, "listing", listing)
    assert "Title" not in thing and thing["Tags"] == ["a"]
    # a PUT replaces every field: the null one stays empty
    assert client.put(f"{LIVE}/obj/listing/{listing}", json={"Tags": None, "Price": 3}).status_code == 204
    assert set(read(client, "listing", listing)) == {"Price", "_id", "Created Date", "Modified Date"}


def test_a_modify_with_null_may_be_refused(bubble: BubbleDouble, client: httpx.Client) -> None:
    # the other plausible answer where the manual is silent (knob null_modify="refuse"): 400, nothing changed
    bubble.configure(null_modify="refuse")
    listing = create(client, "listing", {"Title": "Loft", "Price": None})

    answer = client.patch(f"{LIVE}/obj/listing/{listing}", json={"Title": None, "Price": 5})

    assert refusal(answer) == (400, "INVALID_DATA", "Invalid data for field Title: null")
    thing = read(client, "listing", listing)
    assert thing["Title"] == "Loft" and "Price" not in thing


# --- delete -------------------------------------------------------------------------------------------------


def test_delete_answers_204_and_the_thing_is_gone(bubble: BubbleDouble, client: httpx.Client) -> None:
    # manual: the endpoint list documents DELETE /obj/<typename>/<uid>; the stored manual text does not show
    # its answer, and a third-party OpenAPI (api-evangelist/bubble) says 204 No Content: the default
    listing = create(client, "listing", {"Title": "Loft"})
    kept = create(client, "listing", {"Title": "Den"})

    answer = client.delete(f"{LIVE}/obj/listing/{listing}")

    assert (answer.status_code, answer.content) == (204, b"")
    assert [r["_id"] for r in bubble.records("listing")] == [kept]
    # manual, "Retrieve record by ID": an id no thing has answers 404 MISSING_DATA, with this message
    missing = {
        "statusCode": 404,
        "body": {
            "status": "MISSING_DATA",
            "message": f"Missing object of type listing: object with id {listing} does not exist",
        },
    }
    assert client.get(f"{LIVE}/obj/listing/{listing}").json() == missing
    gone = client.delete(f"{LIVE}/obj/listing/{listing}")
    assert (gone.status_code, gone.json()) == (404, missing)
    assert found(client, "listing", "Title", "Loft") == []


def test_delete_may_answer_200(bubble: BubbleDouble, client: httpx.Client) -> None:
    # the manual is silent on the status: the other plausible answer (knob delete_status=200), with no body
    bubble.configure(delete_status=200)
    listing = create(client, "listing", {"Title": "Loft"})

    answer = client.delete(f"{LIVE}/obj/listing/{listing}")

    assert (answer.status_code, answer.content) == (200, b"")
    assert bubble.records("listing") == []
    assert bubble.config()["delete_status"] == 200
    with pytest.raises(ValueError):
        bubble.configure(delete_status=201)


def test_a_delete_needs_the_token_and_meets_the_rate_limit_the_outage_and_faults(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # as every Data API request (manual, "Authentication"; the double's rate limit, outage and faults)
    listing = create(client, "listing", {"Title": "Loft"})
    path = f"{LIVE}/obj/listing/{listing}"

    assert client.delete(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    bubble.configure(outage_status=503)
    assert client.delete(path).status_code == 503
    bubble.configure(
        outage_status=None, faults=[{"kind": "status", "status": 500, "method": "DELETE", "count": 1}]
    )
    assert client.delete(path).status_code == 500
    bubble.configure(rate_limit_per_minute=6, rate_limit_burst=1)
    client.get(f"{LIVE}/obj/listing")
    assert client.delete(path).status_code == 429
    assert [r["_id"] for r in bubble.records("listing")] == [listing]

    bubble.configure(rate_limit_per_minute=0, faults=[{"kind": "close_after_store", "method": "DELETE"}])
    with pytest.raises(httpx.RemoteProtocolError):
        client.delete(path)
    assert bubble.records("listing") == []  # deleted, though the answer was lost
    assert [e["fault"] for e in bubble.requests() if e["method"] == "DELETE"] == [
        None,
        "outage",
        "status",
        None,
        "close_after_store",
    ]


def test_a_delete_in_one_environment_leaves_the_other_alone(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # manual: live and version-test hold different data
    live = create(client, "listing", {"Title": "Loft"})
    test = create(client, "listing", {"Title": "Loft"}, prefix=TEST)

    assert client.delete(f"{TEST}/obj/listing/{live}").status_code == 404
    assert client.delete(f"{TEST}/obj/listing/{test}").status_code == 204

    assert [r["_id"] for r in bubble.records("listing")] == [live]
    assert bubble.records("listing", env="test") == []


# --- /meta --------------------------------------------------------------------------------------------------


def test_meta_describes_the_types_and_fields_the_app_exposes(bubble: BubbleDouble) -> None:
    # The manual mentions the API's Swagger/meta option without its body; the shape follows public clients
    # of real apps (sources in devstack/bubble_double/meta.py): types keyed by Data API path, fields as
    # {id, display, type} with Bubble's ids and types (user, custom.<type>, list.<...>), built-ins after the
    # type's own fields, no Created By on User. A real app answers it without a token.
    bubble.configure(schema={"user": ["First Name"], "review": {"Listing": "listing", "By": "list.user"},
                             "listing": {"Price": "number"}})  # fmt: skip

    answer = httpx.get(f"{bubble.url}{LIVE}/meta")

    assert answer.status_code == 200
    assert answer.json() == {
        "get": ["user", "review", "listing"],
        "post": [],
        "types": {
            "user": {
                "display": "User",
                "fields": [
                    {"id": "first_name_text", "display": "First Name", "type": "text"},
                    {"id": "Created Date", "display": "Created Date", "type": "date"},
                    {"id": "Modified Date", "display": "Modified Date", "type": "date"},
                    {"id": "_id", "display": "unique ID", "type": "text"},
                ],
            },
            "review": {
                "display": "Review",
                "fields": [
                    {"id": "listing_custom_listing", "display": "Listing", "type": "custom.listing"},
                    {"id": "by_list_user", "display": "By", "type": "list.user"},
                    {"id": "Created Date", "display": "Created Date", "type": "date"},
                    {"id": "Modified Date", "display": "Modified Date", "type": "date"},
                    {"id": "Created By", "display": "Created By", "type": "user"},
                    {"id": "_id", "display": "unique ID", "type": "text"},
                ],
            },
            "listing": {
                "display": "Listing",
                "fields": [
                    {"id": "price_number", "display": "Price", "type": "number"},
                    {"id": "Created Date", "display": "Created Date", "type": "date"},
                    {"id": "Modified Date", "display": "Modified Date", "type": "date"},
                    {"id": "Created By", "display": "Created By", "type": "user"},
                    {"id": "_id", "display": "unique ID", "type": "text"},
                ],
            },
        },
        "app_data": {
            "appname": "bubble-double",
            "favicon": "",
            "app_version": "live",
            "use_captions_for_get": True,
        },
    }
    test = httpx.get(f"{bubble.url}{TEST}/meta", headers={"Authorization": f"Bearer {TOKEN}"})
    assert test.json()["app_data"]["app_version"] == "test" and test.json()["types"] == answer.json()["types"]
    # a wrong token is still refused (the double's choice: UNCONFIRMED)
    assert httpx.get(f"{bubble.url}{LIVE}/meta", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_an_app_may_not_expose_meta(bubble: BubbleDouble, client: httpx.Client) -> None:
    # facts: /meta is SECONDARY evidence ("handle an app that answers 404 there: probe instead"); knob
    # meta_exposed=false, and an app without a schema (nobody described it), answer 404 NOT_FOUND
    bubble.configure(meta_exposed=False)
    assert refusal(client.get(f"{LIVE}/meta"))[:2] == (404, "NOT_FOUND")
    bubble.configure(meta_exposed=True, schema=None)
    assert client.get(f"{TEST}/meta").status_code == 404
    bubble.configure(schema=SCHEMA)
    assert client.get(f"{LIVE}/meta").status_code == 200
    assert client.post(f"{LIVE}/meta").status_code == 405
    assert client.get(f"{LIVE}/meta/swagger.json").status_code == 404  # not served by the double
    with pytest.raises(ValueError):
        bubble.configure(meta_exposed="no")


def test_meta_meets_the_outage_the_rate_limit_and_faults_and_is_logged(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    bubble.configure(outage_status=502)
    assert client.get(f"{LIVE}/meta").status_code == 502
    bubble.configure(outage_status=None, faults=[{"kind": "status", "status": 503, "path_regex": "/meta$"}])
    assert client.get(f"{LIVE}/meta").status_code == 503
    bubble.configure(faults=[], rate_limit_per_minute=6, rate_limit_burst=1)
    assert client.get(f"{LIVE}/meta").status_code == 200
    assert client.get(f"{LIVE}/meta").status_code == 429

    log = bubble.requests()
    assert [(e["path"], e["type"], e["status"]) for e in log][-1] == (f"{LIVE}/meta", None, 429)


# --- the schema knob ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [{"listing": {"Host": "account"}}, {"listing": {"Host": "custom.user"}},
     {"listing": {"Tags": "list.list.text"}}, {"listing": {"Price": "integer"}}, {"listing": {"Price": 3}}],
)  # fmt: skip
def test_the_schema_knob_refuses_a_kind_it_cannot_serve(bubble: BubbleDouble, schema: dict[str, Any]) -> None:
    # a relation must name a data type of the schema (here: only listing exists)
    with pytest.raises(ValueError, match=r"schema\['listing'\]"):
        bubble.configure(schema=schema)
    assert bubble.config()["schema"] == SCHEMA
    with pytest.raises(ValueError):
        bubble.configure(null_modify="ignore")


# --- editing behind the client's back -----------------------------------------------------------------------


def test_a_test_adds_changes_and_deletes_things_as_an_editor_would(
    bubble: BubbleDouble, client: httpx.Client
) -> None:
    # An editor or a workflow in Bubble changes data without the Data API: no request reaches the log, the
    # app's rules (schema, field types, relations) hold, and Modified Date moves.
    host = bubble.add("user", {"email": "host@example.com", "First Name": "Hal"})
    listing = bubble.add("listing", {"Title": "Loft", "Host": host}, env="live")
    before = bubble.record("listing", listing)
    assert before is not None and before["Host"] == host

    bubble.modify("listing", listing, {"Title": "Den", "Host": None})
    after = bubble.record("listing", listing)
    assert after is not None and after["Title"] == "Den" and "Host" not in after
    assert (
        after["Modified Date"] >= before["Modified Date"] and after["Created Date"] == before["Created Date"]
    )

    bubble.delete("listing", listing)
    assert bubble.record("listing", listing) is None
    assert client.patch(f"{LIVE}/obj/listing/{listing}", json={"Title": "X"}).status_code == 404
    assert [e["method"] for e in bubble.requests()] == ["PATCH"]

    with pytest.raises(ValueError, match="Unrecognized field: Stars"):
        bubble.add("listing", {"Stars": 1})
    with pytest.raises(ValueError, match="Invalid data for field Host"):
        bubble.add("listing", {"Host": listing})
    with pytest.raises(ValueError, match="Missing object of type listing"):
        bubble.delete("listing", listing)
    with pytest.raises(ValueError, match="does not exist or is not exposed"):
        bubble.add("booking", {})
    with pytest.raises(ValueError, match="env"):
        bubble.add("listing", {}, env="prod")


def test_the_admin_endpoints_add_read_change_and_delete_things(bubble: BubbleDouble) -> None:
    admin = httpx.Client(base_url=f"{bubble.url}/_double")
    where = {"type": "listing", "env": "test"}

    added = admin.post("/records", params=where, json={"Title": "Loft", "Price": 10})
    assert added.status_code == 201
    listing = added.json()["id"]
    assert admin.get(f"/records/{listing}", params=where).json()["record"]["Title"] == "Loft"
    changed = admin.patch(f"/records/{listing}", params=where, json={"Price": None, "Title": "Den"})
    assert changed.status_code == 200 and changed.json()["record"]["Title"] == "Den"
    assert "Price" not in changed.json()["record"]
    assert [r["_id"] for r in admin.get("/records", params=where).json()["records"]] == [listing]

    refused = admin.patch(f"/records/{listing}", params=where, json={"Price": "ten"})
    assert refused.status_code == 400 and refused.json()["body"]["status"] == "INVALID_DATA"
    assert admin.post("/records", params=where, json={"nope": 1}).json()["body"]["status"] == "ERROR"
    assert admin.delete(f"/records/{listing}", params=where).json() == {"status": "ok"}
    assert admin.get(f"/records/{listing}", params=where).json()["body"]["status"] == "MISSING_DATA"
    assert admin.delete(f"/records/{listing}", params=where).status_code == 404
    assert admin.post("/records", params={"type": "booking"}, json={}).status_code == 404
    assert admin.get("/records", params={"env": "prod", "type": "listing"}).status_code == 400
    assert bubble.records("listing", env="test") == [] and bubble.requests() == []

"""`bubble-sync:mappings` from the config alone (components/mapping_config.py): the docs' example, every rule,
each problem keyed by its path, every problem at once, and the JSON the Pulumi CLI hands the program.

Why one module: its tests share the `parse`/`problems` helpers and the docs' example, and read as one list of
the rules of `bubble-sync:mappings`, key by key.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.mapping_config import parse_mappings, parse_table, where_problem
from components.mappings import FieldMap, Mapping, OnDelete

DOCS = Path(__file__).resolve().parent.parent / "docs" / "mappings.md"
KEY_FIELD = "supabase_id"

USERS: dict[str, Any] = {
    "name": "users",
    "table": "public.profiles",
    "dataType": "user",
    "fields": {"email": "email", "first_name": "First Name"},
}
LISTINGS: dict[str, Any] = {
    "name": "listings",
    "table": "listings",
    "dataType": "listing",
    "fields": {"title": "Title", "host_id": {"field": "Host", "ref": "users"}},
}


def parse(raw: object) -> tuple[Mapping, ...]:
    mappings, problems = parse_mappings(raw, KEY_FIELD)
    assert problems == [], problems
    return mappings


def problems(raw: object) -> dict[str, str]:
    """path -> reason of every problem (the first, when a path has several)."""
    mappings, found = parse_mappings(raw, KEY_FIELD)
    assert found, "expected problems"
    assert mappings == ()
    result: dict[str, str] = {}
    for p in found:
        result.setdefault(p.key, p.reason)
    return result


def with_users(**changes: Any) -> list[dict[str, Any]]:
    """[USERS] with keys changed (a value of None removes the key)."""
    entry = copy.deepcopy(USERS)
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return [entry]


def docs_example() -> list[dict[str, Any]]:
    block = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None
    return yaml.safe_load(block.group(1))["bubble-sync:mappings"]


# -- what parses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "  ", "[]", []])
def test_no_mappings(raw: object) -> None:
    assert parse_mappings(raw, KEY_FIELD) == ((), [])


def test_the_docs_example_parses_into_the_model() -> None:
    users, listings = parse(docs_example())
    assert users == Mapping(
        name="users",
        schema="public",
        table="profiles",
        key="id",
        data_type="user",
        key_field=KEY_FIELD,
        fields=(  # by column, whatever order the config lists them in
            FieldMap("created_at", "Joined"),
            FieldMap("email", "email"),
            FieldMap("first_name", "First Name"),
            FieldMap("last_name", "Last Name"),
        ),
        where="not is_test",
        operations=("insert", "update", "delete"),
        on_delete=OnDelete("delete"),
    )
    assert listings.fields[0] == FieldMap("host_id", "Host", "users")
    assert listings.on_delete == OnDelete("set", {"Archived": True})
    # onDelete given (not ignore) and no operations: delete is synced
    assert listings.operations == ("insert", "update", "delete")
    assert listings.definition((users, listings))["fields"][0]["refTable"] == "profiles"  # type: ignore[index]


def test_the_json_the_pulumi_cli_hands_the_program_parses_like_the_yaml() -> None:
    # `pulumi config set --path 'bubble-sync:mappings[0].table' public.profiles` ... : the program gets JSON
    # text, object keys sorted, `>` escaped, whole numbers as numbers.
    text = json.dumps(docs_example(), sort_keys=True).replace(">", "\\u003e")
    from_json = parse(text)
    from_yaml = parse(docs_example())
    assert [m.name for m in from_json] == ["users", "listings"]
    for a, b in zip(from_json, from_yaml, strict=True):
        assert sorted(a.fields, key=lambda f: f.column) == sorted(b.fields, key=lambda f: f.column)
        assert (a.table, a.operations, a.on_delete, a.where) == (b.table, b.operations, b.on_delete, b.where)


def test_path_set_values_that_the_cli_stores_as_numbers_are_taken_as_text() -> None:
    # `pulumi config set --path 'mappings[0].dataType' 2024` stores the number 2024
    (mapping,) = parse(json.dumps(with_users(dataType=2024, fields={"year": 2024})))
    assert (mapping.data_type, mapping.fields) == ("2024", (FieldMap("year", "2024"),))


def test_defaults_key_keyfield_operations_and_on_delete() -> None:
    (mapping,) = parse(with_users())
    assert (mapping.key, mapping.key_field, mapping.where) == ("id", KEY_FIELD, None)
    # without onDelete: a delete would delete, but deletes are not synced unless asked for
    assert mapping.on_delete == OnDelete("delete")
    assert mapping.operations == ("insert", "update")
    other, _ = parse_mappings(with_users(), "External Key")
    assert other[0].key_field == "External Key"


def test_every_key_can_be_set() -> None:
    (mapping,) = parse(
        with_users(
            table="Market.Listings",
            key="Listing Id",
            keyField="Supabase Key",
            where='  price > 0 and not "Is Test"  ',
            operations=["delete", "insert"],
            onDelete="ignore",
        )
    )
    assert (mapping.schema, mapping.table, mapping.key, mapping.key_field) == (
        "Market",
        "Listings",
        "Listing Id",
        "Supabase Key",
    )
    assert mapping.where == 'price > 0 and not "Is Test"'
    assert mapping.operations == ("insert", "delete")  # in the model's order
    assert mapping.on_delete == OnDelete("ignore")
    assert mapping.qualified_table == '"Market"."Listings"'


@pytest.mark.parametrize(
    ("on_delete", "operations"),
    [
        ("delete", ("insert", "update", "delete")),
        ("ignore", ("insert", "update")),
        ({"set": {"Archived": True}}, ("insert", "update", "delete")),
    ],
)
def test_on_delete_decides_the_default_operations(on_delete: object, operations: tuple[str, ...]) -> None:
    assert parse(with_users(onDelete=on_delete))[0].operations == operations


def test_a_soft_delete_sets_any_json_values() -> None:
    values = {
        "Archived": True,
        "Archived At": None,
        "Reason": "deleted",
        "Count": 0,
        "Tags": ["a"],
        "X": {"y": 1.5},
    }
    (mapping,) = parse(with_users(onDelete={"set": values}))
    assert mapping.on_delete == OnDelete("set", values)
    assert mapping.on_delete.to_json() == {"action": "set", "fields": values}


# -- problems, each at its path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ("{not json", "mappings", "is not JSON"),
        ('{"name": "users"}', "mappings", "must be a list of mappings, got an object"),
        ("users", "mappings", "is not JSON"),
        ({"name": "users"}, "mappings", "must be a list"),
        (["users"], "mappings[0]", "must be a mapping"),
        ([USERS, 5], "mappings[1]", "must be a mapping"),
    ],
)
def test_the_shape_of_the_list(raw: object, path: str, fragment: str) -> None:
    found = problems(raw)
    assert fragment in found[path], found


@pytest.mark.parametrize("key", ["name", "table", "dataType", "fields"])
def test_required_keys(key: str) -> None:
    found = problems(with_users(**{key: None}))
    assert found[f"mappings[0].{key}"].startswith("is required"), found
    assert list(found) == [f"mappings[0].{key}"]  # nothing else follows from it
    assert "is required" in problems(with_users(**{key: ""}))[f"mappings[0].{key}"]


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("datatype", "dataType"), ("feilds", "fields"), ("on_delete", "onDelete"), ("keyfield", "keyField")],
)
def test_unknown_keys_suggest_the_close_one(key: str, suggestion: str) -> None:
    entry = {**USERS, key: "x"}
    assert problems([entry])[f"mappings[0].{key}"] == f"unknown key (did you mean {suggestion}?)"


def test_an_unknown_key_with_nothing_close() -> None:
    assert problems([{**USERS, "colour": "red"}])["mappings[0].colour"] == "unknown key"


@pytest.mark.parametrize("name", ["Users", "1users", "_users", "user-s", "a" * 41, "üsers"])
def test_names_are_lowercase_identifiers_of_at_most_40(name: str) -> None:
    assert "lowercase letters, digits and _" in problems(with_users(name=name))["mappings[0].name"]


def test_a_name_of_40_is_fine() -> None:
    assert parse(with_users(name="u" * 40))[0].trigger_name == "bubble_sync_" + "u" * 40


def test_names_are_unique() -> None:
    second = {**USERS, "table": "public.other"}
    assert problems([USERS, second]) == {"mappings[1].name": "'users' is already the name of mappings[0]"}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("profiles", ("public", "profiles")),
        ("public.profiles", ("public", "profiles")),
        ("auth.users", ("auth", "users")),
        ("public.Listings", ("public", "Listings")),
        ("My Schema.Order Items", ("My Schema", "Order Items")),
        ("public.select", ("public", "select")),
        ("x" * 63, ("public", "x" * 63)),
    ],
)
def test_tables_are_any_identifiers_without_quotes(table: str, expected: tuple[str, str]) -> None:
    assert parse_table(table) == expected
    mapping = parse(with_users(table=table))[0]
    assert (mapping.schema, mapping.table) == expected


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ("a.b.c", "3 parts"),
        (".profiles", "empty name"),
        ("public.", "empty name"),
        ("public..x", "3 parts"),
        ('public."Listings"', "write names without quotes"),
        ("public.a:b", "a colon or a control character"),
        ("public.a\nb", "a colon or a control character"),
        ("public.a\tb", "a colon or a control character"),
        ("public. profiles", "a space at the start or end"),
        ("x" * 64, "longer than PostgreSQL's 63 bytes"),
        ("é" * 32, "longer than PostgreSQL's 63 bytes"),  # 64 bytes
    ],
)
def test_malformed_tables(table: str, fragment: str) -> None:
    found = problems(with_users(table=table))
    assert fragment in found["mappings[0].table"], found
    assert isinstance(parse_table(table), str)


def test_one_mapping_per_table() -> None:
    second = {**USERS, "name": "profiles"}
    found = problems([USERS, {**second, "table": "profiles"}])  # the same table, spelt without its schema
    assert found == {
        "mappings[1].table": "public.profiles is already mapped by mappings[0] (users): one mapping per table"
    }
    # another schema, or another case, is another table
    assert len(
        parse([USERS, {**second, "table": "other.profiles"}, {**second, "name": "p", "table": "Profiles"}])
    )


@pytest.mark.parametrize(("key", "value"), [("key", 'x"y'), ("key", "a:b"), ("key", " id"), ("key", ["id"])])
def test_key_is_a_column_name(key: str, value: object) -> None:
    assert "mappings[0].key" in problems(with_users(**{key: value}))


@pytest.mark.parametrize("data_type", ["user type", "user/1", "x" * 101, True])
def test_data_type_is_a_bubble_type_name(data_type: object) -> None:
    assert "mappings[0].dataType" in problems(with_users(dataType=data_type))


# -- fields --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [{}, None])
def test_fields_are_required_and_not_empty(fields: object) -> None:
    assert problems(with_users(fields=fields))["mappings[0].fields"].startswith("is required")


@pytest.mark.parametrize("fields", [["email"], "email"])
def test_fields_are_an_object(fields: object) -> None:
    assert "must be an object" in problems(with_users(fields=fields))["mappings[0].fields"]


def test_field_names_follow_the_bubble_field_name_rule() -> None:
    found = problems(with_users(fields={"a": " Leading", "b": 'x"y', "c": "ok", "d": True, "e": None}))
    assert set(found) == {
        "mappings[0].fields.a",
        "mappings[0].fields.b",
        "mappings[0].fields.d",
        "mappings[0].fields.e",
    }
    assert "a Bubble field name" in found["mappings[0].fields.a"]


def test_field_ids_are_refused_with_the_display_name_rule() -> None:
    found = problems(
        with_users(
            fields={"email": "email_text", "host": {"field": "host_custom_profile", "ref": "users"}},
            keyField="supabase_id_text",
            onDelete={"set": {"archived_boolean": True}},
        )
    )
    assert "looks like the field's id" in found["mappings[0].fields.email"]
    assert "e.g. 'email'" in found["mappings[0].fields.email"]
    assert "e.g. 'host'" in found["mappings[0].fields.host.field"]
    assert "e.g. 'supabase_id'" in found["mappings[0].keyField"]
    assert "e.g. 'archived'" in found["mappings[0].onDelete.set.archived_boolean"]


def test_two_columns_cannot_fill_one_field() -> None:
    found = problems(with_users(fields={"email": "Email", "email2": {"field": "Email"}}))
    assert found == {
        "mappings[0].fields.email2.field": "Bubble field 'Email' is already filled by column 'email'"
    }


def test_no_column_may_fill_the_key_field() -> None:
    assert (
        "is the mapping's keyField" in problems(with_users(fields={"id": KEY_FIELD}))["mappings[0].fields.id"]
    )
    found = problems(with_users(keyField="External", fields={"id": {"field": "External"}}))
    assert "'External' is the mapping's keyField" in found["mappings[0].fields.id.field"]


def test_unknown_sub_keys_of_a_field() -> None:
    found = problems(with_users(fields={"host_id": {"field": "Host", "refs": "users"}}))
    assert found == {"mappings[0].fields.host_id.refs": "unknown key (did you mean ref?)"}


def test_a_field_object_needs_its_field() -> None:
    found = problems([USERS, {**LISTINGS, "fields": {"host_id": {"ref": "users"}}}])
    assert found == {"mappings[1].fields.host_id.field": "is required"}


@pytest.mark.parametrize("column", ['"Email"', "a:b", "", " email", "x" * 64])
def test_columns_are_column_names(column: str) -> None:
    found = problems(with_users(fields={column: "Email"}))
    (path,) = found
    assert path.startswith("mappings[0].fields") and "must be a column name" in found[path]


def test_a_column_the_path_syntax_cannot_write_after_a_dot_is_quoted_in_the_path() -> None:
    found = problems(with_users(fields={"e-mail": "email_text", "First Name": "first_name_text"}))
    assert set(found) == {'mappings[0].fields["e-mail"]', 'mappings[0].fields["First Name"]'}


# -- references ----------------------------------------------------------------------------------------------


def test_a_ref_names_an_existing_mapping() -> None:
    listings = {**LISTINGS, "fields": {"host_id": {"field": "Host", "ref": "user"}}}
    assert problems([USERS, listings]) == {
        "mappings[1].fields.host_id.ref": 'no mapping named "user" (did you mean users?)'
    }
    assert problems([{**LISTINGS, "fields": {"host_id": {"field": "Host", "ref": "zzz"}}}]) == {
        "mappings[0].fields.host_id.ref": 'no mapping named "zzz"'
    }


def test_a_ref_may_name_a_mapping_listed_after_it() -> None:
    listings, users = parse([LISTINGS, USERS])
    assert listings.fields[0].ref == "users" and users.name == "users"


def test_a_mapping_referring_to_itself_is_a_cycle() -> None:
    found = problems(
        with_users(fields={"email": "Email", "invited_by": {"field": "Invited By", "ref": "users"}})
    )
    assert list(found) == ["mappings[0].fields.invited_by.ref"]
    assert found["mappings[0].fields.invited_by.ref"].startswith("reference cycle users -> users:")


def test_a_reference_cycle_is_named_once() -> None:
    users = {**USERS, "fields": {**USERS["fields"], "favourite": {"field": "Favourite", "ref": "listings"}}}
    unrelated = {"name": "tags", "table": "tags", "dataType": "tag", "fields": {"label": "Label"}}
    found = problems([unrelated, users, LISTINGS])
    assert found == {
        "mappings[1].fields.favourite.ref": "reference cycle users -> listings -> users: each record would "
        "wait for the other to reach Bubble first; send one of these columns as a plain field (without ref)"
    }


def test_a_longer_cycle_and_a_chain_beside_it() -> None:
    def mapping(name: str, ref: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"label": "Label"}
        if ref:
            fields["parent"] = {"field": "Parent", "ref": ref}
        return {"name": name, "table": name, "dataType": name, "fields": fields}

    found = problems(
        [mapping("a", "b"), mapping("b", "c"), mapping("c", "a"), mapping("d", "a"), mapping("e", None)]
    )
    assert list(found) == ["mappings[0].fields.parent.ref"]
    assert "reference cycle a -> b -> c -> a" in found["mappings[0].fields.parent.ref"]
    # a chain without a cycle is fine: parents reach Bubble first
    assert len(parse([mapping("a", "b"), mapping("b", "c"), mapping("c", None)])) == 3


# -- where ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "not is_test",
        "price > 0 and status in ('active', 'pending')",
        "\"Is Test\" is not true and note <> 'it''s ) here'",
        "x /* a ) in a comment */ and y",
        "exists (select 1 from public.banned b where b.id = id)",
        "(a or b) and (c)",
    ],
)
def test_where_conditions_that_parse(where: str) -> None:
    assert where_problem(where) is None
    assert parse(with_users(where=where))[0].where == where


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("true) union select (1", "closes a parenthesis it did not open"),
        ("a) or (b", "closes a parenthesis it did not open"),
        ("true) order by (1", "closes a parenthesis it did not open"),
        (
            "1; drop table x",
            'does not parse as a SQL condition: syntax error at or near ";" (at character 2)',
        ),
        ("price >", "syntax error at the end of the condition"),
        ("not is_test -- skip the tests", "has a -- comment"),
        ("'unterminated", "unterminated quoted string"),
        ("and is_test", "does not parse"),
    ],
)
def test_where_must_be_one_condition(where: str, fragment: str) -> None:
    reason = where_problem(where)
    assert reason is not None and fragment in reason, reason
    assert fragment in problems(with_users(where=where))["mappings[0].where"]


@pytest.mark.parametrize("where", [None, "", "   "])
def test_an_empty_where_is_no_filter(where: str | None) -> None:
    assert parse(with_users(where=where) if where is not None else with_users())[0].where is None


def test_where_is_text() -> None:
    assert "must be a SQL condition (a string)" in problems(with_users(where=True))["mappings[0].where"]


# -- operations and onDelete ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operations", "path", "fragment"),
    [
        ([], "mappings[0].operations", "must not be empty"),
        ("insert", "mappings[0].operations", "must be a list"),
        (["insert", "upsert"], "mappings[0].operations[1]", "must be insert, update or delete, got 'upsert'"),
        (["insert", "INSERT"], "mappings[0].operations[1]", "got 'INSERT'"),
        (["insert", "update", "insert"], "mappings[0].operations[2]", "insert is listed twice"),
        (["insert", {"x": 1}], "mappings[0].operations[1]", "must be insert, update or delete"),
    ],
)
def test_operations(operations: object, path: str, fragment: str) -> None:
    assert fragment in problems(with_users(operations=operations))[path]


@pytest.mark.parametrize("on_delete", ["delete", {"set": {"Archived": True}}])
def test_on_delete_without_delete_in_operations_has_no_effect(on_delete: object) -> None:
    found = problems(with_users(operations=["insert", "update"], onDelete=on_delete))
    assert found == {
        "mappings[0].onDelete": "has no effect: operations has no delete (add delete to operations, or "
        "remove onDelete)"
    }


def test_ignore_needs_no_delete_operation() -> None:
    assert parse(with_users(operations=["insert"], onDelete="ignore"))[0].operations == ("insert",)


@pytest.mark.parametrize(
    ("on_delete", "path", "fragment"),
    [
        ("archive", "mappings[0].onDelete", "must be delete, ignore or {set: {Field: value}}, got 'archive'"),
        ({"set": {}}, "mappings[0].onDelete.set", "must be the fields a delete sets"),
        ({"set": None}, "mappings[0].onDelete.set", "must be the fields a delete sets"),
        ({"set": ["Archived"]}, "mappings[0].onDelete.set", "got a list"),
        (
            {"set": {"Archived": True}, "sett": 1},
            "mappings[0].onDelete.sett",
            "unknown key (did you mean set?)",
        ),
        ({"set": {" bad": True}}, 'mappings[0].onDelete.set[" bad"]', "a Bubble field name"),
        ({"set": {KEY_FIELD: None}}, f"mappings[0].onDelete.set.{KEY_FIELD}", "is the mapping's keyField"),
        ({"set": {"When": float("nan")}}, "mappings[0].onDelete.set.When", "a finite number"),
        ({"set": {"When": {1, 2}}}, "mappings[0].onDelete.set.When", "must be a JSON value"),
    ],
)
def test_on_delete_problems(on_delete: object, path: str, fragment: str) -> None:
    found = problems(with_users(onDelete=on_delete))
    assert fragment in found[path], found


# -- every problem at once -----------------------------------------------------------------------------------


def test_every_problem_at_once_entry_by_entry_with_its_path() -> None:
    users = {**USERS, "name": "Users", "where": "1; drop table x", "onDelete": "archive"}
    listings = {**LISTINGS, "fields": {"host_id": {"field": "Host", "ref": "user"}}, "operations": ["upsert"]}
    dupe = {**USERS, "name": "listings", "table": "listings", "colour": 1}
    mappings, found = parse_mappings([users, listings, dupe], KEY_FIELD)
    assert mappings == ()
    assert [p.key for p in found] == [
        "mappings[0].name",
        "mappings[0].where",
        "mappings[0].onDelete",
        "mappings[1].operations[0]",
        "mappings[1].fields.host_id.ref",
        "mappings[2].colour",
        "mappings[2].name",
        "mappings[2].table",
    ]
    assert str(found[4]) == 'bubble-sync:mappings[1].fields.host_id.ref: no mapping named "user"'

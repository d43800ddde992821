"""The operator tools' view of what a stack syncs (components/operator/mappings.py): the mappings read back
from bubble_sync.mappings on real PostgreSQL, a database of an earlier release without them, a row that
cannot be read back, and the order a backfill of every mapping takes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from components.mappings import FieldMap
from components.operator import OperatorError
from components.operator.mappings import deployed_mappings, reference_order
from tests.conftest import Database
from tests.mapping_support import EVERY, LISTINGS_MAPPING, USERS, create_tables, deploy


@pytest.fixture
def conn(queue_db: Database) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(queue_db.dsn, autocommit=True, row_factory=dict_row) as c:
        create_tables(c)
        yield c


def test_the_deployed_mappings_are_read_back_by_name(conn: psycopg.Connection[Any]) -> None:
    assert deployed_mappings(conn) == ()  # the queue layer alone: no mapping yet
    deploy(conn)
    assert deployed_mappings(conn) == (LISTINGS_MAPPING, USERS)
    with psycopg.connect(conn.info.dsn, password=conn.info.password) as plain:  # tuple rows work as well
        assert deployed_mappings(plain) == (LISTINGS_MAPPING, USERS)


def test_a_database_of_an_earlier_release_has_none(conn: psycopg.Connection[Any]) -> None:
    conn.execute("drop table bubble_sync.mappings cascade")
    assert deployed_mappings(conn) == ()


@pytest.mark.parametrize(
    ("definition", "said"),
    [
        ("""'{"name": "users"}'""", "row 'users' is malformed (not a mapping definition"),
        ("'[1, 2]'", "row 'users': its definition is not a JSON object"),
        ("""definition || '{"name": "people"}'""", "definition names mapping 'people' of table 'profiles'"),
        ("""definition || '{"sourceTable": "members"}'""", "'members', the row says 'users' of 'profiles'"),
    ],
)  # fmt: skip
def test_a_row_that_is_not_a_mapping_names_it(
    conn: psycopg.Connection[Any], definition: str, said: str
) -> None:
    deploy(conn)
    conn.execute(f"update bubble_sync.mappings set definition = {definition} where name = 'users'")
    with pytest.raises(OperatorError) as raised:
        deployed_mappings(conn)
    assert said in str(raised.value) and "pulumi up" in str(raised.value)


def test_referenced_mappings_come_first() -> None:
    assert reference_order((LISTINGS_MAPPING, USERS)) == (USERS, LISTINGS_MAPPING)
    assert reference_order(EVERY) == EVERY
    # a chain: reviews name listings, which name users; each goes as early as its references allow
    reviews = dataclasses.replace(
        USERS, name="reviews", table="reviews", fields=(FieldMap("listing_id", "Listing", ref="listings"),)
    )
    tags = dataclasses.replace(USERS, name="tags", table="tags", fields=(FieldMap("name", "Name"),))
    ordered = reference_order((reviews, LISTINGS_MAPPING, tags, USERS))
    assert [m.name for m in ordered] == ["tags", "users", "listings", "reviews"]
    # a reference to a mapping not deployed is no constraint; a cycle keeps the given order
    assert reference_order((LISTINGS_MAPPING,)) == (LISTINGS_MAPPING,)
    back = dataclasses.replace(USERS, fields=(*USERS.fields, FieldMap("home_id", "Home", ref="listings")))
    assert [m.name for m in reference_order((LISTINGS_MAPPING, back))] == ["listings", "users"]

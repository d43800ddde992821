"""Mappings as the operator tools' tests deploy them: two source tables (users in public.profiles, listings
that name their host), their `Mapping`s, and `deploy`, which applies each mapping's row in
bubble_sync.mappings and its trigger with the statements the stack itself applies (components/sql/plan.py,
mapping_unit)."""

from __future__ import annotations

from typing import Any

import psycopg

from components.mappings import FieldMap, Mapping, OnDelete
from components.sql.plan import mapping_unit

PROFILES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  email      text not null,
  first_name text,
  is_test    boolean not null default false,
  joined     timestamptz not null default '2026-12-05 09:13:51.123456+00',
  score      numeric,
  tags       text[],
  secret     text
);
"""
LISTINGS = """
create table public.listings (
  id      bigint generated always as identity primary key,
  title   text not null,
  price   numeric,
  host_id uuid references public.profiles (id)
);
"""

USERS = Mapping(
    name="users", schema="public", table="profiles", key="id", data_type="user", key_field="supabase_id",
    fields=(
        FieldMap("email", "email"), FieldMap("first_name", "First Name"), FieldMap("joined", "Joined"),
        FieldMap("score", "Score"), FieldMap("tags", "Tags"),
    ),
    where="not is_test", operations=("insert", "update", "delete"), on_delete=OnDelete("delete"),
)  # fmt: skip
LISTINGS_MAPPING = Mapping(
    name="listings", schema="public", table="listings", key="id", data_type="listing",
    key_field="supabase_id",
    fields=(FieldMap("title", "Title"), FieldMap("price", "Price"), FieldMap("host_id", "Host", ref="users")),
    where=None, operations=("insert", "update"), on_delete=OnDelete("ignore"),
)  # fmt: skip
EVERY = (USERS, LISTINGS_MAPPING)


def create_tables(conn: psycopg.Connection[Any]) -> None:
    conn.execute(PROFILES)
    conn.execute(LISTINGS)


def deploy(conn: psycopg.Connection[Any], *mappings: Mapping) -> None:
    """Each mapping's row and trigger, as `pulumi up` applies them (default: both mappings)."""
    every = mappings or EVERY
    for mapping in every:
        unit = mapping_unit(mapping, every)
        conn.execute(unit.record.apply_sql)
        conn.execute(unit.trigger.apply_sql)


def add_users(conn: psycopg.Connection[Any], count: int, *, test_users: int = 0) -> list[str]:
    """`count` users (and `test_users` more with is_test), their ids in key order."""
    rows = conn.execute(
        "insert into public.profiles (email, first_name, is_test, score)"
        " select 'u' || i || '@example.com', 'Ada ' || i, i >= %s, i from generate_series(0, %s - 1) i"
        " returning id::text",
        (count, count + test_users),
    ).fetchall()
    return sorted(str(r[0] if isinstance(r, tuple) else r["id"]) for r in rows)


def add_listings(conn: psycopg.Connection[Any], hosts: list[str], per_host: int = 1) -> None:
    conn.execute(
        "insert into public.listings (title, price, host_id)"
        " select 'Loft ' || h || ' ' || i, 100 + i, h::uuid"
        "   from unnest(%s::text[]) h, generate_series(1, %s) i",
        (hosts, per_host),
    )

"""The app of the `mappings` profile: three Supabase tables, the stack's `bubble-sync:mappings` for them, the
Bubble app's data types as the double's `schema` knob describes them, and how one burst is split across the
tables. Pure data: the harness reads it to build the stack, bench/mapped.py to drive and check it.

- users: `public.profiles` -> Bubble `user`, fields renamed, a row filter (`not is_test`) that keeps the test
  accounts out of Bubble;
- listings: `public.listings` -> `listing`, `host_id` a reference to the host's `user` (a relation field,
  `Host`), `price numeric` -> `Price` (a number);
- messages: `public.messages` -> `message`, inserts, updates and deletes synced, a delete deleting the thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

#: the stack's key field, as Pulumi.local.yaml leaves it (bubbleExternalKeyField's default)
KEY_FIELD = "supabase_id"

TABLES = """
create table public.profiles (
  id         uuid primary key default gen_random_uuid(),
  email      text not null unique,
  first_name text,
  last_name  text,
  is_test    boolean not null default false,
  created_at timestamptz not null default now()
);
create table public.listings (
  id      bigint generated always as identity primary key,
  title   text not null,
  price   numeric(10, 2),
  host_id uuid not null references public.profiles (id)
);
create table public.messages (
  id            bigint generated always as identity primary key,
  body          text not null,
  sent_at       timestamptz not null default now(),
  -- not mapped: the workload deletes these once they are in Bubble
  deleted_later boolean not null default false
);
"""

MAPPINGS: list[dict[str, object]] = [
    {
        "name": "users",
        "table": "public.profiles",
        "dataType": "user",
        "fields": {
            "email": "email",
            "first_name": "First Name",
            "last_name": "Last Name",
            "created_at": "Joined",
        },
        "where": "not is_test",
    },
    {
        "name": "listings",
        "table": "public.listings",
        "dataType": "listing",
        "fields": {"title": "Title", "price": "Price", "host_id": {"field": "Host", "ref": "users"}},
    },
    {
        "name": "messages",
        "table": "public.messages",
        "dataType": "message",
        "fields": {"body": "Body", "sent_at": "Sent"},
        "operations": ["insert", "update", "delete"],
        "onDelete": "delete",
    },
]

#: the Bubble app's data types (the double's `schema` knob): it refuses a field it does not know, a value of
#: the wrong type, and a Host that is not the id of an existing user, as Bubble does
SCHEMA: dict[str, dict[str, str]] = {
    "user": {"First Name": "text", "Last Name": "text", "Joined": "date", KEY_FIELD: "text"},
    "listing": {"Title": "text", "Price": "number", "Host": "user", KEY_FIELD: "text"},
    "message": {"Body": "text", "Sent": "date", KEY_FIELD: "text"},
}

#: what the double alone is measured with (bench/double_load.ts): single creates of users this app knows
CEILING_TYPE = "user"
CEILING_FIELDS: dict[str, object] = {"First Name": "Ceiling"}

# How one burst's Bubble requests are split: creates of users, of messages, every third message deleted once
# it is in Bubble, and the rest listings (about 1.4 per user).
USERS_SHARE = 0.25
MESSAGES_SHARE = 0.30
DELETED_EVERY = 3
TEST_ACCOUNTS_PER_USERS = 100  # one test account per 100 users, at least one


def mappings_config() -> str:
    """The `mappings` stack config, as JSON text (what `pulumi config` hands the program)."""
    return json.dumps(MAPPINGS)


@dataclass(frozen=True)
class Sizes:
    """How many rows of each table one burst makes; `requests` Bubble requests in all (one per create or
    delete), the test accounts none."""

    users: int
    test_accounts: int
    listings: int
    messages: int
    deleted: int  # messages deleted after they reached Bubble

    @property
    def requests(self) -> int:
        return self.users + self.listings + self.messages + self.deleted


def sizes_for(requests: int) -> Sizes:
    """The burst of `requests` Bubble requests (at least 1) split across the three tables."""
    users = max(1, round(USERS_SHARE * requests))
    messages = max(0, min(requests - users, round(MESSAGES_SHARE * requests)))
    deleted = messages // DELETED_EVERY
    listings = max(0, requests - users - messages - deleted)
    return Sizes(
        users=users,
        test_accounts=max(1, users // TEST_ACCOUNTS_PER_USERS),
        listings=listings,
        messages=messages,
        deleted=deleted,
    )


def burst_sql(sizes: Sizes) -> str:
    """One transaction's rows, interleaved as an app makes them: each user, then its listings (which refer to
    it) and its share of the messages (every third to be deleted later), the test accounts spread among
    them. The triggers queue every row in that order."""
    return f"""
do $burst$
declare
  v_users    constant integer := {int(sizes.users)};
  v_tests    constant integer := {int(sizes.test_accounts)};
  v_listings constant integer := {int(sizes.listings)};
  v_messages constant integer := {int(sizes.messages)};
  v_host     uuid;
begin
  for i in 0 .. v_users - 1 loop
    insert into public.profiles (email, first_name, last_name)
    values ('user' || i || '@bench.example', 'Ada', 'U' || i)
    returning id into v_host;
    insert into public.listings (title, price, host_id)
    select 'Loft ' || j, 50 + (j % 500) + 0.25, v_host
      from generate_series(i * v_listings / v_users, (i + 1) * v_listings / v_users - 1) j;
    insert into public.messages (body, deleted_later)
    select 'Message ' || k, k % {DELETED_EVERY} = {DELETED_EVERY - 1}
      from generate_series(i * v_messages / v_users, (i + 1) * v_messages / v_users - 1) k;
    if (i + 1) * v_tests / v_users > i * v_tests / v_users then
      insert into public.profiles (email, first_name, last_name, is_test)
      values ('test' || i || '@bench.example', 'Test', 'T' || i, true);
    end if;
  end loop;
end
$burst$;
"""

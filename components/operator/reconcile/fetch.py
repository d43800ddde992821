"""Fetching Bubble's things into the session's store (things.py), two ways:

scan     every thing of a data type that carries a key (`<key field> is_not_empty`), 100 a page in order of
         creation: what a whole run needs, since a thing whose source row is gone (an orphan) can only be
         found on Bubble's side. One request per 100 things: the same as looking each record up, and the
         orphans come free. Bubble answers at most 50,000 things per search (manual), so a larger type is
         read in windows, each starting at the last `Created Date` the one before reached.
look_up  the things carrying given keys: `in` searches of up to 100 keys (and 5,000 characters of them,
         as the function's searches), paged when a key names several things. For a run limited by --where,
         and for a second look at the records that differed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from components.operator.reconcile.bubble import PAGE_SIZE, BubbleReader, Search, next_page
from components.operator.reconcile.things import CREATED_DATE, ThingStore

__all__ = ["KEYS_PER_SEARCH", "MAX_SEARCH_KEY_CHARS", "SEARCH_CAP", "look_up", "scan", "search_groups"]

#: keys per `in` search: one page of Bubble's answer, when each key names one thing
KEYS_PER_SEARCH = 100
#: the keys of one search, as JSON, at most this long: it goes in the URL (as search.ts)
MAX_SEARCH_KEY_CHARS = 5000
#: Bubble answers at most this many things per search (manual)
SEARCH_CAP = 50_000

OnPage = Callable[[int, int | None], None]


def scan(
    reader: BubbleReader,
    store: ThingStore,
    data_type: str,
    key_field: str,
    keep: frozenset[str],
    on_page: OnPage = lambda _read, _total: None,
) -> int:
    """Reads every thing of `data_type` that has a `key_field`; how many. `on_page(read, total)` after each
    page (total: Bubble's count when the scan began)."""
    read = 0
    total: int | None = None
    since: str | None = None  # the window's start: things created at or after it
    while True:
        constraints: list[dict[str, Any]] = [{"key": key_field, "constraint_type": "is_not_empty"}]
        if since is not None:
            constraints.append({"key": CREATED_DATE, "constraint_type": "greater than", "value": since})
        first = Search(data_type, json.dumps(constraints), 0, sort_field=CREATED_DATE)
        page = next(reader.pages([first], expected=1))
        in_window = len(page.things) + page.remaining
        total = in_window if total is None else total
        latest = _latest(page.things, None)
        store.add(data_type, key_field, page.things, keep)
        read += len(page.things)
        on_page(read, total)
        rest = [replace(first, cursor=c) for c in range(PAGE_SIZE, min(in_window, SEARCH_CAP), PAGE_SIZE)]
        for more in reader.pages(rest, expected=len(rest)):
            store.add(data_type, key_field, more.things, keep)
            latest = _latest(more.things, latest)
            read += len(more.things)
            on_page(read, total)
        if in_window <= SEARCH_CAP or latest is None or _a_moment_before(latest) == since:
            return read  # (the last: 50,000 things of one millisecond, which no app has)
        since = _a_moment_before(latest)  # things of the same millisecond are read again, and kept once


def look_up(
    reader: BubbleReader,
    store: ThingStore,
    data_type: str,
    key_field: str,
    keys: Sequence[str],
    keep: frozenset[str],
    on_page: OnPage = lambda _read, _total: None,
) -> int:
    """Reads the things carrying one of `keys`; how many."""
    searches = [
        Search(data_type, json.dumps([{"key": key_field, "constraint_type": "in", "value": group}]))
        for group in search_groups(keys)
    ]
    read = 0
    while searches:
        following = []
        for page in reader.pages(searches, expected=len(searches)):
            store.add(data_type, key_field, page.things, keep)
            read += len(page.things)
            on_page(read, None)
            after = next_page(page.search, page)
            if after is not None:  # a key naming several things: Bubble has more than a page of them
                following.append(after)
        searches = following
    return read


def search_groups(keys: Sequence[str]) -> list[list[str]]:
    """`keys` in groups of at most KEYS_PER_SEARCH keys and MAX_SEARCH_KEY_CHARS characters of them."""
    groups: list[list[str]] = []
    group: list[str] = []
    chars = 0
    for key in keys:
        size = len(json.dumps(key)) + 1
        if group and (len(group) >= KEYS_PER_SEARCH or chars + size > MAX_SEARCH_KEY_CHARS):
            groups.append(group)
            group, chars = [], 0
        group.append(key)
        chars += size
    if group:
        groups.append(group)
    return groups


def _latest(things: Sequence[dict[str, Any]], latest: str | None) -> str | None:
    for thing in things:
        created = thing.get(CREATED_DATE)
        if isinstance(created, str) and (latest is None or _instant(created) > _instant(latest)):
            latest = created
    return latest


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _a_moment_before(text: str) -> str:
    """A millisecond before `text` (Bubble's dates have milliseconds), as Bubble writes dates: `greater than`
    it takes the things of that very millisecond too."""
    moment = _instant(text).astimezone(UTC) - timedelta(milliseconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

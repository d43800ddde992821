"""What --key and --fields mean for a table the stack does not map: by default the arguments of its signup
trigger (bubble_sync.enqueue_change), checked against its columns. A backfilled record must get the record id
the trigger gives it (another key is refused) and should get the same fields (others are a warning)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from components.operator.backfill.base import BackfillError, run_query
from components.operator.queries import backfill_query

__all__ = ["Trigger", "checked_fields", "checked_key", "did_you_mean", "require_unique", "signup_triggers"]

#: a signup trigger: its name, its key column, its allow-list (empty: every column but credentials)
Trigger = tuple[str, str, tuple[str, ...]]


def signup_triggers(conn: psycopg.Connection[Any], oid: int) -> list[Trigger]:
    """The table's signup triggers with their arguments, read as bubble_sync.enqueue_change reads them."""
    triggers = []
    for row in run_query(conn, backfill_query("triggers"), {"oid": oid}):
        args = [a.decode() for a in bytes(row["args"]).split(b"\x00")[: row["nargs"]]]
        triggers.append((row["name"], (args[0] if args and args[0] else "id"), tuple(args[1:])))
    return triggers


def describe_triggers(triggers: Sequence[Trigger]) -> str:
    return "; ".join(f"{name} (key {key}, fields {', '.join(f) or 'all'})" for name, key, f in triggers)


def require_unique(conn: psycopg.Connection[Any], oid: int, key: str, label: str, flag: str) -> None:
    """The key must tell records apart (the record id in Bubble is <table>:<key>) and order them."""
    unique = {row["name"] for row in run_query(conn, backfill_query("unique_columns"), {"oid": oid})}
    if key not in unique:
        raise BackfillError(
            f"{flag}: {label} has no primary key or unique index on {key} alone; the key must tell "
            "records apart (the record id in Bubble is <table>:<key>) and order them for paging"
        )


def checked_key(
    conn: psycopg.Connection[Any],
    key: str | None,
    trigger: Trigger | None,
    oid: int,
    columns: Mapping[str, str],
    label: str,
) -> str:
    if key is None:
        key = trigger[1] if trigger else "id"
    if key not in columns:
        raise BackfillError(f"--key {key}: {label} has no column {key}{did_you_mean(key, columns)}")
    if trigger is not None and trigger[1] != key:
        raise BackfillError(
            f"--key {key}: the signup trigger {trigger[0]} on {label} keys records by {trigger[1]}; a "
            "backfilled record must carry the record id the trigger gives it, or a later change of it would "
            f"not find its row and Bubble would get it twice: use --key {trigger[1]} (or leave --key out)"
        )
    require_unique(conn, oid, key, label, f"--key {key}")
    return key


def checked_fields(
    fields: Sequence[str] | None,
    trigger: Trigger | None,
    columns: Mapping[str, str],
    label: str,
    warnings: list[str],
) -> tuple[str, ...]:
    if fields is None:
        if trigger is None:
            raise BackfillError(
                f"--fields is required: {label} has no signup trigger (bubble_sync.enqueue_change) to take "
                "the payload's fields from"
            )
        return trigger[2]
    chosen = tuple(fields)
    if not chosen:
        raise BackfillError("--fields is empty: name the columns Bubble gets, comma-separated")
    repeated = sorted({f for f in chosen if chosen.count(f) > 1})
    if repeated:
        raise BackfillError(f"--fields names {', '.join(repeated)} more than once")
    for name in chosen:
        if name not in columns:
            raise BackfillError(f"--fields: {label} has no column {name}{did_you_mean(name, columns)}")
    if trigger is not None and set(trigger[2]) != set(chosen):
        warnings.append(
            f"--fields differ from the allow-list of the signup trigger {trigger[0]} "
            f"({', '.join(trigger[2]) or 'every column but credentials'}): backfilled records are sent with "
            "other fields than new signups"
        )
    return chosen


def did_you_mean(name: str, columns: Mapping[str, str]) -> str:
    close = [c for c in columns if c.lower() == name.lower()]
    return f" (did you mean {close[0]}? column names are exact)" if close else ""

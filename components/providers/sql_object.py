"""A generic database object (a trigger, a view, a grant...) defined by three pieces of SQL.

* `apply_sql` creates or repairs it and is idempotent (`create or replace view`, `create or replace
  trigger`, ...);
* `drop_sql` removes it and is idempotent (`drop ... if exists`);
* `probe_sql` is a query returning one text value that describes the live object, NULL (or no row) when
  it is absent — e.g. `select pg_get_triggerdef(oid) from pg_trigger where tgname = 'x'`;
* `expected` is what the probe must return once `apply_sql` ran.

`read` puts the probe's answer under `expected`, so a hand edit that changes it shows up as drift, and an
absent object as deleted; `update` re-runs `apply_sql`. `create`/`update` check the probe afterwards, so
an `expected` that does not match what `apply_sql` produces fails at once instead of drifting forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.providers._base import PostgresProvider, changed, inputs_of, is_unknown

__all__ = ["SqlObject", "SqlObjectArgs", "SqlObjectProvider"]

INPUT_KEYS = ("name", "apply_sql", "drop_sql", "probe_sql", "expected")
COMPARED_KEYS = ("apply_sql", "drop_sql", "probe_sql", "expected")

# A drop of something whose container is already gone is as good as done.
_ALREADY_GONE = ("42704", "42P01", "3F000", "42883")  # undefined object / table / schema / function


@dataclass
class SqlObjectArgs:
    """See the module docstring. `name` identifies the object in messages and is the resource id;
    by default the Pulumi resource name."""

    apply_sql: pulumi.Input[str]
    drop_sql: pulumi.Input[str]
    probe_sql: pulumi.Input[str]
    expected: pulumi.Input[str]
    name: pulumi.Input[str] | None = None


class SqlObjectProvider(PostgresProvider):
    kind = "SQL object"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            CheckFailure(key, f"{key} must be a non-empty string")
            for key in INPUT_KEYS
            if not is_unknown(news.get(key)) and (not isinstance(news.get(key), str) or not news[key].strip())
        ]
        return CheckResult(dict(news), failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["name"], outs=self._apply(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        name = id_ or props["name"]
        with self.session(repr(name), "probe") as conn:
            live = _probe(conn, props["probe_sql"])
        if live is None:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=name, outs={**inputs_of(props, INPUT_KEYS), "expected": live})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The name is only a label for an object the SQL defines; a new name means a new object, and as
        # the two may be the same database object underneath, the old one goes first.
        replaces = changed(olds, news, ("name",))
        changes = bool(replaces) or bool(changed(olds, news, COMPARED_KEYS))
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        name = id_ or props["name"]
        with self.session(repr(name), "drop", transaction=True) as conn:
            try:
                with conn.transaction():
                    conn.execute(props["drop_sql"])
            except psycopg.Error as exc:
                if exc.sqlstate not in _ALREADY_GONE:
                    raise

    def _apply(self, props: Mapping[str, Any]) -> dict[str, Any]:
        name = props["name"]
        with self.session(repr(name), "apply", transaction=True) as conn:
            conn.execute(props["apply_sql"])
            live = _probe(conn, props["probe_sql"])
            if live != props["expected"]:
                raise self.fail(
                    repr(name),
                    f"after apply_sql the probe returns {live!r}, not the expected {props['expected']!r}; "
                    "fix `expected` (or the SQL) so they agree",
                )
        return inputs_of(props, INPUT_KEYS)


def _probe(conn: psycopg.Connection[Any], probe_sql: str) -> str | None:
    row = conn.execute(probe_sql).fetchone()
    return None if row is None or row[0] is None else str(row[0])


class SqlObject(Resource, module="bubblesync", name="SqlObject"):
    """An object defined by apply/drop/probe SQL; id = `name`."""

    name: pulumi.Output[str]
    apply_sql: pulumi.Output[str]
    drop_sql: pulumi.Output[str]
    probe_sql: pulumi.Output[str]
    expected: pulumi.Output[str]

    def __init__(
        self, resource_name: str, args: SqlObjectArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "name": args.name if args.name is not None else resource_name,
            "apply_sql": args.apply_sql,
            "drop_sql": args.drop_sql,
            "probe_sql": args.probe_sql,
            "expected": args.expected,
        }
        super().__init__(SqlObjectProvider(), resource_name, props, opts)

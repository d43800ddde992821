"""The mapping checks: each mapping's Bubble data type and fields exist in the app, and each column's type
fits the field it fills (docs/mappings.md), so that a row does not fail for good on its first sync.

    mappings.source             where the mappings come from: the stack config (bubble-sync:mappings) when it
                                has them, else the database (bubble_sync.mappings, as deployed); skipped when
                                there are none
    mappings.bubble_types       how the app's types were read: GET <bubbleBaseUrl>/meta, or, when the app
                                does not answer it, a search per type with limit=1 (bubble_types.py)
    mappings.<name>.data_type   the mapping's Bubble type exists and the Data API exposes it
    mappings.<name>.fields      every mapped field and the key field exist on it, and each column's type fits
                                its field's (a mismatch fails, naming the column, the field and both types);
                                with the probe, a field the sample thing lacks is a warning (it may be empty)

The column types are read from the database (read-only, as the database group); without it, only the names
are checked and the check says so. Read-only: GETs only, with or without --write-probe.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
from psycopg.rows import dict_row

from components.mappings import FieldMap, Mapping
from components.operator.connection import OperatorError, resolve_database_url
from components.operator.mappings import deployed_mappings
from components.operator.queries import split_queries
from components.preflight.bubble import TOKEN_ENV, bubble_said, search_results
from components.preflight.bubble_types import BubbleType, column_kind, fit, fit_value, parse_meta
from components.preflight.checks import CheckResult, Context, Status, failed, ok, skipped, warning

__all__ = ["GROUP", "checks"]

GROUP = "mappings"
SOURCE = "mappings.source"
BUBBLE_TYPES = "mappings.bubble_types"
_QUERY_FILE = Path(__file__).with_name("mappings.sql")
_FIELDS_FIX = (
    "add the field to the type in the Bubble editor (Data > Data types) with a type that fits, or change the "
    "mapping's fields (display names, as a GET returns them; docs/mappings.md says which column types fit)"
)
_DATA_API_SETTINGS = "Bubble editor > Settings > API: enable the Data API and tick the data type"


@dataclass
class _App:
    """The app's types as preflight could read them: from /meta (`types`), or one probe per type (`probes`:
    the answer's status and its first thing, if any)."""

    types: dict[str, BubbleType] | None = None
    probes: dict[str, tuple[int, dict[str, Any] | None, str]] = field(default_factory=dict)


def checks(ctx: Context) -> Iterator[CheckResult]:
    title = "the mappings to check"
    configured = ctx.config.mappings
    with _database(ctx) as (conn, no_database):
        if configured:
            mappings, source = configured, "the stack config (bubble-sync:mappings)"
        elif conn is None:
            yield skipped(SOURCE, title, f"the stack config has none, and {no_database}")
            return
        else:
            try:
                mappings, source = deployed_mappings(conn), "the database (bubble_sync.mappings)"
            except OperatorError as exc:
                yield failed(
                    SOURCE, title, str(exc), "run `pulumi up` for this stack: it writes the rows again"
                )
                return
        if not mappings:
            yield skipped(
                SOURCE, title, "no mappings in the stack config nor in the database: the stack syncs to "
                "bubbleDataType only",
            )  # fmt: skip
            return
        yield ok(SOURCE, title, f"{len(mappings)} from {source}: {', '.join(m.name for m in mappings)}")
        columns = {m.name: _columns(conn, m) for m in mappings} if conn is not None else {}
    yield from _against_bubble(ctx, mappings, columns, no_database)


def _against_bubble(
    ctx: Context,
    mappings: Sequence[Mapping],
    columns: dict[str, dict[str, dict[str, Any]] | None],
    no_database: str,
) -> Iterator[CheckResult]:
    why_not = _bubble_unusable(ctx)
    token = ctx.environ.get(TOKEN_ENV, "").strip()
    if why_not is None and not token:
        why_not = f"no Bubble API token (${TOKEN_ENV})"
    if why_not is not None:
        yield skipped(BUBBLE_TYPES, "the app's data types", why_not)
        for m in mappings:
            yield skipped(f"mappings.{m.name}.data_type", _type_title(m), why_not)
            yield skipped(f"mappings.{m.name}.fields", _fields_title(m), why_not)
        return
    ctx.add_secret(token)
    base = (ctx.config.bubble_base_url or "").rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=ctx.http_timeout) as client:
        app, how = _read_app(client, base, sorted({m.data_type for m in mappings}))
    yield ok(BUBBLE_TYPES, "the app's data types", how)
    by_name = {m.name: m for m in mappings}
    for m in mappings:
        type_result, bubble_type, sample = _data_type(app, m)
        yield type_result
        if type_result.status is Status.FAILED:
            yield skipped(f"mappings.{m.name}.fields", _fields_title(m), f"Bubble has no type {m.data_type}")
            continue
        yield _fields(m, by_name, columns.get(m.name), bubble_type, sample, no_database)


# -- the database: the mappings when the config has none, and the columns' types ---------------------------


@contextmanager
def _database(ctx: Context) -> Iterator[tuple[psycopg.Connection[Any] | None, str]]:
    """A read-only connection, or None and why not."""
    earlier = ctx.result("database.connection")
    if earlier is not None and earlier.status is not Status.OK:
        yield None, "the database cannot be reached (database.connection)"
        return
    try:
        url, _ = resolve_database_url(
            database_url_arg=None, stack=ctx.stack, project_dir=ctx.project_dir, environ=ctx.environ
        )
        ctx.add_secret(url)
        conn = psycopg.connect(
            url, connect_timeout=ctx.connect_timeout, autocommit=True, row_factory=dict_row
        )
    except (OperatorError, psycopg.Error, ValueError) as exc:
        yield None, f"the database cannot be reached ({' '.join(str(exc).split())[:200]})"
        return
    with conn:
        try:
            conn.execute(_query("session"))
        except psycopg.Error as exc:
            yield None, f"the database does not answer ({' '.join(str(exc).split())[:200]})"
            return
        yield conn, ""


def _columns(conn: psycopg.Connection[Any], mapping: Mapping) -> dict[str, dict[str, Any]] | None:
    """The table's columns by name; None when there is no such table (or the role may not see it)."""
    try:
        rows = conn.execute(_query("columns"), {"table": mapping.qualified_table}).fetchall()
    except psycopg.Error:  # permission denied for its schema: as good as missing, for this role
        return None
    return {row["name"]: row for row in rows} or None


@functools.cache
def _queries() -> dict[str, str]:
    return split_queries(_QUERY_FILE.read_text(encoding="utf-8"), _QUERY_FILE.name)


def _query(name: str) -> str:
    return _queries()[name]


# -- Bubble: the app's types, from /meta or a probe per type ------------------------------------------------


def _bubble_unusable(ctx: Context) -> str | None:
    """Why the app cannot be asked, as the Bubble group found (None: it can, or that group did not run)."""
    for check in ("bubble.token", "bubble.reachable", "bubble.token_accepted"):
        result = ctx.result(check)
        if result is not None and result.status is not Status.OK:
            return f"{result.title} failed ({check})"
    return None


def _read_app(client: httpx.Client, base: str, data_types: Sequence[str]) -> tuple[_App, str]:
    try:
        answer = client.get(f"{base}/meta")
        types = parse_meta(answer.json()) if answer.status_code == 200 else None
        said = f"answered {answer.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        types, said = None, f"failed: {type(exc).__name__}"
    if types is not None:
        return _App(types=types), f"from GET {base}/meta ({len(types)} types)"
    app = _App()
    for data_type in data_types:
        try:
            probe = client.get(f"{base}/obj/{quote(data_type, safe='')}", params={"limit": "1"})
        except httpx.HTTPError as exc:
            app.probes[data_type] = (0, None, f"no answer: {type(exc).__name__}")
            continue
        things = search_results(probe) if probe.status_code == 200 else []
        app.probes[data_type] = (probe.status_code, things[0] if things else None, bubble_said(probe))
    return app, (
        f"GET {base}/meta {said} (not a description of the app), so each type was probed with a search "
        "(limit=1): a field the sample thing lacks may just be empty there, a warning only"
    )


def _data_type(app: _App, m: Mapping) -> tuple[CheckResult, BubbleType | None, dict[str, Any] | None]:
    check, title = f"mappings.{m.name}.data_type", _type_title(m)
    if app.types is not None:
        found = app.types.get(m.data_type)
        if found is None:
            close = [n for n in app.types if _loose(n) == _loose(m.data_type) or _loose(app.types[n].display)
                     == _loose(m.data_type)]  # fmt: skip
            hint = (
                f" (did you mean {close[0]}?)" if close else f" (its types: {', '.join(sorted(app.types))})"
            )
            return failed(check, title, f"the app has no type {m.data_type}{hint}", _type_fix(m)), None, None
        if not found.exposed:
            return (
                failed(check, title, f"the Data API does not expose {m.data_type}", _DATA_API_SETTINGS),
                None,
                None,
            )
        return ok(check, title, f"{m.data_type} ({found.display}, {len(found.fields)} fields)"), found, None
    status, sample, said = app.probes[m.data_type]
    if status == 200:
        seen = "a sample thing to read its fields from" if sample else "no thing yet to read its fields from"
        return ok(check, title, f"GET /obj/{m.data_type} answered 200, {seen}"), None, sample
    if status == 404:
        return failed(check, title, f"GET /obj/{m.data_type} answered 404: {said}", _type_fix(m)), None, None
    return failed(
        check, title, f"GET /obj/{m.data_type} answered {status or 'nothing'}: {said}", "run preflight again"
    ), None, None  # fmt: skip


def _type_fix(m: Mapping) -> str:
    return (
        f"set the dataType of mapping {m.name} to the type's name as the Data API spells it (lowercase, no "
        f"spaces), and {_DATA_API_SETTINGS}"
    )


def _loose(name: str) -> str:
    return name.lower().replace(" ", "").removeprefix("custom.")


# -- the fields ---------------------------------------------------------------------------------------------


def _fields(
    m: Mapping,
    by_name: dict[str, Mapping],
    columns: dict[str, dict[str, Any]] | None,
    bubble_type: BubbleType | None,
    sample: dict[str, Any] | None,
    no_database: str,
) -> CheckResult:
    check, title = f"mappings.{m.name}.fields", _fields_title(m)
    failures: list[str] = []
    warnings: list[str] = []
    if columns is None and not no_database:
        failures.append(f"{m.qualified_table} does not exist (or cannot be seen by this role)")
    for f in m.fields:
        kind, said = _column(f, columns, failures)
        ref_type = by_name[f.ref].data_type if f.ref is not None and f.ref in by_name else None
        if bubble_type is not None:
            _against_meta(m, f, kind, said, ref_type, bubble_type, failures, warnings)
        elif sample is not None:
            _against_sample(f, kind, said, sample, failures, warnings)
    _key_field(m, bubble_type, sample, failures, warnings)
    if bubble_type is None and sample is None:
        warnings.append(
            f"no {m.data_type} thing to see its fields on: create one, or let the app answer /meta"
        )
    unchecked = f"; column types not checked: {no_database}" if no_database else ""
    if failures:
        return failed(check, title, "; ".join(failures + warnings) + unchecked, _FIELDS_FIX)
    if warnings:
        return warning(check, title, "; ".join(warnings) + unchecked, _FIELDS_FIX)
    names = ", ".join(f"'{f.field}'" for f in m.fields)
    found = f"{names} and the key field '{m.key_field}'"
    if unchecked:
        return ok(check, title, f"{found} are there{unchecked}")
    compared = "their types fit" if bubble_type is not None else "the sample thing's values fit"
    return ok(check, title, f"{found}: {compared}")


def _column(
    f: FieldMap, columns: dict[str, dict[str, Any]] | None, failures: list[str]
) -> tuple[str | None, str]:
    """The column's kind and how to name it (`first_name (text)`), or None when unknown or refused."""
    if columns is None:
        return None, f"column {f.column}"
    row = columns.get(f.column)
    if row is None:
        failures.append(f"column {f.column}: the table has no such column")
        return None, f"column {f.column}"
    if f.ref is not None:
        return "ref", f"column {f.column} ({row['type']}, a reference to {f.ref})"
    kind = column_kind(
        row["base"], row["element"], is_enum=row["is_enum"], element_is_enum=row["element_is_enum"]
    )
    if kind is None:
        failures.append(
            f"column {f.column} ({row['type']}): Bubble's Data API has no field type that takes it"
        )
        return None, f"column {f.column} ({row['type']})"
    return kind, f"column {f.column} ({row['type']}, sent as {kind})"


def _against_meta(
    m: Mapping,
    f: FieldMap,
    kind: str | None,
    said: str,
    ref_type: str | None,
    bubble_type: BubbleType,
    failures: list[str],
    warnings: list[str],
) -> None:
    if m.data_type == "user" and f.field == "email":
        return  # the user's built-in email (authentication.email), not a field of the type
    field_ = bubble_type.fields.get(f.field)
    if field_ is None:
        close = [
            d
            for d in bubble_type.fields
            if d.lower() == f.field.lower() or bubble_type.fields[d].key == f.field
        ]
        hint = f" (did you mean '{close[0]}'? the display name, exactly)" if close else ""
        failures.append(f"{said} → field '{f.field}': {m.data_type} has no such field{hint}")
        return
    if kind is None or (kind == "ref" and ref_type is None):
        return  # unknown column, or a reference to a mapping not among these (its type is unknown here)
    verdict = fit(kind, field_.type, ref_type=ref_type if kind == "ref" else None)
    text = f"{said} → field '{f.field}' ({field_.type}): {verdict.why}"
    if verdict.status == "failed":
        failures.append(text)
    elif verdict.status == "warning":
        warnings.append(text)


def _against_sample(
    f: FieldMap,
    kind: str | None,
    said: str,
    sample: dict[str, Any],
    failures: list[str],
    warnings: list[str],
) -> None:
    if f.field not in sample:
        if f.field != "email" or "authentication" not in sample:
            warnings.append(f"field '{f.field}' is not on the sample thing (empty there, or no such field)")
        return
    if kind is None:
        return
    verdict = fit_value(kind, sample[f.field], is_ref=kind == "ref")
    if verdict.status != "ok":
        failures.append(f"{said} → field '{f.field}': {verdict.why}")


def _key_field(
    m: Mapping,
    bubble_type: BubbleType | None,
    sample: dict[str, Any] | None,
    failures: list[str],
    warnings: list[str],
) -> None:
    """The field holding `<table>:<key>`: a text field, looked up before a retried create."""
    key = m.key_field
    if bubble_type is not None:
        found = bubble_type.fields.get(key)
        if found is None:
            failures.append(f"the key field '{key}': {m.data_type} has no such field (add a text field)")
        elif found.type != "text":
            failures.append(f"the key field '{key}' is {found.type}: it must be text")
    elif sample is not None and key not in sample:
        warnings.append(f"the key field '{key}' is not on the sample thing (empty there, or no such field)")


def _type_title(m: Mapping) -> str:
    return f"mapping {m.name}: Bubble type {m.data_type}"


def _fields_title(m: Mapping) -> str:
    return f"mapping {m.name}: fields and types"

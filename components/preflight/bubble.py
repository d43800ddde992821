"""The Bubble checks: the stack's Bubble app answers the way the sync needs, asked with the stack's own token.

Why one module: the checks run in order against one `_Bubble` client, each skipped with the reason of an
earlier one that failed (`_skip_after`), and the write probe's steps share the thing it creates.

    bubble.token         a token is there: $BUBBLE_API_TOKEN (the stack's bubbleApiToken is encrypted, so it
                         cannot be read here; the check says how to export it)
    bubble.reachable     GET <bubbleBaseUrl>/obj/<bubbleDataType>?limit=1 gets an answer, not a 5xx
    bubble.token_accepted  that GET is not refused with 401/403
    bubble.data_type     that GET answers 200: the type exists and the Data API exposes it
    bubble.key_field     a search on bubbleExternalKeyField answers 200: the field exists and is searchable
    bubble.email_lookup  (type user) a search on key `email` finds a user by the email a GET shows under
                         `authentication.email.email`: what links a signup whose email Bubble already has
    bubble.rate_limit    what the app's rate limit looks like: the configured pace against Bubble's plans,
                         and the answer times measured here
  with --write-probe:
    bubble.write_create  POST creates one marked thing (`bubble-sync-preflight-<random>`)
    bubble.write_modify  PATCH changes its key field
    bubble.used_email    (type user) a second create with the same email: how this app refuses a used email
                         (its status and code), which Bubble does not document
    bubble.write_delete  DELETE removes it again (if this fails, the fix names the thing to delete by hand)

Read-only without --write-probe: GETs only. Sources: Bubble's manual (Data API requests: searches,
"Creating users", bulk; hard limits) and the facts checked against primary sources in November 2026, whose
UNCONFIRMED answers are exactly what these checks settle on a real app.
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from components.preflight.checks import CheckResult, Context, Status, failed, ok, skipped, warning
from components.stack_file import is_encrypted

__all__ = ["GROUP", "TOKEN_ENV", "bubble_said", "checks", "search_results"]

GROUP = "bubble"
TOKEN_ENV = "BUBBLE_API_TOKEN"
TOKEN_KEY = "bubbleApiToken"
#: Bubble's documented limits, requests per minute per app (hard limits page)
PLANS = {"legacy": 1_000, "Starter": 15_000, "Growth": 25_000, "Team": 35_000}

TOKEN = "bubble.token"
REACHABLE = "bubble.reachable"
TOKEN_ACCEPTED = "bubble.token_accepted"
DATA_TYPE = "bubble.data_type"
KEY_FIELD = "bubble.key_field"
EMAIL_LOOKUP = "bubble.email_lookup"
RATE_LIMIT = "bubble.rate_limit"
WRITE_CREATE = "bubble.write_create"
WRITE_MODIFY = "bubble.write_modify"
USED_EMAIL = "bubble.used_email"
WRITE_DELETE = "bubble.write_delete"

_TITLES = {
    TOKEN: "Bubble API token",
    REACHABLE: "Bubble answers",
    TOKEN_ACCEPTED: "Bubble accepts the API token",
    DATA_TYPE: "the data type exists in the Data API",
    KEY_FIELD: "the key field exists and is searchable",
    EMAIL_LOOKUP: "a user can be found by email",
    RATE_LIMIT: "Bubble's rate limit",
    WRITE_CREATE: "write probe: create a thing",
    WRITE_MODIFY: "write probe: modify it",
    USED_EMAIL: "write probe: how this app refuses a used email",
    WRITE_DELETE: "write probe: delete it",
}
_DATA_API_SETTINGS = "Bubble editor > Settings > API: enable the Data API and tick the data type"


@dataclass
class _Bubble:
    """The app's Data API, with the answer times it measured."""

    base_url: str
    data_type: str
    client: httpx.Client
    seconds: list[float] = field(default_factory=list)

    def url(self, suffix: str = "") -> str:
        return f"{self.base_url}/obj/{quote(self.data_type, safe='')}{suffix}"

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        started = time.monotonic()
        try:
            return self.client.request(method, url, **kwargs)
        finally:
            self.seconds.append(time.monotonic() - started)

    def search(self, key: str, constraint: str, value: Any = None, limit: int = 1) -> httpx.Response:
        rule: dict[str, Any] = {"key": key, "constraint_type": constraint}
        if value is not None:
            rule["value"] = value
        return self.send("GET", self.url(), params={"constraints": json.dumps([rule]), "limit": str(limit)})


def checks(ctx: Context) -> Iterator[CheckResult]:
    config = ctx.config
    token = ctx.environ.get(TOKEN_ENV, "").strip()
    if not token:
        yield _no_token(ctx)
        yield from _skip_after(TOKEN, "no Bubble API token")
        return
    ctx.add_secret(token)
    yield ok(TOKEN, _TITLES[TOKEN], f"from ${TOKEN_ENV}")
    assert config.bubble_base_url is not None  # required: the stack check refuses a stack without it
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=ctx.http_timeout) as client:
        bubble = _Bubble(config.bubble_base_url, config.bubble_data_type, client)
        yield from _read_checks(ctx, bubble)
        readable = ctx.result(DATA_TYPE)
        if readable is None or readable.status is not Status.OK:
            return  # the writes were skipped with the reason
        if not ctx.write_probe:
            yield from _skip_writes("read-only: run with --write-probe to prove that writes work")
        else:
            yield from _write_probe(ctx, bubble)


_WRITES = (WRITE_CREATE, WRITE_MODIFY, USED_EMAIL, WRITE_DELETE)


# -- read-only -----------------------------------------------------------------------------------------------


def _read_checks(ctx: Context, bubble: _Bubble) -> Iterator[CheckResult]:
    config = ctx.config
    where = f"{bubble.base_url} ({config.bubble_environment})"
    try:
        first = bubble.send("GET", bubble.url(), params={"limit": "1"})
    except httpx.HTTPError as exc:
        yield failed(
            REACHABLE,
            _TITLES[REACHABLE],
            f"no answer from {where}: {type(exc).__name__}: {exc}",
            "check bubbleBaseUrl (https://<app>.bubbleapps.io/api/1.1, or /version-test/api/1.1 for "
            "development, or your custom domain), and that the app is up",
        )
        yield from _skip_after(REACHABLE, "Bubble did not answer")
        return
    if first.status_code >= 500:
        yield failed(
            REACHABLE,
            _TITLES[REACHABLE],
            f"{where} answered {first.status_code}: {bubble_said(first)}",
            "Bubble is failing: try again in a few minutes (https://status.bubble.io)",
        )
        yield from _skip_after(REACHABLE, f"Bubble answered {first.status_code}")
        return
    yield ok(REACHABLE, _TITLES[REACHABLE], where)
    if first.status_code in (401, 403):
        yield failed(
            TOKEN_ACCEPTED,
            _TITLES[TOKEN_ACCEPTED],
            f"Bubble refused the token ({first.status_code}): {bubble_said(first)}",
            "create an API token in the Bubble editor > Settings > API for THIS app (live and version-test "
            f"share it); `pulumi config set --secret {TOKEN_KEY}` and export it as ${TOKEN_ENV}",
        )
        yield from _skip_after(TOKEN_ACCEPTED, "Bubble refused the token")
        return
    yield ok(TOKEN_ACCEPTED, _TITLES[TOKEN_ACCEPTED])
    if first.status_code == 429:
        yield failed(
            DATA_TYPE,
            _TITLES[DATA_TYPE],
            "Bubble answered 429: the app's rate limit is spent right now",
            "run preflight again in a minute",
        )
        yield from _skip_after(DATA_TYPE, "rate limited")
        return
    if first.status_code != 200:
        yield failed(
            DATA_TYPE,
            _TITLES[DATA_TYPE],
            f"GET /obj/{bubble.data_type} answered {first.status_code}: {bubble_said(first)}",
            f"set bubbleDataType to the type's name as the Data API spells it (lowercase, no spaces; "
            f"'user' for users), and {_DATA_API_SETTINGS}",
        )
        yield from _skip_after(DATA_TYPE, "the data type cannot be read")
        return
    sample = search_results(first)
    yield ok(DATA_TYPE, _TITLES[DATA_TYPE], f"/obj/{bubble.data_type}")
    yield _key_field(ctx, bubble)
    yield _email_lookup(ctx, bubble, sample)
    yield _rate_limit(ctx, bubble)


def _key_field(ctx: Context, bubble: _Bubble) -> CheckResult:
    key = ctx.config.bubble_external_key_field
    title = _TITLES[KEY_FIELD]
    try:
        answer = bubble.search(key, "equals", "bubble-sync-preflight: no such key")
    except httpx.HTTPError as exc:
        return failed(KEY_FIELD, title, f"no answer to a search on {key!r}: {exc}", "run preflight again")
    if answer.status_code == 200:
        return ok(KEY_FIELD, title, f"{key!r} on {bubble.data_type}")
    return failed(
        KEY_FIELD,
        title,
        f"a search on {key!r} answered {answer.status_code}: {bubble_said(answer)}",
        f"add a text field {key!r} to the type {bubble.data_type!r} (Bubble editor > Data > Data types), or "
        f"set bubbleExternalKeyField to the display name of the field that holds the key. Without it a "
        f"retried create cannot find the thing an earlier attempt made, and would make a second one",
    )


def _email_lookup(ctx: Context, bubble: _Bubble, sample: list[dict[str, Any]]) -> CheckResult:
    title = _TITLES[EMAIL_LOOKUP]
    if bubble.data_type != "user":
        return skipped(
            EMAIL_LOOKUP, title, f"the data type is {bubble.data_type!r}: only users have Bubble's email"
        )
    email = next((e for e in map(email_of, sample) if e), None)
    if email is None:
        why = "the app has no user yet" if not sample else "the API token does not see users' emails"
        if sample:
            return warning(
                EMAIL_LOOKUP,
                title,
                f"{why} (a GET shows no authentication.email.email): a signup whose email already has a "
                f"Bubble "
                f"account cannot be recognised",
                "let the Data API see users' emails (Bubble editor > Data > Privacy: the rule that applies "
                "to "
                "API calls), or run with --write-probe to test with a user of its own",
            )
        return skipped(EMAIL_LOOKUP, title, f"{why}: run with --write-probe to test with a user of its own")
    return _look_up(bubble, email, title, EMAIL_LOOKUP)


def _look_up(bubble: _Bubble, email: str, title: str, check: str) -> CheckResult:
    """Whether a search on key `email` finds the user whose email is `email` (checked on the answer)."""
    try:
        answer = bubble.search("email", "equals", email)
    except httpx.HTTPError as exc:
        return failed(check, title, f"no answer to a search by email: {exc}", "run preflight again")
    found = [t for t in search_results(answer) if (email_of(t) or "").lower() == email.lower()]
    if answer.status_code == 200 and found:
        return ok(check, title, "a search with key 'email' finds the user by the built-in email")
    said = f"answered {answer.status_code}" + (
        "" if answer.status_code == 200 else f": {bubble_said(answer)}"
    )
    return failed(
        check,
        title,
        f"a search with key 'email' for a user's own email {said} without that user: a signup whose email "
        f"already has a Bubble account cannot be linked (it is retried until retryHorizonHours, then fails)",
        "report this app's answer to bubble-sync (it is undocumented); meanwhile link such users by hand "
        "(docs/runbook.md) or give the Data API's privacy rules access to users' emails",
    )


def _rate_limit(ctx: Context, bubble: _Bubble) -> CheckResult:
    configured = ctx.config.bubble_rate_limit_per_minute
    title = _TITLES[RATE_LIMIT]
    plans = ", ".join(f"{name} {limit:,}" for name, limit in PLANS.items())
    measured = (
        f"median answer {statistics.median(bubble.seconds) * 1000:.0f} ms over {len(bubble.seconds)} requests"
    )
    if configured == 0:
        return warning(
            RATE_LIMIT,
            title,
            f"bubbleRateLimitPerMinute is 0 (unpaced): a backlog meets Bubble's 429s; {measured}",
            f"set your plan's requests per minute ({plans}); live and version-test share it",
        )
    return ok(
        RATE_LIMIT,
        title,
        f"paced at {configured:,}/min (bubbleRateLimitPerMinute; Bubble's plans: {plans}; the plan itself is "
        f"not visible through the API); {measured}",
    )


# -- --write-probe -------------------------------------------------------------------------------------------


def _write_probe(ctx: Context, bubble: _Bubble) -> Iterator[CheckResult]:
    key = ctx.config.bubble_external_key_field
    marker = f"bubble-sync-preflight-{secrets.token_hex(6)}"
    fields: dict[str, Any] = {key: marker}
    email = f"{marker}@example.com"
    if bubble.data_type == "user":
        fields["email"] = email
    try:
        created = bubble.send("POST", bubble.url(), json=fields)
    except httpx.HTTPError as exc:
        yield failed(WRITE_CREATE, _TITLES[WRITE_CREATE], f"no answer: {exc}", "run preflight again")
        yield from _skip_writes("nothing was created", _WRITES[1:])
        return
    thing_id = _created_id(created)
    if thing_id is None:
        yield failed(
            WRITE_CREATE,
            _TITLES[WRITE_CREATE],
            f"POST /obj/{bubble.data_type} answered {created.status_code}: {bubble_said(created)}",
            f"let the API token create {bubble.data_type} things (Bubble editor > Settings > API, and the "
            f"type's privacy rules); an 'Unrecognized field' names a field to add or to spell as its display "
            f"name",
        )
        yield from _skip_writes("nothing was created", _WRITES[1:])
        return
    yield ok(WRITE_CREATE, _TITLES[WRITE_CREATE], f"{bubble.data_type} {thing_id} ({marker})")
    results = []
    try:  # whatever happens, the probe's thing is deleted again
        results.append(_modify(bubble, thing_id, key, marker))
        if bubble.data_type == "user":
            results.append(_used_email(bubble, fields))
        else:
            results.append(skipped(USED_EMAIL, _TITLES[USED_EMAIL], "only users have Bubble's unique email"))
    finally:
        results.append(_delete(bubble, thing_id, marker))
    yield from results


def _modify(bubble: _Bubble, thing_id: str, key: str, marker: str) -> CheckResult:
    try:
        answer = bubble.send(
            "PATCH", bubble.url(f"/{quote(thing_id, safe='')}"), json={key: f"{marker}-modified"}
        )
    except httpx.HTTPError as exc:
        return failed(WRITE_MODIFY, _TITLES[WRITE_MODIFY], f"no answer: {exc}", "run preflight again")
    if answer.status_code in (200, 204):
        return ok(WRITE_MODIFY, _TITLES[WRITE_MODIFY], f"PATCH answered {answer.status_code}")
    return failed(
        WRITE_MODIFY,
        _TITLES[WRITE_MODIFY],
        f"PATCH answered {answer.status_code}: {bubble_said(answer)}",
        "let the API token modify the type's things (its privacy rules); UPDATE rows and linking a user "
        "Bubble already has both modify",
    )


def _used_email(bubble: _Bubble, fields: dict[str, Any]) -> CheckResult:
    """The answer to a create whose email is taken: recorded, since Bubble documents only the code."""
    try:
        answer = bubble.send("POST", bubble.url(), json={"email": fields["email"]})
    except httpx.HTTPError as exc:
        return failed(USED_EMAIL, _TITLES[USED_EMAIL], f"no answer: {exc}", "run preflight again")
    duplicate = _created_id(answer)
    if duplicate is not None:
        _remove(bubble, duplicate)
        return failed(
            USED_EMAIL,
            _TITLES[USED_EMAIL],
            "Bubble created a second user with the same email",
            "report this to bubble-sync: its duplicate protection for users relies on Bubble refusing it",
        )
    code = _code(answer)
    found = _look_up(bubble, fields["email"], _TITLES[USED_EMAIL], USED_EMAIL)
    detail = f"HTTP {answer.status_code}" + (f", code {code}" if code else ", no code in the body")
    if found.status.value != "ok":
        return found
    return ok(
        USED_EMAIL, _TITLES[USED_EMAIL], f"{detail}; the user holding it is found by email, so it is linked"
    )


def _delete(bubble: _Bubble, thing_id: str, marker: str) -> CheckResult:
    status = _remove(bubble, thing_id)
    if status in (200, 204):
        return ok(WRITE_DELETE, _TITLES[WRITE_DELETE], f"{thing_id} deleted")
    return failed(
        WRITE_DELETE,
        _TITLES[WRITE_DELETE],
        f"DELETE of {thing_id} answered {status}",
        f"delete {bubble.data_type} {thing_id} (key {marker}) by hand in the Bubble editor > Data > App data",
    )


def _remove(bubble: _Bubble, thing_id: str) -> int | None:
    try:
        return bubble.send("DELETE", bubble.url(f"/{quote(thing_id, safe='')}")).status_code
    except httpx.HTTPError:
        return None


# -- reading Bubble's answers --------------------------------------------------------------------------------


def email_of(thing: dict[str, Any]) -> str | None:
    """A user's email as a GET returns it: under authentication.email.email (manual), else a plain field."""
    builtin = (thing.get("authentication") or {}).get("email", {})
    email = builtin.get("email") if isinstance(builtin, dict) else None
    if isinstance(email, str):
        return email
    plain = thing.get("email")
    return plain if isinstance(plain, str) else None


def search_results(answer: httpx.Response) -> list[dict[str, Any]]:
    """The things a search answered (its `response.results`); none when the answer is not one."""
    try:
        results = answer.json()["response"]["results"]
    except (ValueError, KeyError, TypeError):
        return []
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _created_id(answer: httpx.Response) -> str | None:
    if answer.status_code not in (200, 201):
        return None
    try:
        thing_id = answer.json().get("id")
    except (ValueError, AttributeError):
        return None
    return thing_id if isinstance(thing_id, str) and thing_id else None


def _code(answer: httpx.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    inner = body.get("body", body) if isinstance(body, dict) else {}
    code = inner.get("status") if isinstance(inner, dict) else None
    return code if isinstance(code, str) else None


def bubble_said(answer: httpx.Response) -> str:
    """What Bubble said, in one short line: its envelope's code and message, a 401's translation, or text."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text.strip()[:200] or "(no body)"
    if isinstance(body, dict):
        inner = body.get("body", body)
        if isinstance(inner, dict):
            parts = [inner.get("status"), inner.get("message") or inner.get("translation")]
            said = " ".join(str(p) for p in parts if p)
            if said:
                return said[:200]
    return json.dumps(body)[:200]


def _no_token(ctx: Context) -> CheckResult:
    export = f'export {TOKEN_ENV}="$(pulumi config get {TOKEN_KEY} --stack {ctx.stack})"'
    if is_encrypted(ctx.stack_values.get(TOKEN_KEY)):
        return failed(
            TOKEN,
            _TITLES[TOKEN],
            f"the stack's {TOKEN_KEY} is encrypted, so preflight cannot read it, and ${TOKEN_ENV} is not set",
            f"`{export}` and run preflight again",
        )
    return failed(
        TOKEN,
        _TITLES[TOKEN],
        f"neither {TOKEN_KEY} nor ${TOKEN_ENV} is set",
        f"create an API token in the Bubble editor > Settings > API; `pulumi config set --secret "
        f"{TOKEN_KEY}` "
        f"and `{export}`",
    )


def _skip_after(check: str, why: str) -> Iterator[CheckResult]:
    """Every check after `check` (the write probe's included), skipped for the same reason."""
    ids = [c for c in _TITLES if c not in _WRITES]
    for later in ids[ids.index(check) + 1 :]:
        yield skipped(later, _TITLES[later], why)
    yield from _skip_writes(why)


def _skip_writes(why: str, writes: tuple[str, ...] = ()) -> Iterator[CheckResult]:
    for write in writes or _WRITES:
        yield skipped(write, _TITLES[write], why)

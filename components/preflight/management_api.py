"""The Management API checks: the access token that deploys the Edge Function and its secrets reaches the
project. Only when `deployEdgeFunction` is true; otherwise each is skipped saying so.

    management_api.token         a token is there: $SUPABASE_ACCESS_TOKEN (the stack's own supabaseAccessToken
                                 is encrypted, so it cannot be read here; the check says how to export it)
    management_api.functions     GET /v1/projects/{ref}/functions answers 200 (scope edge_functions:read)
    management_api.secrets       GET /v1/projects/{ref}/secrets answers 200 (scope secrets:read)
    management_api.write_scopes  always skipped: only a write proves edge_functions:write and secrets:write

The token and the base URL are resolved as the providers resolve them (components/providers/
management_api.py): `managementApiUrl`, else $SUPABASE_MANAGEMENT_API_URL, else https://api.supabase.com;
requests go through the providers' own client (`ManagementApi`), once each (no retry: a preflight says
"try again" instead of waiting a minute), with a short timeout. Read-only: GETs only, `--write-probe` or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from components.preflight.checks import CheckResult, Context, failed, ok, skipped, warning
from components.providers.management_api import (
    API_URL_ENV,
    DEFAULT_API_URL,
    TOKEN_ENV,
    TOKEN_KEY,
    ManagementApi,
    ManagementApiError,
)
from components.stack_file import is_encrypted

__all__ = ["FUNCTION_SLUG", "GROUP", "SCOPES", "checks"]

GROUP = "management_api"
#: what a deploy needs (docs/configuration.md, "Deploying the Edge Function")
SCOPES = ("edge_functions:read", "edge_functions:write", "secrets:read", "secrets:write")
FUNCTION_SLUG = "bubble_sync"

TOKEN = "management_api.token"
FUNCTIONS = "management_api.functions"
SECRETS = "management_api.secrets"
WRITE_SCOPES = "management_api.write_scopes"

_TITLES = {
    TOKEN: "Management API access token",
    FUNCTIONS: "Management API: the token reads the project's Edge Functions",
    SECRETS: "Management API: the token reads the project's function secrets",
    WRITE_SCOPES: "Management API write scopes (edge_functions:write, secrets:write)",
}
_WHAT = {FUNCTIONS: "Edge Functions", SECRETS: "function secrets"}
_TOKEN_PAGE = "https://supabase.com/dashboard/account/tokens"
_ALL_SCOPES = ", ".join(SCOPES)


def checks(ctx: Context) -> Iterator[CheckResult]:
    if not ctx.config.deploy_edge_function:
        yield from _skip(
            _TITLES, "deployEdgeFunction is false: the stack deploys no Edge Function and needs no token"
        )
        return
    token = _token(ctx)
    if token is None:
        yield _no_token(ctx)
        yield from _skip(_after(TOKEN), "no access token")
        return
    ctx.add_secret(token)
    yield _token_found(ctx)
    ref = ctx.config.project_ref
    if not ref:  # required by the stack file check; kept so that a None never reaches a URL
        yield from _skip(_after(TOKEN), "projectRef is not set")
        return
    base_url = ctx.config.management_api_url or ctx.environ.get(API_URL_ENV, "").strip() or DEFAULT_API_URL
    api = ManagementApi(base_url, token, label="preflight", max_attempts=1)
    try:
        result, stop = _read(ctx, api, FUNCTIONS, f"/v1/projects/{ref}/functions", "edge_functions:read", ref)
        yield result
        if stop:
            yield from _skip(_after(FUNCTIONS), stop)
            return
        result, _stop = _read(ctx, api, SECRETS, f"/v1/projects/{ref}/secrets", "secrets:read", ref)
        yield result
    finally:
        api.close()
    yield skipped(
        WRITE_SCOPES,
        _TITLES[WRITE_SCOPES],
        "preflight does not write to the Management API, and only a write proves them; pulumi up names the "
        "scope a 403 says is missing",
    )


# -- the token -----------------------------------------------------------------------------------------------


def _token(ctx: Context) -> str | None:
    """The providers' order: the stack's supabaseAccessToken (readable only when not encrypted, which the
    config check already refuses), then $SUPABASE_ACCESS_TOKEN."""
    configured = ctx.config.supabase_access_token
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    return ctx.environ.get(TOKEN_ENV, "").strip() or None


def _stack_has_token(ctx: Context) -> bool:
    return is_encrypted(ctx.stack_values.get(TOKEN_KEY))


def _export(ctx: Context) -> str:
    return f'export {TOKEN_ENV}="$(pulumi config get {TOKEN_KEY} --stack {ctx.stack})"'


def _no_token(ctx: Context) -> CheckResult:
    if _stack_has_token(ctx):
        return failed(
            TOKEN,
            _TITLES[TOKEN],
            f"the stack's {TOKEN_KEY} is encrypted, so preflight cannot read it, and ${TOKEN_ENV} is not set",
            f"`{_export(ctx)}` and run preflight again",
        )
    return failed(
        TOKEN,
        _TITLES[TOKEN],
        f"deployEdgeFunction is true, and neither {TOKEN_KEY} nor ${TOKEN_ENV} is set",
        f"create a token at {_TOKEN_PAGE} with the scopes {_ALL_SCOPES}; then `pulumi config set --secret "
        f"{TOKEN_KEY} sbp_...` (and `{_export(ctx)}` for preflight) or export {TOKEN_ENV}; or set "
        f"deployEdgeFunction to false if you deploy the function with the Supabase CLI",
    )


def _token_found(ctx: Context) -> CheckResult:
    if _stack_has_token(ctx):
        # pulumi up uses the stack's own token before the environment's: the one checked may not be it.
        return warning(
            TOKEN,
            _TITLES[TOKEN],
            f"checking ${TOKEN_ENV}, but pulumi up uses the stack's own {TOKEN_KEY} (encrypted, not readable "
            f"here)",
            f"to check that one: `{_export(ctx)}`",
        )
    return ok(TOKEN, _TITLES[TOKEN], f"from ${TOKEN_ENV}")


# -- the reads -----------------------------------------------------------------------------------------------


def _read(
    ctx: Context, api: ManagementApi, check: str, path: str, scope: str, ref: str
) -> tuple[CheckResult, str | None]:
    """The check's result, and why the later checks cannot tell anything more (None: they can)."""
    title = _TITLES[check]
    try:
        response = api.call(
            "GET", path, action=f"GET {path}", scope=scope, ok=(200,), timeout=ctx.http_timeout
        )
    except ManagementApiError as exc:
        return _refused(check, title, exc, scope, ref, api.base_url)
    assert response is not None  # not missing_ok: a 404 raises
    return ok(check, title, _found(check, response)), None


def _found(check: str, response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        return "200"
    if check == SECRETS:
        return f"{len(body)} secrets (names only; the API never returns values)"
    ours = next((f for f in body if isinstance(f, dict) and f.get("slug") == FUNCTION_SLUG), None)
    deployed = (
        f"{FUNCTION_SLUG} deployed (version {ours.get('version')})"
        if ours
        else f"{FUNCTION_SLUG} not deployed yet"
    )
    return f"{len(body)} functions; {deployed}"


def _refused(
    check: str, title: str, exc: ManagementApiError, scope: str, ref: str, base_url: str
) -> tuple[CheckResult, str | None]:
    status = exc.status
    if status == 401:
        return failed(
            check,
            title,
            "the Management API refused the token (401): it is invalid, expired or revoked",
            f"create a token at {_TOKEN_PAGE} with the scopes {_ALL_SCOPES}, and set it "
            f"(`pulumi config set --secret {TOKEN_KEY} sbp_...` or ${TOKEN_ENV})",
        ), "the token was refused"
    if status == 403:
        return failed(
            check,
            title,
            f"the token may not read the {_WHAT[check]} of project {ref} (403): it lacks the scope "
            f"{scope} or access to the project",
            f"use a token with access to project {ref} and the scopes {_ALL_SCOPES}",
        ), None  # the other read needs another scope: it still says something
    if status == 404:
        return failed(
            check,
            title,
            f"no project {ref} for this token (404)",
            "check projectRef (the 20 letters in https://<ref>.supabase.co), and that the token's account "
            "is a member of the project's organization",
        ), "the project was not found"
    if status == 429:
        return failed(
            check,
            title,
            "rate limited (429): the Management API allows 60 requests a minute per user, other tools "
            "included",
            "wait a minute and run preflight again",
        ), "rate limited"
    if status is None or status >= 500:
        # No answer: the client's message ends with the transport error ("... attempts: ConnectError: ...").
        cause = f"HTTP {status}" if status else str(exc).rpartition("attempts: ")[2]
        return failed(
            check,
            title,
            f"Supabase's Management API at {base_url} is unreachable ({cause})",
            f"try again in a few minutes (https://status.supabase.com); if managementApiUrl or "
            f"${API_URL_ENV} is set, check it",
        ), "the Management API is unreachable"
    return failed(check, title, str(exc), f"check the token's scopes ({_ALL_SCOPES}) and projectRef"), None


def _after(check: str) -> dict[str, str]:
    """The titles of the checks that come after `check`."""
    ids = list(_TITLES)
    return {c: _TITLES[c] for c in ids[ids.index(check) + 1 :]}


def _skip(titles: dict[str, str], why: str) -> Iterator[CheckResult]:
    for check, title in titles.items():
        yield skipped(check, title, why)

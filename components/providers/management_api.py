"""A small client for the Supabase Management API, shared by the Edge Function and function-secrets providers.

Where it points and how it authenticates, resolved when a provider method runs (never at import, never
stored in resource inputs, outputs or the pickled provider):

* base URL: stack config `bubble-sync:managementApiUrl`, else the environment variable
  `SUPABASE_MANAGEMENT_API_URL`, else `https://api.supabase.com` (tests point it at a local double);
* access token: stack config `bubble-sync:supabaseAccessToken` (secret), else `SUPABASE_ACCESS_TOKEN`
  (the variable the Supabase CLI reads), sent as `Authorization: Bearer <token>`.

The API's limits (supabase-facts §4.2): 60 requests per minute per user; past that every call is blocked
for a minute with 429. A 429 waits for `Retry-After` seconds (60 when absent) and tries again, a bounded
number of times; 502/503/504 and network errors are retried after a short pause. Every wait goes through
an injectable `sleep`, so tests do not wait. 401, 402 and 403 become errors that name the cause. No error
message ever contains the access token, and callers pass their secret values to be masked as well.
"""

from __future__ import annotations

import email.utils
import functools
import os
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pulumi.dynamic import ConfigureRequest, ResourceProvider

from components.providers._base import ProviderError

__all__ = [
    "API_URL_ENV",
    "API_URL_KEY",
    "DEFAULT_API_URL",
    "TOKEN_ENV",
    "TOKEN_KEY",
    "ManagementApi",
    "ManagementApiError",
    "ManagementApiProvider",
    "retry_after_seconds",
]

CONFIG_NAMESPACE = "bubble-sync"
API_URL_KEY = "managementApiUrl"
TOKEN_KEY = "supabaseAccessToken"
API_URL_ENV = "SUPABASE_MANAGEMENT_API_URL"
TOKEN_ENV = "SUPABASE_ACCESS_TOKEN"
DEFAULT_API_URL = "https://api.supabase.com"
USER_AGENT = "bubble-sync-pulumi"

#: attempts per request, the first included (429s and transient failures share the budget)
MAX_ATTEMPTS = 4
#: the API blocks every call "for the next minute" after a 429
DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 300.0
#: pause before retrying a 502/503/504 or a network error: 2 s, 4 s, 8 s ...
TRANSIENT_BACKOFF = 2.0
TRANSIENT_STATUSES = (502, 503, 504)
# A deploy bundles server-side; give it time.
TIMEOUT = httpx.Timeout(120.0, connect=15.0)
MAX_SERVER_MESSAGE = 500

_TOKEN_HELP = (
    f"set `{CONFIG_NAMESPACE}:{TOKEN_KEY}` (pulumi config set --secret {TOKEN_KEY} sbp_...) or the "
    f"environment variable {TOKEN_ENV}; create a token at https://supabase.com/dashboard/account/tokens"
)
_PRIVATE_STATE = ("_api_url", "_token", "sleep", "transport")


class ManagementApiError(ProviderError):
    """A Management API call failed. The message names the resource, the action and the cause (status and
    the server's message), never the access token or a secret value. `status` is the HTTP status, or None
    when no response arrived."""

    def __init__(self, message: str, *, resource: str, status: int | None = None) -> None:
        super().__init__(message, resource=resource)
        self.status = status


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); 60 when absent or
    unreadable; at most 300."""
    if value is None or not value.strip():
        return DEFAULT_RETRY_AFTER
    text = value.strip()
    seconds: float
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class ManagementApi:
    """One provider call's connection to the API. `label` names the resource in messages; `masked` are
    strings (secret values) that must never appear in one; the token is always masked."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        label: str,
        masked: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = label
        self._sleep = sleep
        self._max_attempts = max(1, max_attempts)
        self._masked = sorted({s for s in (token, *masked) if s}, key=len, reverse=True)
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=TIMEOUT,
            verify=_ssl_context(),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        action: str,
        scope: str,
        ok: tuple[int, ...],
        missing_ok: bool = False,
        **request: Any,
    ) -> httpx.Response | None:
        """Sends the request (retrying 429 and transient failures) and returns the response when its status
        is in `ok`; None for a 404 when `missing_ok`. Anything else raises `ManagementApiError`.

        `scope` is the token scope the operation needs (the spec's `x-oauth-scope`), for the 403 message.
        `request` goes to httpx (`params`, `json`, `data`, `files`)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.request(method, path, **request)
            except httpx.TransportError as exc:
                if attempt < self._max_attempts:
                    self._sleep(TRANSIENT_BACKOFF * 2 ** (attempt - 1))
                    continue
                raise self._error(
                    action,
                    f"cannot reach the Management API at {self.base_url} after {attempt} attempts: "
                    f"{type(exc).__name__}: {self._mask(str(exc))}",
                    None,
                ) from None
            status = response.status_code
            if status in ok:
                return response
            if status == 404 and missing_ok:
                return None
            if status == 429 and attempt < self._max_attempts:
                self._sleep(retry_after_seconds(response.headers.get("Retry-After")))
                continue
            if status in TRANSIENT_STATUSES and attempt < self._max_attempts:
                self._sleep(TRANSIENT_BACKOFF * 2 ** (attempt - 1))
                continue
            raise self._error(action, self._explain(response, scope, attempt), status)

    # -- messages -------------------------------------------------------------------------------------------

    def _explain(self, response: httpx.Response, scope: str, attempts: int) -> str:
        status = response.status_code
        server = self._server_message(response)
        said = f"; the API said: {server}" if server else ""
        if status == 401:
            return (
                f"the Management API rejected the access token (401 Unauthorized): it is invalid, expired "
                f"or revoked. {_TOKEN_HELP[0].upper()}{_TOKEN_HELP[1:]}"
            )
        if status == 402:
            return (
                f"the organization's plan does not allow this (402 Payment Required, e.g. \"Maximum number "
                f'of functions reached for Plan"): delete an unused Edge Function or upgrade the plan{said}'
            )
        if status == 403:
            return (
                f"the access token is not allowed to do this (403 Forbidden): it lacks the scope {scope!r} "
                f"or access to this project (a scoped token must include the project and {scope}){said}"
            )
        if status == 429:
            return (
                f"rate limited (429 Too Many Requests) {attempts} times in a row: the Management API allows "
                f"60 requests per minute per user and blocks every call for a minute once that is exceeded "
                f"(other tools using the same account count too); wait and run again{said}"
            )
        reason = response.reason_phrase or "error"
        return f"HTTP {status} {reason}{said}"

    def _server_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            text = response.text
        else:
            text = ""
            if isinstance(body, Mapping):
                for key in ("message", "error", "msg"):
                    if isinstance(body.get(key), str) and body[key]:
                        text = body[key]
                        break
            if not text:
                text = response.text
        text = " ".join(self._mask(text).split())
        if len(text) > MAX_SERVER_MESSAGE:
            text = text[:MAX_SERVER_MESSAGE] + "..."
        return text

    def _mask(self, text: str) -> str:
        for secret in self._masked:
            text = text.replace(secret, "[redacted]")
        return text

    def _error(self, action: str, cause: str, status: int | None) -> ManagementApiError:
        return ManagementApiError(
            f"{self.label}: {action} failed: {cause}", resource=self.label, status=status
        )


class ManagementApiProvider(ResourceProvider):
    """Base class of the providers that talk to the Management API: resolves the base URL and the token in
    `configure` or from the environment at call time, keeps both out of the pickle, and hands each call a
    `ManagementApi` (closed afterwards).

    Tests may set `sleep` (records instead of waiting) and `transport` (an `httpx.MockTransport`) on an
    instance; neither is pickled either."""

    #: what the resource is, for messages ("Edge Function", "function secrets")
    kind: ClassVar[str] = "Management API resource"
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    transport: httpx.BaseTransport | None = None

    def __init__(self) -> None:
        super().__init__()
        self._api_url: str | None = None
        self._token: str | None = None

    def configure(self, req: ConfigureRequest) -> None:
        """Reads `bubble-sync:managementApiUrl` and `bubble-sync:supabaseAccessToken` from the stack config
        the engine passes (secrets decrypted). Missing values fall back to the environment at call time,
        so `check` and `diff` work without a token."""
        self._api_url = _text(req.config.get(f"{CONFIG_NAMESPACE}:{API_URL_KEY}"))
        self._token = _text(req.config.get(f"{CONFIG_NAMESPACE}:{TOKEN_KEY}"))

    def __getstate__(self) -> dict[str, Any]:
        # Never pickle the token (or a test's sleep/transport) into the Pulumi state.
        state = dict(self.__dict__)
        for key in _PRIVATE_STATE:
            state.pop(key, None)
        state["_api_url"] = None
        state["_token"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def api_url(self) -> str:
        return (self._api_url or _text(os.environ.get(API_URL_ENV)) or DEFAULT_API_URL).rstrip("/")

    def label(self, what: str) -> str:
        return f"{self.kind} {what}"

    @contextmanager
    def api(self, what: str, *, masked: Iterable[str] = ()) -> Iterator[ManagementApi]:
        """A client for one provider call on resource `what` (for messages)."""
        label = self.label(what)
        token = self._token or _text(os.environ.get(TOKEN_ENV))
        if not token:
            raise ManagementApiError(
                f"{label}: no Supabase access token for the Management API: {_TOKEN_HELP}",
                resource=label,
            )
        client = ManagementApi(
            self.api_url(), token, label=label, masked=masked, sleep=self.sleep, transport=self.transport
        )
        try:
            yield client
        finally:
            client.close()

    def fail(self, what: str, message: str) -> ManagementApiError:
        """A `ManagementApiError` for a problem the provider found itself."""
        label = self.label(what)
        return ManagementApiError(f"{label}: {message}", resource=label)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process (it costs ~50 ms)."""
    return httpx.create_ssl_context()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None

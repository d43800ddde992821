"""The stack config keys that say where the stack's services are: `projectRef` and the URLs (`supabaseUrl`,
`managementApiUrl`, `bubbleBaseUrl`, the secret `alertWebhookUrl`). A URL in a message is shown without its
query or credentials (components/url_secrets.py); the webhook URL, itself a secret, is never shown.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from components import url_secrets
from components.config_reader import KeyReader
from components.stack_config import Secret

__all__ = ["UrlKeys"]

# the hosts where plain http is allowed (local doubles and receivers)
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_PROJECT_REF = re.compile(r"^[a-z]{20}$")


class UrlKeys(KeyReader):
    """The reads of projectRef and the URL keys, for the loader (components/config.py)."""

    def _project_ref(self) -> str | None:
        value = self._raw("projectRef")
        if value is None:
            if not self._for_sql:
                self._problem("projectRef", "is required: the 20 lowercase letters in <ref>.supabase.co")
            return None
        if not _PROJECT_REF.match(value):
            self._problem(
                "projectRef",
                f"must be exactly 20 lowercase letters (a-z), got {value!r} ({len(value)} characters)",
            )
            return None
        return value

    def _http_url(self, key: str, value: str) -> SplitResult | None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self._problem(key, f"must be an http(s) URL with a host, got {url_secrets.shown(value)!r}")
            return None
        if parts.query or parts.fragment or parts.username or parts.password:
            self._problem(
                key, f"must not contain credentials, a query or a fragment, got {url_secrets.shown(value)!r}"
            )
            return None
        return parts

    def _supabase_url(self, project_ref: str | None) -> str | None:
        value = self._raw("supabaseUrl")
        if value is None:
            return f"https://{project_ref}.supabase.co" if project_ref else None
        parts = self._http_url("supabaseUrl", value)
        if parts is None:
            return None
        if parts.path.rstrip("/"):
            self._problem(
                "supabaseUrl",
                f"must be the project's base URL without a path, got {url_secrets.shown(value)!r}",
            )
            return None
        return value.rstrip("/")

    def _management_api_url(self) -> str | None:
        key = "managementApiUrl"
        value = self._raw(key)
        if value is None:
            return None
        parts = self._http_url(key, value)
        if parts is None:
            return None
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            self._problem(
                key, f"must use https (http only for a local test double), got {url_secrets.shown(value)!r}"
            )
            return None
        if parts.path.rstrip("/"):
            self._problem(
                key,
                "must be the API's base URL without a path (like https://api.supabase.com), "
                f"got {url_secrets.shown(value)!r}",
            )
            return None
        return value.rstrip("/")

    def _webhook_url(self, key: str) -> Secret | None:
        """An optional secret URL (a Slack webhook's path is its credential): http(s) with a host, https but
        on loopback (a local receiver). Errors never show any part of it."""
        value = self._secret_text(key, required=False)
        if value is None:
            return None
        try:
            parts = urlsplit(value.strip())
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            self._problem(key, "must be an http(s) URL with a host (the value is not shown: it is a secret)")
            return None
        if parts.scheme != "https" and host not in _LOOPBACK:
            self._problem(key, "must use https (http only for a local receiver); the value is not shown")
            return None
        return self._wrap_secret(key, value.strip()) if self._wrap_secret else value.strip()

    def _bubble_base_url(self) -> str | None:
        key = "bubbleBaseUrl"
        value = self._raw(key)
        if value is None:
            if not self._for_sql:
                self._problem(
                    key, "is required: https://<app>.bubbleapps.io/api/1.1 or .../version-test/api/1.1"
                )
            return None
        parts = self._http_url(key, value)
        if parts is None:
            return None
        if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
            self._problem(
                key, f"must use https (http only for a local Bubble double), got {url_secrets.shown(value)!r}"
            )
            return None
        if parts.path.rstrip("/") not in ("/api/1.1", "/version-test/api/1.1"):
            self._problem(
                key,
                "must end in /api/1.1 (live) or /version-test/api/1.1 (development), "
                f"got {url_secrets.shown(value)!r}",
            )
            return None
        return value.rstrip("/")

"""Where Bubble is and how fast reconcile may ask it: `resolve_settings` reads the stack file (with --stack)
or the flags, as preflight reads the stack: Bubble's base URL from `bubbleBaseUrl` (or --bubble-url), the
token from $BUBBLE_API_TOKEN (the stack's bubbleApiToken is encrypted, so it cannot be read here), the rate
limit from `bubbleRateLimitPerMinute` (or --rate-limit-per-minute; its default without a stack) and
reconcile's share of it from `reconcileRatePercent` (default 20)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from components.config import KEYS, ConfigError
from components.operator.reconcile.base import ReconcileError
from components.stack_file import load_stack_config, read_stack_values

__all__ = [
    "RATE_LIMIT_KEY",
    "SHARE_KEY",
    "TOKEN_ENV",
    "BubbleSettings",
    "resolve_settings",
]

TOKEN_ENV = "BUBBLE_API_TOKEN"
RATE_LIMIT_KEY = "bubbleRateLimitPerMinute"
SHARE_KEY = "reconcileRatePercent"
_DEFAULTS = {spec.name: spec.default for spec in KEYS}
#: a search answers up to 100 whole things: longer than a create, and reconcile is not held to a lease
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class BubbleSettings:
    """Bubble as reconcile sees it. `token` is a secret: never printed."""

    base_url: str
    token: str
    #: the app's limit, shared by every worker (0: unpaced)
    rate_limit_per_minute: int
    #: reconcile's part of it, in percent: the live sync keeps the rest
    share_percent: int
    timeout_seconds: float = TIMEOUT_SECONDS

    @property
    def per_minute(self) -> float:
        """The most requests a minute reconcile sends (0: unpaced, as the stack is)."""
        return self.rate_limit_per_minute * self.share_percent / 100

    def describe(self) -> str:
        if self.rate_limit_per_minute == 0:
            return f"{self.base_url} (unpaced: bubbleRateLimitPerMinute is 0; Bubble's 429s pace it)"
        return (
            f"{self.base_url} (at most {self.share_percent} % of {self.rate_limit_per_minute:,} "
            f"requests/min: {self.per_minute:,.0f}/min, through the gate the sync uses)"
        )


def resolve_settings(
    *,
    stack: str | None,
    project_dir: Path,
    bubble_url: str | None,
    rate_limit_per_minute: int | None,
    environ: Mapping[str, str] | None = None,
) -> BubbleSettings:
    """Raises ReconcileError naming what is missing."""
    env = os.environ if environ is None else environ
    values: Mapping[str, object] = {}
    base_url = bubble_url
    if stack is not None:
        stack_file = project_dir / f"Pulumi.{stack}.yaml"
        try:
            config = load_stack_config(stack_file)  # validates reconcileRatePercent's range too
            values = read_stack_values(stack_file)
        except (ConfigError, OSError) as exc:
            raise ReconcileError(f"stack {stack}: {exc}") from None
        base_url = bubble_url or config.bubble_base_url
    if not base_url:
        raise ReconcileError(
            "give Bubble's Data API root with --bubble-url (or --stack NAME: its bubbleBaseUrl)"
        )
    base_url = _checked_url(base_url)
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        how = f'`export {TOKEN_ENV}="$(pulumi config get bubbleApiToken --stack {stack or "<stack>"})"`'
        raise ReconcileError(f"no Bubble API token: set ${TOKEN_ENV} ({how})")
    limit = rate_limit_per_minute
    if limit is None:
        limit = int(str(values.get(RATE_LIMIT_KEY) or _DEFAULTS[RATE_LIMIT_KEY]))
    if limit < 0:
        raise ReconcileError(f"--rate-limit-per-minute {limit}: must be 0 (unpaced) or more")
    share = int(str(values.get(SHARE_KEY) or _DEFAULTS[SHARE_KEY]))
    return BubbleSettings(base_url=base_url, token=token, rate_limit_per_minute=limit, share_percent=share)


def _checked_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ReconcileError(
            f"--bubble-url {url!r}: give the Data API root, https://<app>.bubbleapps.io/api/1.1 (or "
            ".../version-test/api/1.1)"
        )
    return url.strip().rstrip("/")

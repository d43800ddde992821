"""Reading a stack config key's raw value as a type, each problem recorded against the key.

`KeyReader` holds the getter, the secret handling and the problems found so far; the key groups with rules of
their own (components/config_urls.py, components/config_database.py) and the loader in components/config.py
build on it. Every default and integer range comes from `KEYS` (components/config_keys.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from components.config_keys import KEYS
from components.config_problem import ConfigProblem
from components.cron_schedule import validate_schedule
from components.stack_config import Secret

__all__ = ["KEY_DEFAULTS", "KEY_RANGES", "KeyReader"]

KEY_DEFAULTS = {spec.name: spec.default for spec in KEYS}
KEY_RANGES: dict[str, tuple[int, int]] = {spec.name: spec.range for spec in KEYS if spec.range is not None}


class KeyReader:
    """The problems of one stack's config, and the typed reads of its keys that record them. The methods are
    for the loader and its key groups (subclasses), not for callers of `load_config`."""

    def __init__(
        self,
        get: Callable[[str], object],
        is_secret: Callable[[str], bool] | None,
        wrap_secret: Callable[[str, str], Secret] | None,
        env: Mapping[str, str],
        for_sql: bool,
    ) -> None:
        self._get = get
        self._is_secret = is_secret
        self._wrap_secret = wrap_secret
        self._env = env
        self._for_sql = for_sql
        self.problems: list[ConfigProblem] = []

    # -- reading a key -----------------------------------------------------------------------------------

    def _problem(self, key: str, reason: str) -> None:
        self.problems.append(ConfigProblem(key, reason))

    def _problem_for(self, key: str) -> bool:
        return any(p.key == key for p in self.problems)

    def _raw(self, key: str) -> str | None:
        """The key's value, or its default when unset or ""; None when neither is there."""
        value = self._get(key)
        text = "" if value is None else str(value)
        if not text:
            default = KEY_DEFAULTS[key]
            text = (
                "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
            )
        return text or None

    def _string(self, key: str, *, pattern: re.Pattern[str], what: str) -> str | None:
        value = self._raw(key)
        if value is None:
            self._problem(key, "is required")
        elif not pattern.match(value):
            self._problem(key, f"must be {what}, got {value!r}")
        return value

    def _int(self, key: str) -> int | None:
        value = self._raw(key)
        low, high = KEY_RANGES[key]
        if value is None:
            self._problem(key, f"is required (an integer from {low} to {high})")
            return None
        if not re.fullmatch(r"-?\d+", value.strip()):
            self._problem(key, f"must be an integer from {low} to {high}, got {value!r}")
            return None
        number = int(value)
        if not low <= number <= high:
            self._problem(key, f"must be from {low} to {high}, got {number}")
            return None
        return number

    def _bool(self, key: str) -> bool | None:
        value = (self._raw(key) or "").lower()
        if value not in ("true", "false"):
            self._problem(key, f"must be true or false, got {value!r}")
            return None
        return value == "true"

    def _choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self._raw(key)
        if value not in choices:
            self._problem(key, f"must be one of {' | '.join(choices)}, got {value!r}")
            return None
        return value

    def _schedule(self, key: str) -> str | None:
        value = self._raw(key)
        if value is None:
            self._problem(key, "is required (a cron schedule)")
            return None
        reason = validate_schedule(value)
        if reason:
            self._problem(key, f"invalid schedule: {reason}")
            return None
        return value.strip()

    def _secret_text(self, key: str, *, required: bool) -> str | None:
        """A secret's plain text for validation, after the presence and encryption checks."""
        value = self._raw(key)
        command = f"`pulumi config set --secret {key} <value>`"
        if value is None:
            if required and not self._for_sql:
                self._problem(key, f"is required (a secret): run {command}")
            return None
        if self._is_secret is not None and not self._is_secret(key):
            self._problem(
                key,
                f"is stored in plain text but is a secret: run {command}, and rotate the value "
                f"(the plain text is in Pulumi.<stack>.yaml and its history)",
            )
            return None
        return value

    def _secret(self, key: str, *, required: bool) -> Secret | None:
        value = self._secret_text(key, required=required)
        if value is None:
            return None
        if not value.strip():
            self._problem(key, "is blank")
            return None
        return self._wrap_secret(key, value) if self._wrap_secret else value

"""One problem of the stack configuration (`ConfigProblem`: the key, or the path inside a structured key such
as `mappings[1].fields.host_id.ref`, and why), and the "did you mean" hint for a misspelt key.

Its own module so that the modules validating parts of the config (components/mapping_config.py) and the one
gathering every problem into a `ConfigError` (components/config.py) can both use it without importing each
other. Pure Python: nothing happens at import.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from components.config_keys import PROJECT

__all__ = ["ConfigProblem", "did_you_mean"]


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{PROJECT}:{self.key}: {self.reason}"


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """` (did you mean <known key>?)` for the known key `key` most resembles, or "" when none does."""
    candidates = sorted(known)
    close = difflib.get_close_matches(key, candidates, n=1)
    if not close:
        close = [k for k in candidates if k.lower() == key.lower()]
    return f" (did you mean {close[0]}?)" if close else ""

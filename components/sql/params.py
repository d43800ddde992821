"""The parameters of the SQL templates under `sql/` (the `{{ name }}` markers components/sql/templates.py
fills in): which stack config key sets each, their defaults, and a stack's values.

`KEY_PARAMS` is the one place a parameter is tied to its key (components/config_keys.py `KEYS`), with the
unit that turns the key's number into the parameter's interval. `DEFAULT_PARAMS` takes those parameters
from their keys' defaults, so each number is written once, in `KEYS`; the parameters no key sets are written
here, each with its reason. `sql_params(config)` takes the same parameters from a stack's config.

Pure Python: no Pulumi, no database, nothing happens at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from components.config_keys import KEYS

if TYPE_CHECKING:
    from components.config import StackConfig

__all__ = ["DEFAULT_PARAMS", "KEY_PARAMS", "KeyParam", "key_params", "sql_params"]


@dataclass(frozen=True)
class KeyParam:
    """A template parameter a stack config key sets. `unit`: the parameter is an interval and the key a
    number of these (`retryHorizonHours` 24 -> `interval '1 days'`); None: the key's value as it is."""

    key: str
    unit: Literal["days", "hours", "minutes", "seconds"] | None = None

    def value(self, key_value: object) -> object:
        """The parameter's value when its key holds `key_value`."""
        if self.unit is None:
            return key_value
        return timedelta(**{self.unit: key_value})  # type: ignore[arg-type]  # an integer key


#: parameter -> the stack config key that sets it
KEY_PARAMS: Mapping[str, KeyParam] = {
    "default_max_retries": KeyParam("maxRetries"),
    "retry_horizon": KeyParam("retryHorizonHours", "hours"),
    "lease_seconds": KeyParam("leaseSeconds"),
    "http_timeout_ms": KeyParam("httpTimeoutMs"),
    "breaker_failures": KeyParam("bubbleBreakerFailures"),
    "probe_interval": KeyParam("bubbleProbeSeconds", "seconds"),
    "run_details_retention": KeyParam("runDetailsRetentionDays", "days"),
    "completed_retention": KeyParam("completedRetentionDays", "days"),
    "processor_schedule": KeyParam("processorSchedule"),
    "retry_schedule": KeyParam("retrySchedule"),
    "purge_schedule": KeyParam("maintenanceSchedule"),
    "verify_schedule": KeyParam("verifySchedule"),
    "alert_after": KeyParam("alertAfterMinutes", "minutes"),
    "alert_backlog": KeyParam("alertBacklogMinutes", "minutes"),
}


def key_params(value_of: Callable[[str], object]) -> dict[str, object]:
    """Every parameter of `KEY_PARAMS`, from `value_of(key)`: the value its key holds."""
    return {name: param.value(value_of(param.key)) for name, param in KEY_PARAMS.items()}


_KEY_DEFAULTS = {spec.name: spec.default for spec in KEYS}

# The values the SQL was designed around; every placeholder in sql/ has one. Those a key sets are its
# default (KEYS says why); stack config overrides them.
DEFAULT_PARAMS: Mapping[str, object] = {
    **key_params(_KEY_DEFAULTS.__getitem__),
    "backoff_base_seconds": 30,
    "backoff_cap_seconds": 3600,
    "dispatch_rewake_after": timedelta(seconds=30),  # an unconsumed wake this old counts as lost
    # the alerts are evaluated every minute: a change is told within a minute of being true
    "alert_schedule": "* * * * *",
    # the stack named in the commands an alert says to run (render-sql and `pulumi up` know it)
    "stack_name": "<stack>",
}


def sql_params(config: StackConfig, stack: str | None = None) -> dict[str, object]:
    """The template parameters of a stack: the defaults, with each key's parameter from the stack's config
    (`stack`: its name, for the commands an alert says to run; None: the default placeholder)."""
    named = {"stack_name": stack} if stack else {}
    return {**DEFAULT_PARAMS, **key_params(config.value_of), **named}

"""bubble-sync's errors have one root and a few kinds (components/errors.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import components
from components.config import ConfigError
from components.connection import ConnectionConfigError
from components.errors import BubbleSyncError, SettingsError, SourceError
from components.operator import OperatorError
from components.providers import ProviderError
from components.providers.edge_function import FunctionSourceError
from components.providers.function_definition import DefinitionError
from components.providers.management_api import ManagementApiError


def _our_exception_classes() -> list[type[BaseException]]:
    classes = []
    for module in pkgutil.walk_packages(components.__path__, "components."):
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if cls.__module__.startswith("components.") and issubclass(cls, BaseException):
                classes.append(cls)
    return sorted(set(classes), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_every_error_of_ours_has_the_one_root() -> None:
    strays = [
        f"{c.__module__}.{c.__qualname__}"
        for c in _our_exception_classes()
        if not issubclass(c, BubbleSyncError)
    ]
    assert strays == []


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConfigError, SettingsError),
        (ConnectionConfigError, SettingsError),
        (DefinitionError, SourceError),
        (FunctionSourceError, SourceError),
        (ManagementApiError, ProviderError),
        (OperatorError, BubbleSyncError),
    ],
)
def test_each_error_is_of_its_kind(error: type[BubbleSyncError], kind: type[BubbleSyncError]) -> None:
    assert issubclass(error, kind)


def test_settings_and_source_errors_are_still_value_errors_and_config_errors_run_errors() -> None:
    # Callers that caught ValueError before keep working; `pulumi up` prints a RunError without a traceback.
    import pulumi

    assert issubclass(SettingsError, ValueError) and issubclass(SourceError, ValueError)
    assert issubclass(ConfigError, pulumi.RunError)

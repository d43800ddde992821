"""What every PostgreSQL-backed dynamic provider shares: where the connection comes from, how a session
is opened and closed, how database errors are reported, and how `diff` treats unknown values.

The provider object is pickled with dill into the Pulumi state and unpickled in the dynamic-provider
process, which then calls `configure`. So the object holds no connection and no credential when it is
pickled: the URL is resolved in `configure` (or from the environment at call time) and `__getstate__`
leaves it out even if `configure` already ran in this process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pulumi.dynamic import ConfigureRequest, ResourceProvider
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN as RPC_UNKNOWN

from components.connection import CONFIG_NAMESPACE, ConnectionConfigError, database_url, database_url_from_env
from components.errors import BubbleSyncError
from components.url_secrets import spellings

__all__ = [
    "APPLICATION_NAME",
    "PostgresProvider",
    "ProviderError",
    "changed",
    "inputs_of",
    "is_unknown",
]

APPLICATION_NAME = "bubble-sync-pulumi"
CONNECT_TIMEOUT_SECONDS = 15
# DDL on a busy queue waits for its lock and makes every later query on the table wait behind it;
# give up instead of stalling the pipeline for long.
LOCK_TIMEOUT = "15s"

_PRIVATE_STATE = ("_database_url", "_config_error")


class ProviderError(BubbleSyncError):
    """A provider operation failed. The message names the resource and, for database errors, the SQLSTATE
    and the server's message; never statement parameters, secret values or the connection password."""

    def __init__(self, message: str, *, resource: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.resource = resource
        self.sqlstate = sqlstate


def is_unknown(value: Any) -> bool:
    """True when a value (or anything inside it) is not known yet: `preview` passes unresolved inputs to
    `check` and `diff` as `pulumi.output.Unknown` (or the RPC sentinel string)."""
    if isinstance(value, Unknown) or (isinstance(value, str) and value == RPC_UNKNOWN):
        return True
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_unknown(v) for v in value)
    return False


def changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """The keys whose new value is unknown or differs from the old one."""
    return [k for k in keys if is_unknown(news.get(k)) or olds.get(k) != news.get(k)]


def inputs_of(props: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The resource's own inputs from a property bag (drops `__provider` and anything unknown to us)."""
    return {k: props[k] for k in keys if k in props}


class PostgresProvider(ResourceProvider):
    """Base class: connection handling and error reporting for providers that talk to the database."""

    #: what the resource is, for messages ("cron job", "Vault secret", ...)
    kind: ClassVar[str] = "database object"

    def __init__(self) -> None:
        super().__init__()
        self._database_url: str | None = None
        self._config_error: str | None = None

    # -- configuration -------------------------------------------------------------------------------------

    def configure(self, req: ConfigureRequest) -> None:
        """Resolves the connection from the stack config the engine passes (all keys, namespaced, secrets
        decrypted), falling back to the environment. A bad or missing setting is reported by the first
        operation that needs the database, so `check` still works without one."""

        def get(key: str) -> Any:
            return req.config.get(f"{CONFIG_NAMESPACE}:{key}")

        try:
            self._database_url = database_url(get)
            self._config_error = None
        except ConnectionConfigError as exc:
            self._database_url = None
            self._config_error = str(exc)

    def __getstate__(self) -> dict[str, Any]:
        # Never pickle the resolved URL (it holds the password) into the Pulumi state.
        state = dict(self.__dict__)
        for key in _PRIVATE_STATE:
            state[key] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _resolve_url(self) -> str:
        if self._database_url:
            return self._database_url
        if self._config_error:
            raise ConnectionConfigError(self._config_error)
        return database_url_from_env()

    # -- sessions -------------------------------------------------------------------------------------------

    @contextmanager
    def session(
        self, resource: str, action: str, *, transaction: bool = False, secrets: Sequence[str] = ()
    ) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one provider call, closed afterwards. With `transaction=True` everything inside
        commits together or not at all. Database errors become `ProviderError`s naming `resource` and
        `action`; any string in `secrets` (and the connection password) is masked in their text."""
        label = f"{self.kind} {resource}"
        url = self._resolve_url()
        password = _password_of(url)
        candidates = (*secrets, *(spellings(password) if password else ()))
        masked = sorted({s for s in candidates if s}, key=len, reverse=True)  # longest first
        try:
            conn = psycopg.connect(
                url,
                autocommit=True,
                prepare_threshold=None,  # no server-side prepared statements: works through Supavisor
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=APPLICATION_NAME,
            )
        except psycopg.Error as exc:
            message = f"{label}: cannot connect to the database to {action}: {_describe(exc, masked)}"
            raise ProviderError(message, resource=label, sqlstate=exc.sqlstate) from None
        try:
            with conn:
                if transaction:
                    with conn.transaction():
                        conn.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
                        yield conn
                else:
                    yield conn
        except psycopg.Error as exc:
            message = f"{label}: {action} failed: {_describe(exc, masked)}"
            raise ProviderError(message, resource=label, sqlstate=exc.sqlstate) from None

    def fail(self, resource: str, message: str) -> ProviderError:
        """A `ProviderError` for a problem found by the provider itself (not by the database)."""
        label = f"{self.kind} {resource}"
        return ProviderError(f"{label}: {message}", resource=label)


def _describe(exc: psycopg.Error, masked: Sequence[str]) -> str:
    """The server's message and SQLSTATE, without the statement, its parameters or masked strings."""
    diag = exc.diag
    text = diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if exc.sqlstate:
        text += f" (SQLSTATE {exc.sqlstate})"
    if diag.message_hint:
        text += f"; hint: {diag.message_hint}"
    for secret in masked:
        text = text.replace(secret, "[redacted]")
    return text


def _password_of(url: str) -> str | None:
    """The password psycopg connects with: libpq's reading of the connection string (which may also say
    `password=` in a query)."""
    try:
        return conninfo_to_dict(url).get("password")  # type: ignore[return-value]
    except psycopg.Error:
        return None

"""The frame every preflight check runs in: what a check reports (`CheckResult`), what it may read
(`Context`), what a group of checks is (`Group`), and `run_groups`, which runs the groups in order.

A group is a module with two names:

    GROUP = "database"                              # the id prefix of its checks, and the JSON `group`
    def checks(ctx: Context) -> Iterator[CheckResult]

`checks` yields one result per check, in the order they should print. A check that needs an earlier one
(no connection, so no extension check) yields `skipped(...)` saying why, rather than failing a second time.
Results carry the full id (`"database.connection"`); `run_groups` stamps the group and refuses an id outside
it. A group that raises is reported as one failed check (`<group>.error`), and the next group still runs.

No result may show a secret, and no group has to remember that: `run_groups` passes every title, detail and
fix through `ctx.redact`, which replaces every secret value the context knows (the environment's passwords
and tokens, and what a group registers with `ctx.add_secret`) and the password of any postgresql:// URL.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from components.url_secrets import MASK, masked, password_spellings, spellings

if TYPE_CHECKING:
    from components.config import StackConfig

__all__ = [
    "SECRET_ENV_VARS",
    "CheckResult",
    "Context",
    "Group",
    "Status",
    "failed",
    "ok",
    "run_groups",
    "skipped",
    "warning",
]

#: environment variables whose values are secrets (or URLs holding one) wherever they are read
SECRET_ENV_VARS = (
    "PGPASSWORD",
    "BUBBLE_SYNC_DATABASE_URL",
    "DATABASE_URL",
    "SUPABASE_ACCESS_TOKEN",
    "BUBBLE_API_TOKEN",
)
# A URL with a password in it, in any text (a psycopg or httpx message may quote the DSN it was given).
_URL_WITH_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/@:]*:[^\s/@]*@[^\s'\"]+", re.IGNORECASE)
# `password=...` in a keyword/value DSN (`host=... password=...`); not `PGPASSWORD=` in a command to run.
_DSN_PASSWORD = re.compile(r"(?<![A-Za-z0-9_])(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class Status(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    WARNING = "warning"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. `detail`: what was found (for a failure: what is wrong; for a skip: why);
    `fix`: what to do, for a failure (and optionally a warning). `group` is set by `run_groups`."""

    id: str
    title: str
    status: Status
    detail: str = ""
    fix: str = ""
    group: str = ""


def ok(id: str, title: str, detail: str = "") -> CheckResult:
    return CheckResult(id, title, Status.OK, detail)


def failed(id: str, title: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(id, title, Status.FAILED, detail, fix)


def warning(id: str, title: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(id, title, Status.WARNING, detail, fix)


def skipped(id: str, title: str, why: str) -> CheckResult:
    return CheckResult(id, title, Status.SKIPPED, why)


@dataclass
class Context:
    """What the checks may read. Built once by `components/preflight/stack.py` from the stack file and the
    environment; the groups never read `os.environ` themselves (tests hand them their own)."""

    stack: str
    #: where Pulumi.yaml and Pulumi.<stack>.yaml are
    project_dir: Path
    #: the stack's config, validated as `render-sql` and `status` validate it; an encrypted (`secure:`)
    #: value cannot be read here, so secret fields are None (their values come from the environment)
    config: StackConfig
    #: the stack file's own values for our keys (bare names); a `secure:` value stays a mapping
    #: (`components.stack_file.is_encrypted`)
    stack_values: Mapping[str, object]
    environ: Mapping[str, str]
    #: `--write-probe`: checks that can only prove something by writing may make one harmless write.
    #: The database and Management API checks ignore it (they are read-only either way).
    write_probe: bool = False
    #: seconds to wait for an HTTP answer, and for a database connection
    http_timeout: float = 15.0
    connect_timeout: int = 10
    #: every result so far, earlier groups' included (for a check that depends on another group's)
    results: list[CheckResult] = field(default_factory=list)
    _secrets: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        for name in SECRET_ENV_VARS:
            self.add_secret(self.environ.get(name))

    def add_secret(self, value: str | None) -> None:
        """Never show `value` in any result (a URL's password is registered with it)."""
        if not value or not value.strip():
            return
        self._secrets.add(value)
        self._secrets.add(value.strip())
        self._secrets.update(password_spellings(value.strip()))

    def redact(self, text: str) -> str:
        """`text` with every known secret and any URL's or DSN's password replaced by `***`."""
        text = _URL_WITH_PASSWORD.sub(lambda m: masked(m.group(0)), text)
        text = _DSN_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
        for secret in sorted(
            self._secrets, key=len, reverse=True
        ):  # longest first: a URL before its password
            for spelling in spellings(secret):
                text = text.replace(spelling, MASK)
        return text

    def result(self, check_id: str) -> CheckResult | None:
        """The result of an earlier check, by id."""
        return next((r for r in self.results if r.id == check_id), None)


class Group(Protocol):
    """A module of checks (see the module docstring)."""

    GROUP: str

    def checks(self, ctx: Context) -> Iterator[CheckResult]: ...


def run_groups(ctx: Context, groups: Iterable[Group]) -> list[CheckResult]:
    """Runs each group's checks in order; returns every result (also kept in `ctx.results`)."""
    for group in groups:
        results = group.checks(ctx)
        while True:
            try:
                result = _clean(ctx, next(results), group.GROUP)
            except StopIteration:
                break
            except Exception as exc:  # a bug or an unforeseen answer: report it, run the other groups
                ctx.results.append(_clean(ctx, _crashed(group.GROUP, exc), group.GROUP))
                break
            ctx.results.append(result)
    return list(ctx.results)


def _crashed(group: str, exc: Exception) -> CheckResult:
    return failed(
        f"{group}.error",
        f"{group} checks",
        f"stopped unexpectedly: {type(exc).__name__}: {exc}",
        "this is a bug in preflight (the checks listed before it did run): report it with this line",
    )


def _clean(ctx: Context, result: CheckResult, group: str) -> CheckResult:
    """The result as it may be shown: its group stamped, secrets redacted, each text on one line."""
    if not result.id.startswith(f"{group}."):
        raise ValueError(f"check id {result.id!r} is outside its group {group!r}")

    def shown(text: str) -> str:
        return " ".join(ctx.redact(text).split())

    return replace(
        result, group=group, title=shown(result.title), detail=shown(result.detail), fix=shown(result.fix)
    )

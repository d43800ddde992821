"""Background processes of the devstack: start them detached, wait for their ready line, stop them by pid.

A pid alone can be reused by an unrelated program after ours died, so every pid we record comes with
the process's start time from /proc; `down` signals a pid only while both still match.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessError", "Started", "is_alive", "spawn", "stop"]


class ProcessError(RuntimeError):
    """A devstack process did not start, did not become ready, or would not stop."""


@dataclass(frozen=True)
class Started:
    """What `down` needs to find a process again: its pid and when it started."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> Started:
        return cls(pid=pid, start_time=_start_time(pid))


def spawn(
    name: str,
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    ready_prefix: str | None = None,
    timeout: float = 30.0,
) -> tuple[subprocess.Popen[bytes], str | None]:
    """Starts `cmd` in its own session, its output appended to `log_path`. With `ready_prefix`, waits
    for the first output line starting with it and returns the rest of that line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    offset = log_path.stat().st_size if log_path.exists() else 0
    # stdout goes to the log too (not a pipe): a pipe would break once `up` exits and the process
    # later writes to it.
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # `down` signals the whole group, children included
        )
    if ready_prefix is None:
        return proc, None
    try:
        value = _wait_for_line(proc, log_path, offset, ready_prefix, timeout)
    except ProcessError as exc:
        stop(Started.of(proc.pid) if proc.poll() is None else None)
        raise ProcessError(f"{name} {exc}\n{_tail(log_path)}") from None
    return proc, value


def is_alive(started: Started) -> bool:
    try:
        return _start_time(started.pid) == started.start_time
    except (FileNotFoundError, ProcessLookupError):
        return False


def stop(started: Started | None, timeout: float = 10.0) -> None:
    """SIGTERM to the process group, then SIGKILL if it is still there after `timeout`. Raises ProcessError
    if it outlives the SIGKILL by `timeout` too (a process blocked in the kernel), rather than return as if
    it had stopped."""
    if started is None or not is_alive(started):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(started.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(started.pid)
            if not is_alive(started):
                return
            time.sleep(0.05)
    raise ProcessError(
        f"process {started.pid} is still running {timeout:.0f} s after SIGKILL"
        f" (its state is in /proc/{started.pid}/status)"
    )


def _wait_for_line(
    proc: subprocess.Popen[bytes], log_path: Path, offset: int, prefix: str, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with log_path.open("rb") as log:
            log.seek(offset)
            for raw in log.read().decode(errors="replace").splitlines():
                if raw.startswith(prefix):
                    return raw[len(prefix) :].strip()
        if proc.poll() is not None:
            raise ProcessError(f"exited with code {proc.returncode} before it was ready")
        time.sleep(0.05)
    raise ProcessError(f"was not ready after {timeout:.0f} s")


def _start_time(pid: int) -> int:
    # Field 22 of /proc/<pid>/stat, counted after the parenthesised command name (which may hold spaces).
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is a dead process that nobody has reaped yet
        raise ProcessLookupError(pid)
    return int(fields[19])


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "log tail:\n  " + "\n  ".join(text) if text else ""

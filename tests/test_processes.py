"""Stopping the devstack's processes: a process that outlives SIGKILL is reported, not taken for stopped, and
`down` still stops the other parts, then keeps the state so that it can be run again."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from devstack import processes, stack
from devstack.processes import ProcessError, Started, is_alive


def sleeping_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_stop_ends_a_process_group_with_sigterm() -> None:
    proc = sleeping_process()
    started = Started.of(proc.pid)
    processes.stop(started, timeout=5)
    assert not is_alive(started)  # gone and reaped (stop() reaps its own children)


def test_a_process_that_outlives_sigkill_is_reported_not_taken_for_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = sleeping_process()
    try:
        started = Started.of(proc.pid)
        sent: list[int] = []
        # What a process blocked in the kernel looks like from here: the signals are sent, and it stays.
        monkeypatch.setattr(processes.os, "killpg", lambda pid, sig: sent.append(sig))
        with pytest.raises(ProcessError, match=f"process {proc.pid} is still running 0 s after SIGKILL"):
            processes.stop(started, timeout=0.2)
        assert sent == [signal.SIGTERM, signal.SIGKILL] and is_alive(started)
    finally:
        proc.kill()  # os.kill: killpg is the patched one
        proc.wait(timeout=5)


def test_down_stops_the_other_parts_and_keeps_the_state_when_one_will_not_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "devstack"
    state_dir.mkdir()
    (state_dir / stack.STATE_FILE).write_text("{}")
    parts = {"pgnet_worker": Started(pid=101, start_time=1), "functions_host": Started(pid=102, start_time=2)}
    monkeypatch.setattr(stack, "load", lambda _: SimpleNamespace(processes=parts))
    stopped: list[int] = []

    def stop(started: Started) -> None:
        if started.pid == 102:
            raise ProcessError("process 102 is still running 10 s after SIGKILL")
        stopped.append(started.pid)

    monkeypatch.setattr(stack, "stop", stop)
    with pytest.raises(stack.StackError) as raised:
        stack.down(state_dir)
    message = str(raised.value)
    assert "functions_host: process 102 is still running" in message and "run `down` again" in message
    assert stopped == [101]  # the host, stopped first, would not go; the worker was stopped all the same
    assert (state_dir / stack.STATE_FILE).exists()

"""Issue 20's size rule: a .py, .ts or .sql file of the repository over 400 lines says at its top why it stays
one module ("Why one module: ..." in its docstring or top comment; "Why one file: ..." in an SQL header).

The files are those git tracks plus the untracked ones it does not ignore (as `./dev check` lists TypeScript
files), so a new long file is caught before it is committed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
#: how far down the top docstring or comment the reason must start
HEADER_LINES = 30
#: devstack/bubble_double/double.py writes "Why one module (over 400 lines):"
REASON = re.compile(r"Why one (module|file)( \([^)]*\))?:")
#: tracked and untracked-but-not-ignored sources, as `./dev`'s other_ts_files lists TypeScript files
LS_FILES = (
    "git",
    "ls-files",
    "-z",
    "--cached",
    "--others",
    "--exclude-standard",
    "--",
    "*.py",
    "*.ts",
    "*.sql",
)


def _source_files() -> list[Path]:
    try:
        listed = subprocess.run(
            LS_FILES,
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git work tree: no list of the repository's files")
    names = sorted(set(filter(None, listed.split("\0"))))
    return [ROOT / name for name in names if (ROOT / name).is_file()]  # a tracked file deleted here is gone


def test_every_module_over_400_lines_says_why_at_its_top() -> None:
    unexplained = []
    for path in _source_files():
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if len(lines) > MAX_LINES and not REASON.search("\n".join(lines[:HEADER_LINES])):
            unexplained.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert not unexplained, (
        f"over {MAX_LINES} lines without 'Why one module: ...' (SQL: 'Why one file: ...') in the first "
        f"{HEADER_LINES} lines: split it, or say in one sentence at its top why it stays one: "
        + ", ".join(unexplained)
    )

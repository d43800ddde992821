"""The documentation as a whole: the README stays an entry point, every relative link in the project's
Markdown leads to a file (and heading) of the repository, and no file points outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from components.sql.catalogue import functions
from tests.markdown_support import README, ROOT, anchors, link_targets

README_MAX_LINES = 150
DOCS = sorted((ROOT / "docs").glob("*.md"))
#: what the repository must not lean on: files outside it that a reader of the repository cannot open
OUTSIDE = ("../shared", "/work/shared", "DESIGN.md")


def _tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git work tree: no list of tracked files")
    return [ROOT / name for name in listed.split("\0") if name]


def _markdown_files() -> list[Path]:
    return sorted({README, *DOCS, *(p for p in _tracked_files() if p.suffix == ".md")})


def _broken_links(source: Path) -> list[str]:
    broken = []
    for target in link_targets(source.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = unquote(target).partition("#")
        resolved = (source.parent / path).resolve() if path else source
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target}: no heading with that anchor")
    return broken


def test_the_readme_is_an_entry_point_of_at_most_150_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/ and link it"


def test_every_doc_is_reachable_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in link_targets(README.read_text())}
    assert [doc.name for doc in DOCS if doc not in linked] == []


@pytest.mark.parametrize("source", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_of_the_repository(source: Path) -> None:
    assert _broken_links(source) == []


def test_no_file_points_outside_the_repository() -> None:
    found = []
    for path in _tracked_files():
        # This file names what it looks for.
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # a plot, not text
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{number}: {word}" for word in OUTSIDE if word in line]
    assert found == []


def test_the_docs_count_the_functions_the_stack_creates() -> None:
    said = {
        doc: re.findall(r"\b(\d+) functions\b", (ROOT / doc).read_text())
        for doc in ("docs/deploying.md", "docs/runbook.md")
    }
    assert said == {doc: [str(len(functions()))] for doc in said}

"""The project's Markdown as the tests read it: fenced code blocks (tests run the README's command blocks as
written), links and heading anchors (tests/test_docs.py checks that every relative link leads somewhere).

A fence may carry a language (```` ```mermaid ````): matching only bare fences would take such a block's
closing fence for an opening one, and every block after it would be read inside out.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_FENCED = re.compile(r"^[ \t]*```[^\n`]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def code_blocks(text: str) -> list[str]:
    """The content of every fenced code block, in order."""
    return _FENCED.findall(text)


def stack_setup_block(readme: Path = README) -> str:
    """The README's block that sets up a stack on a Supabase project (`pulumi stack init dev` ...)."""
    return next(block for block in code_blocks(readme.read_text()) if "pulumi stack init dev" in block)


def prose(text: str) -> str:
    """`text` without its fenced code blocks and inline code spans: a link shown as code is not a link."""
    return re.sub(r"`[^`\n]*`", "", _FENCED.sub("", text))


def link_targets(text: str) -> list[str]:
    """The targets of the Markdown links and images in `text`'s prose, as written."""
    return _LINK.findall(prose(text))


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives `text`'s headings: lower case, punctuation dropped (a code span's backticks
    too), spaces made hyphens, and `-1`, `-2` ... after a repeated one."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", _FENCED.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, repeats = slug, 0
        while anchor in found:
            repeats += 1
            anchor = f"{slug}-{repeats}"
        found.add(anchor)
    return found

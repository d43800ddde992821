"""The project's Markdown as the tests read it: fenced code blocks (tests run the README's command blocks as
written).

A fence may carry a language (```` ```mermaid ````): matching only bare fences would take such a block's
closing fence for an opening one, and every block after it would be read inside out.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_FENCED = re.compile(r"^[ \t]*```[^\n`]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)


def code_blocks(text: str) -> list[str]:
    """The content of every fenced code block, in order."""
    return _FENCED.findall(text)


def stack_setup_block(readme: Path = README) -> str:
    """The README's block that sets up a stack on a Supabase project (`pulumi stack init dev` ...)."""
    return next(block for block in code_blocks(readme.read_text()) if "pulumi stack init dev" in block)

"""docs/configuration-reference.md, generated from the one table of stack config keys (`config_keys.KEYS`), so
the reference says what the program validates and nothing else
(`python -m components config-reference > docs/configuration-reference.md`; tests/test_config_reference.py
fails when the committed file differs from what this renders).

Pure Python: nothing happens at import.
"""

from __future__ import annotations

import re
from pathlib import Path

from components.config_keys import KEYS, PROJECT, KeySpec
from components.function_env import MAPPINGS_ENV

__all__ = ["COMMAND", "REFERENCE_FILE", "config_reference"]

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "docs" / "configuration-reference.md"
#: what regenerates REFERENCE_FILE, from the repository root
COMMAND = ".venv/bin/python -m components config-reference > docs/configuration-reference.md"


def config_reference(keys: tuple[KeySpec, ...] = KEYS) -> str:
    """The Markdown reference of every stack config key, in table order."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from components/config_keys.py KEYS; do not edit. Regenerate with:",
        f"     {COMMAND}",
        "     tests/test_config_reference.py fails when this file differs from what that command prints. -->",
        "",
        f"Every key of a stack's config, in the project namespace `{PROJECT}`",
        f"(`pulumi config set batchSize 100` writes `{PROJECT}:batchSize`). How configuration works,",
        "validation and secrets: [configuration.md](configuration.md).",
        "",
        '- **default**: *required* when the key has none; `""` means not set.',
        "- **range**: the inclusive bounds of an integer key, checked before anything is deployed.",
        "- **secret**: the value must be stored encrypted (`pulumi config set --secret KEY`); a plain one is",
        "  refused.",
        "- **function variable**: the `bubble_sync` Edge Function's environment variable that carries the",
        "  value ([edge-function.md](edge-function.md)). A stack with `mappings` also gives the function",
        f"  `{MAPPINGS_ENV}`.",
        "",
        "| key | type | default | range | secret | function variable | description |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_row(spec) for spec in keys]
    return "\n".join(lines) + "\n"


def _row(spec: KeySpec) -> str:
    cells = [
        f"`{spec.name}`",
        f"{spec.type} of {spec.items}s" if spec.items else spec.type,
        _default(spec),
        f"{spec.range[0]}..{spec.range[1]}" if spec.range else "",
        "yes" if spec.secret else "",
        f"`{spec.env}`" if spec.env else "",
        _markdown_cell(spec.description),
    ]
    return "| " + " | ".join(cells) + " |"


def _default(spec: KeySpec) -> str:
    if spec.default is None:
        return "*required*"
    if isinstance(spec.default, bool):
        return f"`{str(spec.default).lower()}`"
    if spec.default == ():
        return "`[]`"
    if spec.default == "":
        return '`""`'
    return f"`{spec.default}`"


def _markdown_cell(text: str) -> str:
    """`text` safe in a table cell: `|` would end the cell, and outside code spans GitHub drops `<ref>` and
    the like as unknown HTML tags."""
    parts = re.split(r"(`[^`]*`)", text.replace("|", "\\|"))
    return "".join(part if part.startswith("`") else part.replace("<", "&lt;") for part in parts)

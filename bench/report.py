"""What `python -m bench` makes of its observations: each profile's figures (bench/figures.py), results.md
(bench/markdown.py), results.json (here) and the plots (bench/plots.py). The names bench/__main__.py and
the tests use are importable from here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.figures import analyse, is_outage_profile, is_plan_profile, ratios_against
from bench.markdown import markdown
from bench.plots import plot, plot_outage, plot_plans

__all__ = [
    "analyse",
    "is_outage_profile",
    "is_plan_profile",
    "markdown",
    "plot",
    "plot_outage",
    "plot_plans",
    "write_json",
]


def write_json(path: Path, results: list[dict[str, Any]], settings: dict[str, Any], command: str) -> None:
    """results.json: the command, the settings, every profile's figures and, for the profiles without an
    outage, the ratios against the seed's."""
    document = {
        "command": command,
        "settings": settings,
        "profiles": results,
        "ratios_against_seed": ratios_against([r for r in results if not is_outage_profile(r)], "seed"),
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")

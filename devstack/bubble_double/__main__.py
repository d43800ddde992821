"""`python -m devstack.bubble_double [options]`: serves the Bubble double until SIGTERM or SIGINT; the
options and behaviour are those of `devstack.bubble_double.cli.main`.
"""

from __future__ import annotations

import sys

from devstack.bubble_double.cli import main

if __name__ == "__main__":
    sys.exit(main())

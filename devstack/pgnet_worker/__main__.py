"""`python -m devstack.pgnet_worker --dsn DSN [options]`: runs the pg_net double's worker until SIGTERM; the
options are those of `devstack.pgnet_worker.cli.main`.
"""

from __future__ import annotations

from devstack.pgnet_worker.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

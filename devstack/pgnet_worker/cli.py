"""The pg_net double worker's command line (`python -m devstack.pgnet_worker`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence

from devstack.pgnet_worker.worker import NetWorker


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.pgnet_worker",
        description="Delivers the HTTP requests queued by the devstack's pg_net double (until SIGTERM).",
    )
    parser.add_argument("--dsn", required=True, help="connection string, normally the bootstrap superuser's")
    parser.add_argument(
        "--batch-size", type=int, default=200, help="pg_net.batch_size when not set in the database"
    )
    parser.add_argument("--ttl", default="6 hours", help="pg_net.ttl when not set in the database")
    parser.add_argument("--application-name", default="pg_net double worker")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry full URLs
    worker = NetWorker(
        args.dsn, batch_size=args.batch_size, ttl=args.ttl, application_name=args.application_name
    )
    asyncio.run(worker.run(retry_first_connect=True, handle_signals=True))
    return 0

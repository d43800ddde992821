"""Command line of the Bubble double: `main` parses the options of `python -m devstack.bubble_double`,
takes the token from `BUBBLE_DOUBLE_TOKEN` (or `--token`), serves until SIGTERM or SIGINT and prints
`BUBBLE_URL=...` once listening. It lives here rather than in `__main__.py` so the package can re-export
`main` without importing `__main__` (which `python -m` would then warn about).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from devstack.bubble_double.double import BubbleDouble


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.bubble_double",
        description="Serve a TEST DOUBLE of the Bubble Data API until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", help="API token; prefer the BUBBLE_DOUBLE_TOKEN environment variable")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit-per-minute", type=float, default=0.0)
    parser.add_argument("--rate-limit-burst", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    token = args.token or os.environ.get("BUBBLE_DOUBLE_TOKEN")
    if not token:
        parser.error("no token: set BUBBLE_DOUBLE_TOKEN (preferred) or pass --token")
    try:
        double = BubbleDouble(
            token=token,
            host=args.host,
            port=args.port,
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            rate_limit_per_minute=args.rate_limit_per_minute,
            rate_limit_burst=args.rate_limit_burst,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    double.start()
    try:
        print(f"BUBBLE_URL={double.url}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.2):
            pass
    finally:
        double.stop()
    return 0

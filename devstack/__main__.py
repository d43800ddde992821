"""python -m devstack up|down|status — the whole pipeline on this machine (see README)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from devstack.stack import AlreadyUp, StackError, down, status, up

DEFAULT_STATE_DIR = Path(".devstack")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up_cmd = sub.add_parser("up", help="start PostgreSQL+pg_cron, the doubles and the edge function host")
    up_cmd.add_argument(
        "--bubble-url",
        help="point the edge function at this Bubble app (e.g. https://app.bubbleapps.io/version-test/api/1.1)"
        " instead of the Bubble double; the token comes from the environment variable BUBBLE_API_TOKEN",
    )
    for cmd in (up_cmd, sub.add_parser("down", help="stop everything and remove the state"),
                sub.add_parser("status", help="show which parts are running")):  # fmt: skip
        cmd.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")

    args = parser.parse_args(argv)
    if args.command == "up":
        return _up(args.state_dir, args.bubble_url)
    if args.command == "down":
        if down(args.state_dir):
            print(f"devstack: down; removed {args.state_dir}", file=sys.stderr)
        else:
            print(f"devstack: nothing to stop in {args.state_dir}", file=sys.stderr)
        return 0
    return _status(args.state_dir)


def _up(state_dir: Path, bubble_url: str | None) -> int:
    started = time.monotonic()
    try:
        info = up(state_dir, bubble_url=bubble_url, bubble_token=os.environ.get("BUBBLE_API_TOKEN"))
    except AlreadyUp as exc:
        print(f"devstack: already up in {state_dir} (stop it with: python -m devstack down)", file=sys.stderr)
        print("\n".join(exc.info.connection_lines()))
        return 0
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        print("devstack: cleaned up what had started", file=sys.stderr)
        return 1
    print(f"devstack: up in {time.monotonic() - started:.1f} s", file=sys.stderr)
    print("\n".join(info.connection_lines()), flush=True)
    return 0


def _status(state_dir: Path) -> int:
    parts = status(state_dir)
    if not parts:
        print(f"devstack: not running (no stack in {state_dir})")
        return 3
    for name, running in parts.items():
        print(f"{name:16} {'running' if running else 'NOT RUNNING'}")
    return 0 if all(parts.values()) else 3


if __name__ == "__main__":
    sys.exit(main())

"""python -m devstack up|down|status|pulumi — the whole pipeline on this machine (docs/local-stack.md)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from devstack.config_files import ConfigFileError, read_config_files
from devstack.pulumi_engine import find_engine
from devstack.reapply import apply_again
from devstack.stack import (
    LOCAL_STACK,
    AlreadyUp,
    StackError,
    StackInfo,
    down,
    load,
    local_workspace,
    status,
    up,
)

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
    up_cmd.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a key of the `local` stack (repeatable), like `pulumi config set KEY VALUE` (secret keys"
        " with --secret); on a running devstack, apply the stack again with it",
    )
    up_cmd.add_argument(
        "--config-file",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="merge the `config:` block of this stack file (e.g. its bubble-sync:mappings) over the `local`"
        " stack (repeatable: later files win, --config over them); on a running devstack, apply the stack"
        " again with it (as with --config)",
    )
    up_cmd.add_argument(
        "--no-engine",
        action="store_true",
        help="apply the stack's SQL with psql (render-sql) even when the Pulumi engine is available",
    )
    pulumi_cmd = sub.add_parser(
        "pulumi",
        help="run the Pulumi CLI on the local stack's workspace (file backend under the state dir)",
        description="Runs `pulumi ARGS...` in the devstack's Pulumi workspace: the repository's program, the"
        " `local` stack made by `up`, the committed stacks, a file backend and a passphrase under the state"
        " dir. Put pulumi's own flags after `--` when they could be taken for ours (e.g. -- --help).",
    )
    pulumi_cmd.add_argument("args", nargs=argparse.REMAINDER, help="arguments for pulumi")
    for cmd in (up_cmd, sub.add_parser("down", help="stop everything and remove the state"),
                sub.add_parser("status", help="show which parts are running"), pulumi_cmd):  # fmt: skip
        cmd.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")

    args = parser.parse_args(argv)
    if args.command == "up":
        try:
            overrides = dict(_key_value(item) for item in args.config)
        except ValueError as exc:
            parser.error(str(exc))
        return _up(
            args.state_dir, args.bubble_url, args.config_file, overrides, use_engine=not args.no_engine
        )
    if args.command == "pulumi":
        return _pulumi(args.state_dir, args.args)
    if args.command == "down":
        try:
            stopped = down(args.state_dir)
        except StackError as exc:
            print(f"devstack: {exc}", file=sys.stderr)
            return 1
        if stopped:
            print(f"devstack: down; removed {args.state_dir}", file=sys.stderr)
        else:
            print(f"devstack: nothing to stop in {args.state_dir}", file=sys.stderr)
        return 0
    return _status(args.state_dir)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip().removeprefix("bubble-sync:")
    if not sep or not key:
        raise ValueError(f"--config expects KEY=VALUE, got {item.split('=', 1)[0]!r}")
    return key, value


def _up(
    state_dir: Path,
    bubble_url: str | None,
    config_files: list[Path],
    overrides: dict[str, str],
    *,
    use_engine: bool,
) -> int:
    started = time.monotonic()
    try:
        files = read_config_files(config_files, base=LOCAL_STACK)
    except ConfigFileError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    config: dict[str, object] = {**files.values, **overrides}
    try:
        info = up(
            state_dir,
            bubble_url=bubble_url,
            bubble_token=os.environ.get("BUBBLE_API_TOKEN"),
            config=config,
            engine=use_engine,
        )
    except AlreadyUp as exc:
        if not config_files and not overrides:
            print(
                f"devstack: already up in {state_dir} (stop it with: python -m devstack down)",
                file=sys.stderr,
            )
            print("\n".join(exc.info.connection_lines()))
            return 0
        return _apply_again(state_dir, exc.info, bubble_url, config, use_engine=use_engine, started=started)
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        print("devstack: cleaned up what had started", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    print(f"devstack: up in {elapsed:.1f} s; stack `local` applied with {info.applied_with}", file=sys.stderr)
    if info.applied_with.startswith("pulumi"):
        where = "" if state_dir == DEFAULT_STATE_DIR else f" --state-dir {state_dir}"
        print(f"devstack: see it with `./dev pulumi{where} stack --stack local`", file=sys.stderr)
    print("\n".join(info.connection_lines()), flush=True)
    return 0


def _apply_again(
    state_dir: Path,
    info: StackInfo,
    bubble_url: str | None,
    config: dict[str, object],
    *,
    use_engine: bool,
    started: float,
) -> int:
    """`up --config-file`/`--config` on a running devstack: its `local` stack applied again with the merged
    config."""
    print(
        f"devstack: already up in {state_dir}: applying stack `local` again with the config given",
        file=sys.stderr,
    )
    if bubble_url is not None and bubble_url != info.bubble_url:
        print(
            f"devstack: --bubble-url ignored: the running devstack keeps {info.bubble_url} (down first)",
            file=sys.stderr,
        )
    try:
        info = apply_again(state_dir, info, config=config, engine=use_engine)
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        print(
            "devstack: the devstack is still running; fix the cause and run the same command again",
            file=sys.stderr,
        )
        return 1
    elapsed = time.monotonic() - started
    print(f"devstack: applied again in {elapsed:.1f} s with {info.applied_with}", file=sys.stderr)
    print("\n".join(info.connection_lines()), flush=True)
    return 0


def _pulumi(state_dir: Path, args: list[str]) -> int:
    """Replaces this process with the Pulumi CLI, run in the devstack's workspace."""
    engine = find_engine()
    if engine is None:
        print(
            "devstack: no Pulumi engine on this machine: install the Pulumi CLI, or Go (>= 1.26.6) and run "
            "scripts/setup, which builds it",
            file=sys.stderr,
        )
        return 127
    if load(state_dir.resolve()) is None:
        print(
            f"devstack: not running in {state_dir}: the `local` stack needs `./dev up` first "
            "(the committed stacks work without it)",
            file=sys.stderr,
        )
    workspace = local_workspace(state_dir, engine)
    os.chdir(workspace.project_dir)
    args = args[1:] if args[:1] == ["--"] else args
    os.execve(engine.pulumi, workspace.command(args), workspace.environment())  # never returns


def _status(state_dir: Path) -> int:
    parts = status(state_dir)
    if not parts:
        print(f"devstack: not running (no stack in {state_dir})")
        return 3
    for name, running in parts.items():
        print(f"{name:16} {'running' if running else 'NOT RUNNING'}")
    info = load(state_dir.resolve())
    if info is not None:
        print(f"{'stack local':16} applied with {info.applied_with}")
    return 0 if all(parts.values()) else 3


if __name__ == "__main__":
    sys.exit(main())

"""`Pulumi.yaml` against the Pulumi CLI's own stack-config rules (tests/pulumi_cli_config.py): every committed
`Pulumi.<stack>.yaml` and every stack the README's commands make must get past the CLI to the program, and the
only thing a committed example may lack is the secrets its header says to set."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from components.config import KEYS, PROJECT
from tests.markdown_support import stack_setup_block
from tests.pulumi_cli_config import StackValue, stack_values_from_file, validate_stack_config

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))
REQUIRED_SECRETS = sorted(spec.name for spec in KEYS if spec.secret and spec.default is None)

# `pulumi config set [--secret] KEY [VALUE]`, in a shell block or a `#` comment
_CONFIG_SET = re.compile(r"^\s*(?:#\s*)?(?:\./dev )?pulumi config set (.*)$")


def _config_set_commands(text: str) -> list[tuple[str, bool]]:
    """(key, secret) for every `pulumi config set` line in `text`, trailing comments removed."""
    commands = []
    for line in text.splitlines():
        match = _CONFIG_SET.match(line)
        if not match:
            continue
        words = [w for w in shlex.split(match.group(1).split(" #", 1)[0]) if not w.startswith("--stack")]
        secret = "--secret" in words
        words = [w for w in words if not w.startswith("-")]
        commands.append((words[0], secret))
    return commands


_SAMPLE = {"string": "<set>", "integer": "5432", "boolean": "true"}
_TYPES = {spec.name: spec.type for spec in KEYS}


def _apply(values: dict[str, StackValue], commands: list[tuple[str, bool]]) -> dict[str, StackValue]:
    """`values` after the commands, each setting a value of its key's type."""
    result = dict(values)
    for key, secret in commands:
        result[f"{PROJECT}:{key}"] = StackValue(_SAMPLE[_TYPES[key]], secure=secret)
    return result


def test_the_port_reproduces_the_cli_refusing_a_defaulted_secret() -> None:
    # The shape Pulumi.yaml had before: secret + default "" stopped every stack that left the key unset.
    project = {"name": PROJECT, "config": {"dbPassword": {"type": "string", "secret": True, "default": ""}}}
    assert validate_stack_config("dev", project, {}) == (
        "Stack 'dev' with configuration key 'dbPassword' must be encrypted as it's secret"
    )
    assert (
        validate_stack_config("dev", project, {f"{PROJECT}:dbPassword": StackValue("x", secure=True)}) is None
    )


def test_the_port_reports_missing_keys_and_types_like_the_cli() -> None:
    project = {
        "name": PROJECT,
        "config": {"a": {"type": "string"}, "b": {"type": "string"}, "n": {"type": "integer", "default": 1}},
    }
    assert validate_stack_config("s", project, {}) == "Stack 's' is missing configuration values 'a' and 'b'"
    values = {
        f"{PROJECT}:a": StackValue("x"),
        f"{PROJECT}:b": StackValue("y"),
        f"{PROJECT}:n": StackValue("1.5"),
    }
    assert validate_stack_config("s", project, values) == (
        "Stack 's' with configuration key 'n' must be of type 'integer'"
    )


def test_no_key_is_both_secret_and_defaulted() -> None:
    offenders = [
        name for name, entry in PROJECT_FILE["config"].items() if entry.get("secret") and "default" in entry
    ]
    assert offenders == []


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_each_committed_stack_lacks_only_the_secrets_its_header_says_to_set(stack_file: Path) -> None:
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    text = stack_file.read_text()
    values = stack_values_from_file(yaml.safe_load(text))

    # As committed: only the required secrets are missing (no plain-text secret, no bad type).
    error = validate_stack_config(stack, PROJECT_FILE, values)
    assert error is not None and error.startswith(f"Stack '{stack}' is missing configuration value")
    missing = re.findall(r"'(\w+)'", error.split("configuration value", 1)[1])
    assert missing == REQUIRED_SECRETS

    # After the header's commands the CLI lets the program run.
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    commands = _config_set_commands(header)
    assert {key for key, secret in commands if secret} >= set(REQUIRED_SECRETS)
    assert validate_stack_config(stack, PROJECT_FILE, _apply(values, commands)) is None


def _readme_flow() -> list[tuple[str, bool]]:
    return _config_set_commands(stack_setup_block())


def test_the_readme_flow_sets_every_required_key_and_secrets_encrypted() -> None:
    commands = _readme_flow()
    assert validate_stack_config("dev", PROJECT_FILE, _apply({}, commands)) is None
    secrets = {spec.name for spec in KEYS if spec.secret}
    assert all(secret for key, secret in commands if key in secrets)


@pytest.mark.parametrize(
    "variant",
    ["access token from the environment", "databaseUrl instead of dbHost", "only the required keys"],
)
def test_the_readme_alternatives_pass_the_cli(variant: str) -> None:
    # The README's comments offer these alternatives: each leaves an optional secret unset.
    commands = _readme_flow()
    if variant == "access token from the environment":
        commands = [c for c in commands if c[0] != "supabaseAccessToken"]
    elif variant == "databaseUrl instead of dbHost":
        commands = [c for c in commands if c[0] not in ("dbHost", "dbUser", "dbPassword")]
        commands.append(("databaseUrl", True))
    else:
        commands = [(spec.name, spec.secret) for spec in KEYS if spec.default is None]
    assert validate_stack_config("dev", PROJECT_FILE, _apply({}, commands)) is None


def test_a_plain_text_optional_secret_passes_the_cli_and_is_left_to_the_program() -> None:
    # The CLI cannot refuse it (the key has a default); components/config.py does, naming the key.
    commands = [*_readme_flow(), ("dbPassword", False)]
    assert validate_stack_config("dev", PROJECT_FILE, _apply({}, commands)) is None

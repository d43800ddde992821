"""`--config-file`'s reading of stack files (devstack/config_files.py): the merge, the values as the CLI takes
them, and every refusal at once, each naming its file. No devstack is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.config_files import ConfigFileError, read_config_files
from devstack.stack import LOCAL_STACK

USERS = """
  bubble-sync:mappings:
    - name: users
      table: public.profiles
      dataType: user
      fields: {email: email}
      onDelete: {set: {Archived: true, Reason: "7"}}
"""


def stack_file(tmp_path: Path, name: str, config: str) -> Path:
    path = tmp_path / name
    path.write_text(f"config:\n{config}")
    return path


def test_later_files_win_key_by_key_and_structured_values_stay_structured(tmp_path: Path) -> None:
    first = stack_file(
        tmp_path, "first.yaml", USERS + "  bubble-sync:batchSize: 7\n  aws:region: eu-west-1\n"
    )
    second = stack_file(
        tmp_path, "second.yaml", "  bubble-sync:batchSize: 9\n  bubble-sync:bubbleBulkCreate: true\n"
    )

    files = read_config_files([first, second], base=LOCAL_STACK)

    # scalars as `pulumi config set` takes them; the list as the file holds it (a quoted "7" stays text)
    assert files.values["batchSize"] == "9" and files.values["bubbleBulkCreate"] == "true"
    assert files.values["mappings"] == [
        {"name": "users", "table": "public.profiles", "dataType": "user", "fields": {"email": "email"},
         "onDelete": {"set": {"Archived": True, "Reason": "7"}}},
    ]  # fmt: skip
    assert files.origin == {"mappings": first, "batchSize": second, "bubbleBulkCreate": second}
    assert "region" not in files.values  # another namespace: not ours to set


def test_no_files_is_no_values() -> None:
    files = read_config_files([], base=LOCAL_STACK)
    assert files.values == {} and files.origin == {}


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    secrets = stack_file(
        tmp_path,
        "secrets.yaml",
        "  bubble-sync:serviceRoleKey:\n    secure: v1:abc\n"
        "  bubble-sync:batchsize: 5\n"
        "  bubble-sync:dbHost: db.abcdefghijklmnopqrst.supabase.co\n"
        "  bubble-sync:mappings:\n    - name: users\n      onDelete: {set: {Token: {secure: v1:xyz}}}\n",
    )
    bad = stack_file(
        tmp_path,
        "bad.yaml",
        "  bubble-sync:batchSize: 5000\n"
        "  bubble-sync:mappings:\n    - {name: users, table: public.profiles, dataType: user,\n"
        "       fields: {host_id: {field: Host, ref: user}}}\n",
    )
    bare = tmp_path / "bare.yaml"
    bare.write_text("bubble-sync:batchSize: 5\n")

    with pytest.raises(ConfigFileError) as info:
        read_config_files([secrets, tmp_path / "missing.yaml", bare, bad], base=LOCAL_STACK)

    message = str(info.value)
    assert message.startswith("--config-file: ")
    for line in [
        f"{secrets}: bubble-sync:batchsize: unknown key in secrets.yaml (did you mean batchSize?)",
        f"{secrets}: bubble-sync:serviceRoleKey: is the devstack's own",
        f"{secrets}: bubble-sync:dbHost: is the devstack's own",
        f"{secrets}: bubble-sync:mappings: holds an encrypted (secure:) value with another stack's secrets"
        " provider, which the devstack cannot decrypt",
        f"{tmp_path / 'missing.yaml'}: no such file",
        f"{bare}: its `config:` block sets no bubble-sync key",
    ]:
        assert line in message, message
    # the files that could be read are validated only once every one of them could: fix those first
    assert "bad.yaml" not in message


def test_the_merged_values_are_validated_naming_the_file_that_set_each_key(tmp_path: Path) -> None:
    bad = stack_file(
        tmp_path,
        "bad.yaml",
        "  bubble-sync:batchSize: 5000\n"
        "  bubble-sync:mappings:\n    - {name: users, table: public.profiles, dataType: user,\n"
        "       fields: {host_id: {field: Host, ref: user}}}\n",
    )
    with pytest.raises(ConfigFileError) as info:
        read_config_files([bad], base=LOCAL_STACK)
    assert str(info.value).splitlines()[1:] == [
        f"  - {bad}: bubble-sync:batchSize: must be from 1 to 1000, got 5000",
        f"  - {bad}: bubble-sync:mappings[0].fields.host_id.ref: "
        'no mapping named "user" (did you mean users?)',
    ]


def test_an_encrypted_value_says_how_to_give_it_instead(tmp_path: Path) -> None:
    secret = stack_file(tmp_path, "s.yaml", "  bubble-sync:bubbleDataType:\n    secure: v1:abc\n")
    with pytest.raises(ConfigFileError, match=r"cannot decrypt: leave it out of the file, or give it as "
                       r"--config bubbleDataType=VALUE"):  # fmt: skip
        read_config_files([secret], base=LOCAL_STACK)

"""The `bubble_sync` Edge Function, deployed through the Supabase Management API.

Why one module: which files go up, their hash and the deploy form are one definition of what is uploaded,
which the component (for preview) and the provider (for deploy and drift) must share exactly.

Deploy (create and update) is `POST /v1/projects/{ref}/functions/deploy?slug=<slug>` with a
`multipart/form-data` body built as the official CLI builds it for `supabase functions deploy --use-api`
(supabase/cli `pkg/function/deploy.go`, `writeForm`): one form field `metadata` holding the JSON
`{"entrypoint_path", "name", "verify_jwt"}` (plus `import_map_path` when the function has its own
`deno.json`), then one `file` part per source file whose filename is the file's path relative to the
project root with forward slashes (`supabase/functions/bubble_sync/index.ts`); `entrypoint_path` uses the
same relative path. The API creates the function when it does not exist and answers 201 with the
deployed function (`DeployFunctionResponse`: id, slug, version, status, ...).

Which files: every file under `source_dir` except dotfiles, Markdown, tests (`*_test.ts`, `*.test.ts`,
`test.ts`, `test/`, `tests/`, `__tests__/`) and `node_modules/`, plus every file reachable through a
relative import (`import ... from "../_shared/x.ts"`, `export ... from`, `import("./y.ts")`) from them,
so shared modules outside the directory go up too. The files are read at deploy time from the current
working directory (the project root `pulumi up` runs in; failing that, the checkout holding this module);
a missing directory or entrypoint is a clear error, and so is a total above the 5 MB that server-side
bundling accepts (supabase-facts §4.1).

`source_hash` (`function_source_hash`) is a SHA-256 over the sorted relative paths and contents of those
files. The component computes it when the program runs, so a changed source shows in `pulumi preview`; the
provider records the hash of what it actually uploaded.

Drift (`read` + `diff`): the function deleted by hand (404) or `REMOVED` -> gone, so refresh drops it and
`up` deploys it again; `verify_jwt` flipped -> its live value differs; redeployed by someone else (the live
`version` is not the one this stack deployed) -> `source_hash` reads back as `redeployed-outside-pulumi:
v<version>`, which differs from the program's hash, and `update` redeploys our sources. `update` deploys
only when the hash, a setting or drift asks for it. Delete is `DELETE .../functions/{slug}`; 404 is fine.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.errors import SourceError
from components.providers._base import changed, inputs_of, is_unknown
from components.providers.management_api import ManagementApiProvider

__all__ = [
    "MAX_BUNDLE_BYTES",
    "EdgeFunction",
    "EdgeFunctionArgs",
    "EdgeFunctionProvider",
    "FunctionSourceError",
    "SourceFile",
    "collect_function_files",
    "deploy_metadata",
    "function_source_hash",
    "project_root",
]

INPUT_KEYS = ("project_ref", "slug", "source_dir", "entrypoint", "verify_jwt", "source_hash")
# What a deploy changes; project_ref and slug name another function (a replacement).
DEPLOY_KEYS = ("source_dir", "entrypoint", "verify_jwt", "source_hash")
REPLACE_KEYS = ("project_ref", "slug")
OUTPUT_KEYS = ("function_id", "version", "status", "ezbr_sha256")

#: server-side bundling (Management API, Dashboard) accepts up to 5 MB of source
MAX_BUNDLE_BYTES = 5 * 1024 * 1024
#: `source_hash` as `read` reports it when someone else deployed since (followed by `v<version>`)
REDEPLOYED_MARKER = "redeployed-outside-pulumi:"

_PROJECT_REF = re.compile(r"^[a-z]{20}$")
# The deploy endpoint's `slug` query parameter (stricter than the path parameter's ^[A-Za-z0-9_-]+$).
_SLUG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_SKIPPED_DIRS = {"node_modules", "test", "tests", "__tests__"}
_TEST_FILE = re.compile(r"^(?:.*[._])?test\.(?:ts|tsx|mts|cts|js|jsx|mjs|cjs)$")
_IMPORT = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}/[^"'\n]+)["']""",
)
_IMPORT_MAPS = ("deno.json", "deno.jsonc")


class FunctionSourceError(SourceError):
    """The function's sources cannot be uploaded: a missing directory or entrypoint, or too large."""


@dataclass(frozen=True)
class SourceFile:
    """`path`: relative to the project root, forward slashes (the multipart filename)."""

    path: str
    content: bytes


def collect_function_files(
    source_dir: str, entrypoint: str = "index.ts", root: str | Path | None = None
) -> list[SourceFile]:
    """The files a deploy uploads, sorted by path. `source_dir` is relative to `root` (default:
    `project_root(source_dir)`)."""
    rel_dir = _relative_dir(source_dir)
    base = project_root(rel_dir) if root is None else Path(root)
    directory = base / rel_dir
    if not directory.is_dir():
        raise FunctionSourceError(
            f"Edge Function source directory {rel_dir}/ not found under {base} (run pulumi from the project "
            f"directory)"
        )
    entry = _relative_file(entrypoint, "entrypoint")
    if not (directory / entry).is_file():
        raise FunctionSourceError(f"Edge Function entrypoint {rel_dir}/{entry} not found under {base}")

    found: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if not path.is_file() or any(p.startswith(".") for p in parts):
            continue
        if any(p in _SKIPPED_DIRS for p in parts[:-1]) or _TEST_FILE.match(parts[-1]):
            continue
        if parts[-1].lower().endswith(".md"):
            continue
        found[path.relative_to(base).as_posix()] = path
    found[f"{rel_dir}/{entry}"] = directory / entry  # whatever its name
    # Follow relative imports (e.g. ../_shared/) so modules outside the directory are uploaded too.
    queue = list(found)
    while queue:
        rel = queue.pop()
        try:
            text = found[rel].read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for spec in _IMPORT.findall(text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), spec.split("?")[0]))
            if target.startswith("../") or target in found:
                continue  # outside the project root: the server will say what is missing
            candidate = base / target
            if candidate.is_file():
                found[target] = candidate
                queue.append(target)

    files = [SourceFile(rel, found[rel].read_bytes()) for rel in sorted(found)]
    total = sum(len(f.content) for f in files)
    if total > MAX_BUNDLE_BYTES:
        biggest = ", ".join(
            f"{f.path} ({len(f.content)} bytes)" for f in sorted(files, key=lambda f: -len(f.content))[:3]
        )
        raise FunctionSourceError(
            f"Edge Function sources under {rel_dir}/ total {total} bytes, more than the {MAX_BUNDLE_BYTES} "
            f"bytes (5 MB) the Management API bundles server-side; largest: {biggest}"
        )
    return files


def project_root(source_dir: str) -> Path:
    """Where relative source paths start: the current directory (the project root `pulumi` runs in) when it
    holds `source_dir`, else the checkout this module lives in (`<root>/components/providers/`), in case
    the dynamic-provider process runs elsewhere; the current directory when neither has it (for the error)."""
    cwd = Path.cwd()
    if (cwd / source_dir).is_dir():
        return cwd
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / source_dir).is_dir() else cwd


def function_source_hash(
    source_dir: str, entrypoint: str = "index.ts", root: str | Path | None = None
) -> str:
    """SHA-256 (hex) over the sorted relative paths and contents of the files a deploy uploads."""
    return _hash(collect_function_files(source_dir, entrypoint, root))


def deploy_metadata(
    files: list[SourceFile], source_dir: str, entrypoint: str, slug: str, verify_jwt: bool
) -> dict[str, Any]:
    """The `metadata` form field, as the CLI writes it (paths relative to the project root)."""
    rel_dir = _relative_dir(source_dir)
    metadata: dict[str, Any] = {
        "entrypoint_path": f"{rel_dir}/{_relative_file(entrypoint, 'entrypoint')}",
        "name": slug,
        "verify_jwt": verify_jwt,
    }
    paths = {f.path for f in files}
    for name in _IMPORT_MAPS:
        if f"{rel_dir}/{name}" in paths:
            metadata["import_map_path"] = f"{rel_dir}/{name}"
            break
    return metadata


def _hash(files: list[SourceFile]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.path}\0{len(f.content)}\0".encode())
        digest.update(f.content)
    return digest.hexdigest()


def _relative_dir(source_dir: str) -> str:
    text = str(source_dir).replace("\\", "/").strip()
    normalized = posixpath.normpath(text) if text else ""
    if not normalized or normalized == "." or normalized.startswith(("/", "../")) or normalized == "..":
        raise FunctionSourceError(
            f"source_dir must be a directory relative to the project root, like "
            f"supabase/functions/bubble_sync; got {source_dir!r}"
        )
    return normalized


def _relative_file(name: str, what: str) -> str:
    text = str(name).replace("\\", "/").strip()
    normalized = posixpath.normpath(text) if text else ""
    if not normalized or normalized.startswith(("/", "../")) or normalized in (".", ".."):
        raise FunctionSourceError(f"{what} must be a file path inside source_dir, got {name!r}")
    return normalized


@dataclass
class EdgeFunctionArgs:
    """`project_ref`: the project; `slug`: the function's slug (`bubble_sync`); `source_dir`: its directory
    relative to the project root; `entrypoint`: relative to `source_dir`; `verify_jwt`: the platform's JWT
    check (off: the function authenticates callers itself, which new `sb_secret_` keys need);
    `source_hash`: `function_source_hash(source_dir, entrypoint)`, computed when the program runs."""

    project_ref: pulumi.Input[str]
    source_hash: pulumi.Input[str]
    slug: pulumi.Input[str] = "bubble_sync"
    source_dir: pulumi.Input[str] = "supabase/functions/bubble_sync"
    entrypoint: pulumi.Input[str] = "index.ts"
    verify_jwt: pulumi.Input[bool] = False


class EdgeFunctionProvider(ManagementApiProvider):
    kind = "Edge Function"

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {
            "slug": "bubble_sync",
            "source_dir": "supabase/functions/bubble_sync",
            "entrypoint": "index.ts",
            "verify_jwt": False,
            **{k: v for k, v in news.items() if v is not None},
        }
        failures = []
        ref = inputs.get("project_ref")
        if not is_unknown(ref) and not (isinstance(ref, str) and _PROJECT_REF.match(ref)):
            failures.append(CheckFailure("project_ref", f"must be 20 lowercase letters, got {ref!r}"))
        slug = inputs["slug"]
        if not is_unknown(slug) and not (isinstance(slug, str) and _SLUG.match(slug)):
            failures.append(
                CheckFailure(
                    "slug", f"must match ^[A-Za-z][A-Za-z0-9_-]*$ (the deploy endpoint), got {slug!r}"
                )
            )
        for key, check in (
            ("source_dir", _relative_dir),
            ("entrypoint", lambda v: _relative_file(v, "entrypoint")),
        ):
            value = inputs[key]
            if is_unknown(value):
                continue
            if not isinstance(value, str):
                failures.append(CheckFailure(key, f"must be a string, got {value!r}"))
                continue
            try:
                check(value)
            except FunctionSourceError as exc:
                failures.append(CheckFailure(key, str(exc)))
        if not is_unknown(inputs["verify_jwt"]) and not isinstance(inputs["verify_jwt"], bool):
            failures.append(CheckFailure("verify_jwt", "must be true or false"))
        digest = inputs.get("source_hash")
        if not is_unknown(digest) and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            failures.append(CheckFailure("source_hash", "must be the function_source_hash() of the sources"))
        return CheckResult(inputs, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._deploy(props)
        return CreateResult(id_=f"{props['project_ref']}/{props['slug']}", outs=outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        ref, slug = props["project_ref"], props["slug"]
        with self.api(slug) as api:
            response = api.call(
                "GET",
                f"/v1/projects/{ref}/functions/{slug}",
                action="read",
                scope="edge_functions:read",
                ok=(200,),
                missing_ok=True,
            )
        if response is None:
            return ReadResult(id_="", outs={})
        live = response.json()
        if live.get("status") == "REMOVED":
            return ReadResult(id_="", outs={})
        outs = {**inputs_of(props, INPUT_KEYS), **inputs_of(props, OUTPUT_KEYS)}
        if isinstance(live.get("verify_jwt"), bool):
            outs["verify_jwt"] = live["verify_jwt"]
        version = live.get("version")
        deployed = props.get("version")
        if isinstance(version, int) and version != deployed:
            # Someone deployed another version since: its sources are not ours (as far as we know).
            outs["source_hash"] = f"{REDEPLOYED_MARKER}v{version}"
        outs.update(
            function_id=live.get("id", props.get("function_id")),
            version=version if isinstance(version, int) else deployed,
            status=live.get("status", props.get("status")),
        )
        if live.get("ezbr_sha256"):
            outs["ezbr_sha256"] = live["ezbr_sha256"]
        return ReadResult(id_=id_ or f"{ref}/{slug}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        news = {"verify_jwt": False, "entrypoint": "index.ts", **news}
        replaces = changed(olds, news, REPLACE_KEYS)
        changes = bool(replaces) or bool(changed(olds, news, DEPLOY_KEYS))
        # The old function goes after the new one exists (another slug or project: no clash).
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not changed(olds, news, DEPLOY_KEYS) and olds.get("version") is not None:
            # Nothing to deploy: same sources, same settings, no drift recorded by the last refresh.
            return UpdateResult(outs={**inputs_of(news, INPUT_KEYS), **inputs_of(olds, OUTPUT_KEYS)})
        return UpdateResult(outs=self._deploy(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        ref, slug = props["project_ref"], props["slug"]
        with self.api(slug) as api:
            api.call(
                "DELETE",
                f"/v1/projects/{ref}/functions/{slug}",
                action="delete",
                scope="edge_functions:write",
                ok=(200, 204),
                missing_ok=True,
            )

    def _deploy(self, props: Mapping[str, Any]) -> dict[str, Any]:
        ref, slug = props["project_ref"], props["slug"]
        source_dir, entrypoint = props["source_dir"], props["entrypoint"]
        verify_jwt = bool(props.get("verify_jwt", False))
        try:
            files = collect_function_files(source_dir, entrypoint)
        except FunctionSourceError as exc:
            raise self.fail(slug, f"deploy failed: {exc}") from None
        metadata = deploy_metadata(files, source_dir, entrypoint, slug, verify_jwt)
        with self.api(slug) as api:
            response = api.call(
                "POST",
                f"/v1/projects/{ref}/functions/deploy",
                action="deploy",
                scope="edge_functions:write",
                ok=(200, 201),
                params={"slug": slug},
                data={"metadata": json.dumps(metadata)},
                files=[("file", (f.path, f.content, "application/octet-stream")) for f in files],
            )
        assert response is not None
        deployed = response.json()
        outs = {
            **inputs_of(props, INPUT_KEYS),
            "verify_jwt": deployed.get("verify_jwt", verify_jwt),
            # What was uploaded, which may be newer than the hash the program computed.
            "source_hash": _hash(files),
            "function_id": deployed.get("id"),
            "version": deployed.get("version"),
            "status": deployed.get("status"),
        }
        if deployed.get("ezbr_sha256"):
            outs["ezbr_sha256"] = deployed["ezbr_sha256"]
        return outs


class EdgeFunction(Resource, module="bubblesync", name="EdgeFunction"):
    """An Edge Function deployed from local sources; id = `<project_ref>/<slug>`."""

    project_ref: pulumi.Output[str]
    slug: pulumi.Output[str]
    source_dir: pulumi.Output[str]
    entrypoint: pulumi.Output[str]
    verify_jwt: pulumi.Output[bool]
    source_hash: pulumi.Output[str]
    function_id: pulumi.Output[str]
    version: pulumi.Output[int]
    status: pulumi.Output[str]
    ezbr_sha256: pulumi.Output[str]

    def __init__(
        self, resource_name: str, args: EdgeFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "project_ref": args.project_ref,
            "slug": args.slug,
            "source_dir": args.source_dir,
            "entrypoint": args.entrypoint,
            "verify_jwt": args.verify_jwt,
            "source_hash": args.source_hash,
            # outputs
            "function_id": None,
            "version": None,
            "status": None,
            "ezbr_sha256": None,
        }
        super().__init__(EdgeFunctionProvider(), resource_name, props, opts)

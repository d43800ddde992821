"""Every request the deployment providers send, and every response the Management API test double returns,
checked against the official spec extract `tests/contracts/supabase-management-api.functions.json`: the
Edge Functions and secrets operations of supabase/supabase's `apps/docs/spec/api_v1_openapi.json` (commit
06fd6bce9e0b), copied as the source has them (re-indented) but for the `fga_permissions` security entries the
source never declares, a shorter `info`, and a `servers` entry for https://api.supabase.com.

Why one module: the spec checker (`resolve`, `validate`, `check_request`, `check_response`) serves only these
tests, and the tests at the end check the checker itself, so both are read together.

For each exchange: the path matches a path template of the spec and the method exists on it; the path and
query parameters are declared and match their schemas (ref: 20 lowercase letters; slug patterns); the
bearer token is sent; the body matches the operation's requestBody -- JSON validated against its schema,
and the deploy's multipart form checked the way the official CLI writes it (one `metadata` field whose JSON
validates against `FunctionDeployBody.metadata`, `file` parts named by project-relative paths, the
entrypoint among them; a schema-driven validator reads `metadata` as a string and a single `file` as a
scalar, so it would refuse that form as the CLI sends it). The response status is one the operation lists,
and a JSON body validates against that status's response schema. The one deliberate exception is 404 on
`GET`/`DELETE .../functions/{function_slug}`: the spec lists none, but the API answers it for an unknown
function and Supabase's Terraform provider treats it as "gone" (see UNDOCUMENTED_STATUSES).

The schema check is a small JSON-Schema subset (type, properties, required, items, enum, pattern,
minLength, maxLength, $ref, int64), enough for every schema in the extract; the tests at the end make sure
it rejects what it should.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic import Config, ConfigureRequest

from components.providers import EdgeFunctionProvider, FunctionSecretsProvider, ManagementApiError
from components.providers.edge_function import function_source_hash
from tests.management_api_double import Exchange, ManagementApiDouble, parse_multipart, running_double

CONTRACT = Path(__file__).resolve().parent / "contracts" / "supabase-management-api.functions.json"
#: the extract as it was copied; an edit to it must be deliberate (and this digest updated with it)
CONTRACT_SHA256 = "262594935b436b3cbe2c3aa2cffacdcd0afb4a82cd9a8113f71ffecb1f0c6e19"
SPEC: dict[str, Any] = json.loads(CONTRACT.read_text())

REF = "abcdefghijklmnopqrst"
TOKEN = "sbp_contract_TOKEN_3c9e"
SOURCE_DIR = "supabase/functions/bubble_sync"

# (method, path template) -> {status: why it is accepted although the spec does not list it}
UNDOCUMENTED_STATUSES: dict[tuple[str, str], dict[int, str]] = {
    ("GET", "/v1/projects/{ref}/functions/{function_slug}"): {
        404: "unknown function: supabase/terraform-provider-supabase readEdgeFunction treats it as gone"
    },
    ("DELETE", "/v1/projects/{ref}/functions/{function_slug}"): {
        404: "already deleted; supabase/terraform-provider-supabase deleteEdgeFunction accepts it"
    },
}

# The operations the providers use: the scenario must exercise each of them.
USED_OPERATIONS = {
    "v1-deploy-a-function",
    "v1-get-a-function",
    "v1-delete-a-function",
    "v1-list-all-secrets",
    "v1-bulk-create-secrets",
    "v1-bulk-delete-secrets",
}


# -- a JSON-Schema subset ------------------------------------------------------------------------------------


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        node: Any = SPEC
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
    return schema


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}
_HANDLED = {
    "$ref", "type", "properties", "required", "items", "enum", "pattern", "minLength", "maxLength",
    "format", "description", "example", "deprecated", "nullable",
}  # fmt: skip


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """The ways `value` violates `schema` (empty when it conforms)."""
    schema = resolve(schema)
    unknown = set(schema) - _HANDLED
    assert not unknown, f"{where}: the validator does not handle {sorted(unknown)}"
    if value is None and schema.get("nullable"):
        return []
    kind = schema.get("type")
    if kind is not None and not _TYPES[kind](value):
        return [f"{where}: expected {kind}, got {type(value).__name__} {value!r:.60}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
    if schema.get("format") == "int64" and isinstance(value, int) and not -(2**63) <= value < 2**63:
        errors.append(f"{where}: {value} is outside int64")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing required property {name!r}")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors.extend(validate(value[name], sub, f"{where}.{name}"))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors.extend(validate(item, schema["items"], f"{where}[{i}]"))
    return errors


# -- requests and responses against the spec -----------------------------------------------------------------


def match_operation(method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]] | None:
    """(template, operation, path parameters) of the spec operation serving `method path`."""
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
        m = re.match(pattern, path)
        if m and method.lower() in item:
            return template, item[method.lower()], m.groupdict()
    return None


def _param_value(raw: str, schema: dict[str, Any]) -> Any:
    if resolve(schema).get("type") == "boolean":  # "Boolean string, true or false"
        return {"true": True, "false": False}.get(raw, raw)
    if resolve(schema).get("type") == "integer" and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw


def check_request(e: Exchange) -> list[str]:
    where = f"{e.method} {e.path}"
    found = match_operation(e.method, e.path)
    if found is None:
        return [f"{where}: no such operation in the spec"]
    template, op, path_params = found
    errors: list[str] = []
    if op.get("deprecated"):
        errors.append(f"{where}: {op['operationId']} is deprecated")
    if op.get("security") and e.headers.get("authorization") != "Bearer <present>":
        errors.append(f"{where}: no bearer token")
    params = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
    for name, value in path_params.items():
        spec = params.get(("path", name))
        if spec is None:
            errors.append(f"{where}: path parameter {name} is not declared")
        else:
            errors.extend(validate(value, spec["schema"], f"{where} path {name}"))
    for name, values in e.query.items():
        spec = params.get(("query", name))
        if spec is None:
            errors.append(f"{where}: query parameter {name!r} is not declared")
            continue
        if len(values) != 1:
            errors.append(f"{where}: query parameter {name!r} sent {len(values)} times")
        for value in values:
            errors.extend(
                validate(_param_value(value, spec["schema"]), spec["schema"], f"{where} query {name}")
            )
    for (where_in, name), spec in params.items():
        if spec.get("required") and where_in == "query" and name not in e.query:
            errors.append(f"{where}: required query parameter {name!r} missing")
    errors.extend(_check_body(e, op, where))
    return errors


def _check_body(e: Exchange, op: dict[str, Any], where: str) -> list[str]:
    body = op.get("requestBody")
    if body is None:
        return [f"{where}: sends a body the operation does not take"] if e.body else []
    if not e.body:
        return [f"{where}: the request body is required"] if body.get("required") else []
    media = e.content_type.split(";")[0].strip()
    content = body["content"]
    if media not in content:
        return [f"{where}: content type {media!r} is not one of {sorted(content)}"]
    schema = content[media]["schema"]
    if media == "application/json":
        try:
            value = json.loads(e.body)
        except ValueError:
            return [f"{where}: the body is not JSON"]
        return validate(value, schema, f"{where} body")
    if media == "multipart/form-data":
        return check_deploy_form(e.content_type, e.body, resolve(schema), where)
    return []


def check_deploy_form(content_type: str, body: bytes, schema: dict[str, Any], where: str) -> list[str]:
    """The deploy form as the CLI writes it (contracts/README.md): one `metadata` field holding JSON that
    validates against the schema's `metadata`, and `file` parts named by project-relative paths."""
    try:
        parts = parse_multipart(content_type, body)
    except ValueError as exc:
        return [f"{where}: malformed multipart body: {exc}"]
    errors: list[str] = []
    for part in parts:
        if part.name not in schema["properties"]:
            errors.append(f"{where}: form field {part.name!r} is not in the schema")
    for name in schema.get("required", []):
        if not any(p.name == name for p in parts):
            errors.append(f"{where}: required form field {name!r} missing")
    metadata = [p for p in parts if p.name == "metadata"]
    if len(metadata) > 1:
        errors.append(f"{where}: {len(metadata)} metadata fields")
    files = [p for p in parts if p.name == "file"]
    names = [p.filename for p in files]
    for part in files:
        name = part.filename
        if not name:
            errors.append(f"{where}: a file part without a filename")
        elif name.startswith(("/", "./")) or "\\" in name or ".." in name.split("/"):
            errors.append(f"{where}: file name {name!r} is not a project-relative path with forward slashes")
    if len(set(names)) != len(names):
        errors.append(f"{where}: duplicate file names")
    if metadata:
        if metadata[0].filename is not None:
            errors.append(f"{where}: metadata is sent as a file, not a field")
        try:
            value = json.loads(metadata[0].content)
        except ValueError:
            return [*errors, f"{where}: metadata is not JSON"]
        errors.extend(validate(value, schema["properties"]["metadata"], f"{where} metadata"))
        if isinstance(value, dict) and value.get("entrypoint_path") not in names:
            errors.append(f"{where}: entrypoint_path {value.get('entrypoint_path')!r} is not among the files")
    return errors


def check_response(e: Exchange) -> list[str]:
    where = f"{e.method} {e.path} -> {e.status}"
    found = match_operation(e.method, e.path)
    if found is None:
        return [f"{where}: no such operation in the spec"]
    template, op, _ = found
    response = op["responses"].get(str(e.status))
    if response is None:
        if e.status in UNDOCUMENTED_STATUSES.get((e.method, template), {}):
            return []
        return [f"{where}: status {e.status} is not listed (listed: {sorted(op['responses'])})"]
    content = response.get("content")
    if not content:
        return []
    if "application/json" in content:
        if not e.response_headers.get("content-type", "").startswith("application/json"):
            return [f"{where}: expected an application/json body"]
        try:
            value = json.loads(e.response_body)
        except ValueError:
            return [f"{where}: the response body is not JSON"]
        return validate(value, content["application/json"]["schema"], f"{where} body")
    return []


# -- the scenario --------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel, text in {
        f"{SOURCE_DIR}/index.ts": 'import { handler } from "./handler.ts";\nDeno.serve(handler);\n',
        f"{SOURCE_DIR}/handler.ts": "export function handler(_r: Request) { return new Response('ok'); }\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.chdir(tmp_path)
    for var in ("SUPABASE_ACCESS_TOKEN", "SUPABASE_MANAGEMENT_API_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def double() -> Iterator[ManagementApiDouble]:
    with running_double(TOKEN) as d:
        yield d


def _providers(
    double: ManagementApiDouble, token: str = TOKEN
) -> tuple[EdgeFunctionProvider, FunctionSecretsProvider]:
    request = ConfigureRequest(
        Config(
            {"bubble-sync:managementApiUrl": double.url, "bubble-sync:supabaseAccessToken": token},
            "bubble-sync",
        )
    )
    function, secrets = EdgeFunctionProvider(), FunctionSecretsProvider()
    for provider in (function, secrets):
        provider.configure(request)
        provider.sleep = lambda _seconds: None  # type: ignore[method-assign]
    return function, secrets


def run_scenario(double: ManagementApiDouble, project: Path) -> None:
    """Both providers through their whole lifecycle, drift repairs, limits and errors."""
    function, secrets = _providers(double)
    fn_inputs = {
        "project_ref": REF,
        "slug": "bubble_sync",
        "source_dir": SOURCE_DIR,
        "entrypoint": "index.ts",
        "verify_jwt": False,
        "source_hash": function_source_hash(SOURCE_DIR),
    }
    sec_inputs = {"project_ref": REF, "secrets": {"BUBBLE_API_TOKEN": "tok", "BUBBLE_SYNC_BATCH_SIZE": "50"}}

    double.fail_next(429, {"message": "Too many requests"}, headers={"Retry-After": "3"}, method="POST")
    sec = secrets.create(sec_inputs)
    fn = function.create(fn_inputs)
    function.read(fn.id, fn.outs)
    secrets.read(sec.id, sec.outs)

    double.set_function(REF, "bubble_sync", verify_jwt=True)
    double.set_secret(REF, "BUBBLE_API_TOKEN", "changed")
    double.remove_secret(REF, "BUBBLE_SYNC_BATCH_SIZE")
    read = function.read(fn.id, fn.outs)
    function.update(fn.id, read.outs, fn_inputs)
    read_s = secrets.read(sec.id, sec.outs)
    secrets.update(sec.id, read_s.outs, {**sec_inputs, "secrets": {"BUBBLE_API_TOKEN": "tok", "NEW": "1"}})

    double.redeploy(REF, "bubble_sync")
    fn = function.create(fn_inputs)  # again (an upsert)
    double.delete_function(REF, "bubble_sync")
    assert function.read(fn.id, fn.outs).id == ""  # 404
    function.delete(fn.id, fn.outs)  # 404: already gone
    secrets.delete(sec.id, {**sec.outs, "secrets": {"BUBBLE_API_TOKEN": "tok", "NEW": "1"}})

    # errors the providers must survive cleanly
    bad_function, bad_secrets = _providers(double, token="sbp_wrong")
    for call in (lambda: bad_function.create(fn_inputs), lambda: bad_secrets.read(REF, sec_inputs)):
        with pytest.raises(ManagementApiError):  # 401
            call()
    double.max_functions = 0
    with pytest.raises(ManagementApiError):  # 402
        function.create(fn_inputs)
    double.max_functions = None
    double.grant(TOKEN, {"zyxwvutsrqponmlkjihg"})
    with pytest.raises(ManagementApiError):  # 403
        secrets.create(sec_inputs)
    double.grant(TOKEN, None)
    double.fail_next(500, {"message": "Failed to deploy function"}, path="/deploy")
    with pytest.raises(ManagementApiError):
        function.create(fn_inputs)


def test_every_exchange_of_the_providers_conforms_to_the_spec(
    double: ManagementApiDouble, project: Path
) -> None:
    run_scenario(double, project)
    problems = [p for e in double.exchanges for p in (*check_request(e), *check_response(e))]
    assert problems == []

    used = {match_operation(e.method, e.path)[1]["operationId"] for e in double.exchanges}  # type: ignore[index]
    assert used == USED_OPERATIONS
    statuses = {(e.method, e.status) for e in double.exchanges}
    assert {("POST", 201), ("GET", 200), ("DELETE", 200), ("GET", 404), ("DELETE", 404)} <= statuses
    assert {
        ("POST", 429),
        ("POST", 401),
        ("GET", 401),
        ("POST", 402),
        ("POST", 403),
        ("POST", 500),
    } <= statuses


def test_the_contract_copy_is_unchanged() -> None:
    assert hashlib.sha256(CONTRACT.read_bytes()).hexdigest() == CONTRACT_SHA256


def test_the_undocumented_statuses_are_the_only_exception() -> None:
    for (method, template), statuses in UNDOCUMENTED_STATUSES.items():
        listed = SPEC["paths"][template][method.lower()]["responses"]
        assert not set(map(str, statuses)) & set(listed), "now documented: drop the exception"


# -- the checker rejects what it should ----------------------------------------------------------------------


def _exchange(
    method: str, path: str, *, query: dict[str, list[str]] | None = None, **kwargs: Any
) -> Exchange:
    e = Exchange(
        method=method,
        path=path,
        query=query or {},
        headers={"authorization": "Bearer <present>", **kwargs.pop("headers", {})},
        body=kwargs.pop("body", b""),
    )
    for key, value in kwargs.items():
        setattr(e, key, value)
    return e


def _form(metadata: Any, files: dict[str, bytes], *, metadata_as_file: bool = False) -> tuple[str, bytes]:
    boundary = "b0undary"
    chunks = []
    filename = '; filename="metadata.json"' if metadata_as_file else ""
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"{filename}\r\n\r\n'
    chunks.append(f"{head}{text}\r\n".encode())
    for name, content in files.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)


DEPLOY = f"/v1/projects/{REF}/functions/deploy"
GOOD_META = {"entrypoint_path": f"{SOURCE_DIR}/index.ts", "name": "bubble_sync", "verify_jwt": False}
GOOD_FILES = {f"{SOURCE_DIR}/index.ts": b"Deno.serve(() => new Response())"}


def _deploy(
    metadata: Any = None, files: dict[str, bytes] | None = None, slug: str = "bubble_sync", **kwargs: Any
) -> Exchange:
    content_type, body = _form(
        GOOD_META if metadata is None else metadata, GOOD_FILES if files is None else files, **kwargs
    )
    return _exchange(
        "POST", DEPLOY, query={"slug": [slug]}, headers={"content-type": content_type}, body=body
    )


def _json(method: str, body: Any) -> Exchange:
    """A secrets request with a JSON body."""
    return _exchange(
        method,
        f"/v1/projects/{REF}/secrets",
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
    )


def test_a_conforming_deploy_passes() -> None:
    assert check_request(_deploy()) == []


@pytest.mark.parametrize(
    ("exchange", "fragment"),
    [
        (_exchange("GET", "/v1/projects/ABCDEFGHIJKLMNOPQRST/secrets"), "does not match ^[a-z]+$"),
        (_exchange("GET", "/v1/projects/abc/secrets"), "shorter than 20"),
        (_exchange("GET", f"/v1/projects/{REF}/functions/bad.slug"), "does not match"),
        (_exchange("GET", f"/v1/projects/{REF}/secretz"), "no such operation"),
        (_exchange("PATCH", f"/v1/projects/{REF}/secrets"), "no such operation"),
        (_exchange("GET", f"/v1/projects/{REF}/secrets", headers={"authorization": ""}), "no bearer token"),
        (_exchange("GET", f"/v1/projects/{REF}/secrets", query={"reveal": ["true"]}), "not declared"),
        (_deploy(slug="1bad"), "does not match ^[A-Za-z]"),
        (_exchange("POST", DEPLOY, query={"slug": ["x"], "bundleOnly": ["yes"]}), "expected boolean"),
        (_deploy(metadata={"name": "bubble_sync"}), "missing required property 'entrypoint_path'"),
        (_deploy(metadata={**GOOD_META, "verify_jwt": "false"}), "expected boolean"),
        (_deploy(metadata="{not json"), "metadata is not JSON"),
        (_deploy(metadata_as_file=True), "sent as a file"),
        (_deploy(files={"./supabase/functions/bubble_sync/index.ts": b"x"}), "not a project-relative path"),
        (_deploy(files={"supabase\\functions\\bubble_sync\\index.ts": b"x"}), "not a project-relative path"),
        (_deploy(files={f"{SOURCE_DIR}/other.ts": b"x"}), "is not among the files"),
        (_exchange("POST", DEPLOY, headers={"content-type": "application/json"}, body=b"{}"), "content type"),
        (_json("POST", [{"name": "SUPABASE_URL", "value": "x"}]), "does not match ^(?!SUPABASE_)"),
        (_json("POST", [{"name": "A"}]), "missing required property 'value'"),
        (_json("POST", [{"name": "A", "value": "x" * 24577}]), "longer than 24576"),
        (_json("POST", {"A": "x"}), "expected array"),
        (_json("DELETE", [1]), "expected string"),
        (_exchange("POST", f"/v1/projects/{REF}/secrets"), "the request body is required"),
        (_exchange("GET", f"/v1/projects/{REF}/secrets", body=b"[]"), "does not take"),
    ],
)  # fmt: skip
def test_non_conforming_requests_are_caught(exchange: Exchange, fragment: str) -> None:
    problems = check_request(exchange)
    assert any(fragment in p for p in problems), problems


def _answer(method: str, path: str, status: int, body: Any) -> Exchange:
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if data else {}
    return _exchange(method, path, status=status, response_body=data, response_headers=headers)


FUNCTION = {"id": "f", "slug": "bubble_sync", "name": "bubble_sync", "status": "ACTIVE", "version": 1}
GET_FUNCTION = f"/v1/projects/{REF}/functions/bubble_sync"


@pytest.mark.parametrize(
    ("exchange", "fragment"),
    [
        (_answer("POST", DEPLOY, 200, FUNCTION), "status 200 is not listed"),
        (_answer("POST", DEPLOY, 201, {k: v for k, v in FUNCTION.items() if k != "version"}), "'version'"),
        (_answer("POST", DEPLOY, 201, {**FUNCTION, "status": "GONE"}), "is not one of"),
        (_answer("POST", DEPLOY, 201, {**FUNCTION, "version": "1"}), "expected integer"),
        (_answer("POST", DEPLOY, 201, {**FUNCTION, "verify_jwt": 1}), "expected boolean"),
        (_answer("GET", GET_FUNCTION, 200, FUNCTION), "missing required property 'created_at'"),
        (
            _answer("GET", GET_FUNCTION, 200, {**FUNCTION, "created_at": "2024", "updated_at": 1}),
            "expected integer",
        ),
        (_answer("GET", f"/v1/projects/{REF}/secrets", 200, {"name": "A"}), "expected array"),
        (_answer("GET", f"/v1/projects/{REF}/secrets", 200, [{"name": "A"}]), "'value'"),
        (_answer("DELETE", f"/v1/projects/{REF}/secrets", 404, None), "status 404 is not listed"),
        (_answer("GET", f"/v1/projects/{REF}/secrets", 418, None), "status 418 is not listed"),
    ],
)
def test_non_conforming_responses_are_caught(exchange: Exchange, fragment: str) -> None:
    problems = check_response(exchange)
    assert any(fragment in p for p in problems), problems


def test_conforming_responses_pass() -> None:
    stamped = {**FUNCTION, "created_at": 1, "updated_at": 2, "verify_jwt": False}
    assert check_response(_answer("POST", DEPLOY, 201, FUNCTION)) == []
    assert check_response(_answer("GET", GET_FUNCTION, 200, stamped)) == []
    assert check_response(_answer("GET", GET_FUNCTION, 404, {"message": "Function not found"})) == []
    assert (
        check_response(_answer("GET", f"/v1/projects/{REF}/secrets", 200, [{"name": "A", "value": "d"}]))
        == []
    )
    assert check_response(_answer("POST", f"/v1/projects/{REF}/secrets", 201, None)) == []

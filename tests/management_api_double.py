"""TEST DOUBLE of the Supabase Management API (Edge Functions and function secrets) -- for tests only, never
used by the product.

Why one module: the per-project state, the faults and the `exchanges` log are one class under one lock that
the HTTP handler serves, and the contract test reads that log whole.

A stdlib HTTP server on 127.0.0.1 with state per project: deployed functions (id, version, status,
verify_jwt, entrypoint, the uploaded files) and secrets (name -> value). It implements what the providers
use, shaped after `tests/contracts/supabase-management-api.functions.json` (the official spec extract):

    GET    /v1/projects/{ref}/functions                 200 [FunctionResponse] (preflight's read check)
    POST   /v1/projects/{ref}/functions/deploy?slug=   multipart (metadata, files): 201 DeployFunctionResponse
    GET    /v1/projects/{ref}/functions/{slug}          200 FunctionSlugResponse, 404 when unknown
    DELETE /v1/projects/{ref}/functions/{slug}          200, 404 when unknown
    GET    /v1/projects/{ref}/secrets                   200 [{name, value: sha256 hex of the value}]
    POST   /v1/projects/{ref}/secrets                   201 (upsert), 400 for a SUPABASE_ name
    DELETE /v1/projects/{ref}/secrets                   200 (unknown names ignored)

Like the real API: `Authorization: Bearer <token>` is required (401 otherwise); a token may be limited to
some projects (403); `max_functions` makes a deploy past the plan's limit answer 402 "Maximum number of
functions reached for Plan"; each deploy bumps the version; the secrets list includes the platform's
`SUPABASE_*` defaults; 404 for a missing function (the spec lists no 404 there, but the API answers it and
Supabase's own Terraform provider treats it as "gone").

Faults for tests: `fail_next(status, ...)` queues a canned response (e.g. 429 with `Retry-After`) for the
next matching request(s). Changes "by hand" for drift tests: `delete_function`, `set_function` (status,
verify_jwt), `redeploy` (someone else deploys: new version), `set_secret`, `remove_secret`.

Every request and response is recorded in `exchanges` (the Authorization header is kept only as
"Bearer <present>") so the contract test can check both against the spec.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Exchange", "Fault", "FormPart", "ManagementApiDouble", "parse_multipart", "running_double"]

DEFAULT_SECRETS = ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL")

_FUNCTIONS = re.compile(r"^/v1/projects/([^/]+)/functions$")
_FUNCTION = re.compile(r"^/v1/projects/([^/]+)/functions/([^/]+)$")
_DEPLOY = re.compile(r"^/v1/projects/([^/]+)/functions/deploy$")
_SECRETS = re.compile(r"^/v1/projects/([^/]+)/secrets$")


@dataclass
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


@dataclass
class Exchange:
    """One request and the double's answer, as they went over the wire."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None


@dataclass
class Fault:
    status: int
    body: Any
    headers: dict[str, str]
    method: str | None
    path: re.Pattern[str] | None
    times: int


@dataclass
class Function:
    id: str
    slug: str
    name: str
    version: int
    status: str
    verify_jwt: bool
    entrypoint_path: str
    import_map_path: str | None
    created_at: int
    updated_at: int
    ezbr_sha256: str
    files: dict[str, bytes]
    metadata: dict[str, Any]

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "status": self.status,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "verify_jwt": self.verify_jwt,
            "import_map": self.import_map_path is not None,
            "entrypoint_path": self.entrypoint_path,
            "ezbr_sha256": self.ezbr_sha256,
        }
        if self.import_map_path is not None:
            body["import_map_path"] = self.import_map_path
        return body


def parse_multipart(content_type: str, body: bytes) -> list[FormPart]:
    """A strict multipart/form-data parser (the stdlib's `cgi` is gone): parts in order, bytes exact."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or not match:
        raise ValueError(f"not multipart/form-data with a boundary: {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("multipart body is not terminated by the closing boundary")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ValueError("malformed multipart part (CRLF framing)")
        head, sep, content = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without a header/body separator")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        if not disposition.startswith("form-data"):
            raise ValueError(f"part without form-data disposition: {disposition!r}")
        name = re.search(r'(?:^|;)\s*name="([^"]*)"', disposition)
        filename = re.search(r'(?:^|;)\s*filename="([^"]*)"', disposition)
        if name is None:
            raise ValueError("part without a name")
        parts.append(
            FormPart(
                name=name.group(1),
                filename=filename.group(1) if filename else None,
                content_type=headers.get("content-type"),
                content=content,
            )
        )
    return parts


class ManagementApiDouble:
    """The double's state and behaviour; `running_double()` serves it over HTTP."""

    def __init__(self, token: str = "sbp_double_token") -> None:
        self.token = token
        #: token -> projects it may touch (None: all)
        self.token_projects: dict[str, set[str] | None] = {token: None}
        self.max_functions: int | None = None
        self.functions: dict[str, dict[str, Function]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.exchanges: list[Exchange] = []
        self.faults: list[Fault] = []
        self.url = ""
        self._lock = threading.RLock()

    # -- test controls ---------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests matching `method` and the `path` regex get this response instead."""
        with self._lock:
            self.faults.append(
                Fault(status, body, headers or {}, method, re.compile(path) if path else None, times)
            )

    def grant(self, token: str, projects: set[str] | None) -> None:
        with self._lock:
            self.token_projects[token] = projects

    def delete_function(self, ref: str, slug: str) -> None:
        with self._lock:
            del self.functions[ref][slug]

    def set_function(self, ref: str, slug: str, **changes: Any) -> None:
        with self._lock:
            function = self.functions[ref][slug]
            for key, value in changes.items():
                setattr(function, key, value)

    def redeploy(
        self, ref: str, slug: str, source: bytes = b"Deno.serve(() => new Response('hand'))"
    ) -> None:
        """Someone deploys the function from elsewhere (the dashboard, the CLI): a new version."""
        with self._lock:
            function = self.functions[ref][slug]
            function.files = {function.entrypoint_path: source}
            function.version += 1
            function.updated_at = _now_ms()
            function.ezbr_sha256 = hashlib.sha256(source).hexdigest()

    def set_secret(self, ref: str, name: str, value: str) -> None:
        with self._lock:
            self._project_secrets(ref)[name] = value

    def remove_secret(self, ref: str, name: str) -> None:
        with self._lock:
            del self._project_secrets(ref)[name]

    def deploys(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == "POST" and _DEPLOY.match(e.path)]

    def requests(self, method: str, path_regex: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and re.search(path_regex, e.path)]

    def function(self, ref: str, slug: str) -> Function | None:
        return self.functions.get(ref, {}).get(slug)

    def our_secrets(self, ref: str) -> dict[str, str]:
        """The project's secrets without the platform's SUPABASE_ defaults."""
        return {k: v for k, v in self._project_secrets(ref).items() if not k.startswith("SUPABASE_")}

    # -- request handling -----------------------------------------------------------------------------

    def handle(self, exchange: Exchange) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            fault = self._take_fault(exchange)
            if fault is not None:
                return fault.status, fault.body, dict(fault.headers)
            auth = exchange.headers.get("authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            if token is None or token not in self.token_projects:
                return 401, {"message": "Unauthorized"}, {}
            ref = _project_of(exchange.path)
            allowed = self.token_projects[token]
            if ref is not None and allowed is not None and ref not in allowed:
                return 403, {"message": "Forbidden action"}, {}
            return self._route(exchange)

    def _take_fault(self, exchange: Exchange) -> Fault | None:
        for fault in self.faults:
            if fault.method and fault.method != exchange.method:
                continue
            if fault.path and not fault.path.search(exchange.path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    def _route(self, e: Exchange) -> tuple[int, Any, dict[str, str]]:
        if m := _DEPLOY.match(e.path):
            if e.method == "POST":
                return self._deploy(m.group(1), e)
        elif m := _SECRETS.match(e.path):
            ref = m.group(1)
            if e.method == "GET":
                return 200, self._list_secrets(ref), {}
            if e.method == "POST":
                return self._create_secrets(ref, e)
            if e.method == "DELETE":
                return self._delete_secrets(ref, e)
        elif m := _FUNCTIONS.match(e.path):
            if e.method == "GET":
                return 200, [f.response() for f in self.functions.get(m.group(1), {}).values()], {}
        elif m := _FUNCTION.match(e.path):
            ref, slug = m.groups()
            function = self.function(ref, slug)
            if e.method == "GET":
                if function is None:
                    return 404, {"message": "Function not found"}, {}
                return 200, function.response(), {}
            if e.method == "DELETE":
                if function is None:
                    return 404, {"message": "Function not found"}, {}
                del self.functions[ref][slug]
                return 200, None, {}
        return 404, {"message": f"Cannot {e.method} {e.path}"}, {}

    def _deploy(self, ref: str, e: Exchange) -> tuple[int, Any, dict[str, str]]:
        slug = (e.query.get("slug") or [None])[0]
        try:
            parts = parse_multipart(e.content_type, e.body)
            metadata_parts = [p for p in parts if p.name == "metadata"]
            if len(metadata_parts) != 1:
                raise ValueError("exactly one metadata field expected")
            metadata = json.loads(metadata_parts[0].content)
        except ValueError as exc:
            return 400, {"message": f"Invalid deploy body: {exc}"}, {}
        files = {p.filename: p.content for p in parts if p.name == "file" and p.filename}
        slug = slug or metadata.get("name")
        entrypoint = metadata.get("entrypoint_path")
        if not slug or not isinstance(entrypoint, str):
            return 400, {"message": "slug and metadata.entrypoint_path are required"}, {}
        if entrypoint not in files:
            return (
                500,
                {"message": f"Failed to deploy function: entrypoint {entrypoint} was not uploaded"},
                {},
            )
        functions = self.functions.setdefault(ref, {})
        existing = functions.get(slug)
        live = [f for f in functions.values() if f.status != "REMOVED"]
        if existing is None and self.max_functions is not None and len(live) >= self.max_functions:
            return 402, {"message": "Maximum number of functions reached for Plan"}, {}
        now = _now_ms()
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name])
        function = Function(
            id=existing.id if existing else str(uuid.uuid4()),
            slug=slug,
            name=metadata.get("name") or slug,
            version=(existing.version + 1) if existing else 1,
            status="ACTIVE",
            verify_jwt=bool(metadata.get("verify_jwt", True)),  # the platform's default is on
            entrypoint_path=entrypoint,
            import_map_path=metadata.get("import_map_path"),
            created_at=existing.created_at if existing else now,
            updated_at=now,
            ezbr_sha256=digest.hexdigest(),
            files=files,
            metadata=metadata,
        )
        functions[slug] = function
        return 201, function.response(), {}

    def _project_secrets(self, ref: str) -> dict[str, str]:
        if ref not in self.secrets:
            self.secrets[ref] = {name: f"platform-{name.lower()}" for name in DEFAULT_SECRETS}
        return self.secrets[ref]

    def _list_secrets(self, ref: str) -> list[dict[str, str]]:
        # The real API lists a digest, not the value (the CLI shows it as DIGEST).
        return [
            {"name": name, "value": hashlib.sha256(value.encode()).hexdigest()}
            for name, value in sorted(self._project_secrets(ref).items())
        ]

    def _create_secrets(self, ref: str, e: Exchange) -> tuple[int, Any, dict[str, str]]:
        try:
            body = e.json()
        except ValueError:
            return 400, {"message": "body must be JSON"}, {}
        if not isinstance(body, list) or not all(
            isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("value"), str)
            for s in body
        ):
            return 400, {"message": "body must be an array of {name, value}"}, {}
        if any(s["name"].startswith("SUPABASE_") for s in body):
            return 400, {"message": "Env var name cannot start with SUPABASE_"}, {}
        secrets = self._project_secrets(ref)
        for s in body:
            secrets[s["name"]] = s["value"]
        return 201, None, {}

    def _delete_secrets(self, ref: str, e: Exchange) -> tuple[int, Any, dict[str, str]]:
        try:
            names = e.json()
        except ValueError:
            return 400, {"message": "body must be JSON"}, {}
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return 400, {"message": "body must be an array of names"}, {}
        secrets = self._project_secrets(ref)
        for name in names:
            secrets.pop(name, None)
        return 200, None, {}


def _project_of(path: str) -> str | None:
    m = re.match(r"^/v1/projects/([^/]+)/", path)
    return m.group(1) if m else None


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Handler(BaseHTTPRequestHandler):
    double: ManagementApiDouble
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # quiet

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        exchange = Exchange(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        status, payload, extra = self.double.handle(exchange)
        data = b"" if payload is None else json.dumps(payload).encode()
        response_headers = {"Content-Type": "application/json", **extra} if data else dict(extra)
        response_headers["Content-Length"] = str(len(data))
        # Record after handling; keep only whether a token came, never the token itself.
        recorded = dict(headers)
        if "authorization" in recorded:
            recorded["authorization"] = (
                "Bearer <present>" if headers["authorization"].startswith("Bearer ") else "<other>"
            )
        exchange.headers = recorded
        exchange.status = status
        exchange.response_headers = {k.lower(): v for k, v in response_headers.items()}
        exchange.response_body = data
        with self.double._lock:
            self.double.exchanges.append(exchange)
        self.send_response(status)
        for key, value in response_headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve  # noqa: N815 - the stdlib's names


@contextmanager
def running_double(token: str = "sbp_double_token") -> Iterator[ManagementApiDouble]:
    """Serves a fresh double on 127.0.0.1 (a free port) for the duration; `double.url` is its base URL."""
    double = ManagementApiDouble(token)
    handler = type("Handler", (_Handler,), {"double": double})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="management-api-double", daemon=True
    )
    thread.start()
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
